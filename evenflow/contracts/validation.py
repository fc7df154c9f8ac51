"""Check a batch against its Great Expectations suite and say, in plain words, what broke.

A frame in memory is checked in one pass (``validate_frame``); a parquet batch chunk by chunk
(``validate_parquet``, see :mod:`evenflow.contracts.streamed`). Both give the same report: the GX
result JSON and its Data Docs site copied into the caller's folder atomically (self-contained:
the pages load their CSS, JS and fonts from copies in the site, see
:mod:`evenflow.contracts.data_docs`), and one line per failed expectation
(:mod:`evenflow.contracts.failure_report`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import great_expectations as gx
import pandas as pd
from great_expectations.core.expectation_validation_result import (
    expectationSuiteValidationResultSchema,
)
from great_expectations.core.run_identifier import RunIdentifier
from great_expectations.data_context.types.resource_identifiers import (
    ExpectationSuiteIdentifier,
    ValidationResultIdentifier,
)

from evenflow import layout
from evenflow.contracts.failure_report import FrameFacts, StreamFacts, build_report
from evenflow.contracts.gx_runtime import add_checkpoint, copy_data_docs, gx_context, gx_ready
from evenflow.contracts.streamed import streamed_results
from evenflow.contracts.suite import build_gx_suite
from evenflow.io import write_json_atomic
from evenflow.records import ValidationReport

logger = logging.getLogger(__name__)

DOCS_DIR = "data_docs"


def validate_frame(
    frame: pd.DataFrame, suite: Mapping[str, Any], out_dir: Path, *, dataset: str
) -> ValidationReport:
    """Validate ``frame`` against ``suite``; write the GX result and Data Docs under ``out_dir``.

    A failing frame is reported, not raised: the caller decides whether to stop
    (see ``failure_summary`` and ``ValidationFailed``).

    Raises:
        ConfigError: ``suite`` is not a valid GX suite.
    """
    gx_suite = build_gx_suite(suite, source=f"suite {suite.get('name')!r}")
    with gx_context() as context:
        checkpoint = add_checkpoint(context, gx_suite, dataset)
        run = checkpoint.run(
            batch_parameters={"dataframe": gx_ready(frame)}, run_id=RunIdentifier(run_name=dataset)
        )
        ((identifier, result),) = run.run_results.items()
        # GX returns results grouped by the metrics they share; report them in suite order.
        order = {expectation.id: index for index, expectation in enumerate(gx_suite.expectations)}
        result_path = write_json_atomic(
            out_dir / layout.VALIDATION_RESULT_FILE, result.to_json_dict()
        )
        docs_path = copy_data_docs(context, identifier, out_dir / DOCS_DIR)
    report = build_report(FrameFacts(frame), result, order, result_path, docs_path)
    logger.info(
        "validated %s against suite %r: %d of %d expectations failed",
        dataset,
        report.suite_name,
        len(report.failures),
        report.n_expectations,
    )
    return report


def validate_parquet(
    path: Path,
    suite: Mapping[str, Any],
    out_dir: Path,
    *,
    dataset: str,
    chunk_rows: int,
    workers: int = 1,
) -> ValidationReport:
    """Validate a parquet batch chunk by chunk, never holding the whole batch; same report shape.

    Each expectation is checked where it can be exactly:

    - row-wise (map) expectations and the table's shape run on every chunk with GX, and their
      counts add up: ``unexpected_count``, ``missing_count`` and ``element_count`` are summed and
      ``mostly`` is applied to the sums, as GX applies it to one frame;
    - the row count and "distinct values contain" are computed from streamed totals;
    - any other (aggregate) expectation runs with GX on the columns it names, read alone
      (one column's memory; a table-level aggregate naming no column reads the batch).

    With ``workers`` > 1 the chunks are validated on that many processes.

    Raises:
        ConfigError: ``suite`` is not a valid GX suite.
        DataError: The batch cannot be read.
    """
    gx_suite = build_gx_suite(suite, source=f"suite {suite.get('name')!r}")
    items, facts = streamed_results(path, suite, gx_suite, chunk_rows, workers)
    return _write_streamed(gx_suite, items, facts, out_dir, dataset)


def worker_count(requested: int | Literal["auto"]) -> int:
    """Processes for chunked validation: ``auto`` is one per CPU this process may use."""
    if requested != "auto":
        return requested
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def failure_summary(report: ValidationReport) -> tuple[str, list[str]]:
    """One headline and one line per failed expectation, as ``ValidationFailed`` takes them."""
    data = f"(data: {report.n_rows} rows)"
    if report.success:
        headline = (
            f"validation passed for '{report.suite_name}': "
            f"all {report.n_expectations} expectations met {data}"
        )
    else:
        headline = (
            f"validation failed for '{report.suite_name}': {len(report.failures)} of "
            f"{report.n_expectations} expectations failed {data}"
        )
    return headline, [failure.describe() for failure in report.failures]


def _write_streamed(
    gx_suite: gx.ExpectationSuite,
    items: list[dict[str, Any]],
    facts: StreamFacts,
    out_dir: Path,
    dataset: str,
) -> ValidationReport:
    """Write the combined result and its Data Docs as one GX validation result."""
    passed = sum(1 for item in items if item["success"])
    payload: dict[str, Any] = {
        "success": passed == len(items),
        "results": items,
        "suite_name": gx_suite.name,
        "suite_parameters": {},
        "statistics": {
            "evaluated_expectations": len(items),
            "successful_expectations": passed,
            "unsuccessful_expectations": len(items) - passed,
            "success_percent": passed / len(items) * 100 if items else None,
        },
        "meta": {
            "great_expectations_version": gx.__version__,
            "evenflow": {"validated": "chunk by chunk", "rows": facts.n_rows},
        },
    }
    result_path = write_json_atomic(out_dir / layout.VALIDATION_RESULT_FILE, payload)
    with gx_context() as context:
        added = context.suites.add(gx_suite)
        for item, expectation in zip(items, added.expectations, strict=True):
            item["expectation_config"] = expectation.configuration.to_json_dict()
        result = expectationSuiteValidationResultSchema.load(payload)
        identifier = ValidationResultIdentifier(
            expectation_suite_identifier=ExpectationSuiteIdentifier(name=gx_suite.name),
            run_id=RunIdentifier(run_name=dataset),
            batch_identifier=f"{dataset}-chunks",
        )
        context.validation_results_store.set(identifier, result)
        context.build_data_docs(resource_identifiers=[identifier])
        docs_path = copy_data_docs(context, identifier, out_dir / DOCS_DIR)
        order = {expectation.id: index for index, expectation in enumerate(added.expectations)}
        report = build_report(facts, result, order, result_path, docs_path)
    logger.info(
        "validated %s against suite %r chunk by chunk: %d of %d expectations failed",
        dataset,
        report.suite_name,
        len(report.failures),
        report.n_expectations,
    )
    return report
