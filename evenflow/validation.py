"""Check a frame against its Great Expectations suite and say, in plain words, what broke.

Each call builds a throwaway file-mode GX context in a temp folder, so nothing is shared between
runs and nothing happens at import time. The GX result JSON and its Data Docs site are copied into
the caller's folder atomically; the Data Docs pages load their CSS and JS from public CDNs.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlparse
from urllib.request import url2pathname

import great_expectations as gx
import pandas as pd
from great_expectations.checkpoint.actions import UpdateDataDocsAction
from great_expectations.core.expectation_validation_result import (
    ExpectationSuiteValidationResult,
    ExpectationValidationResult,
)
from great_expectations.core.run_identifier import RunIdentifier
from great_expectations.data_context.data_context.abstract_data_context import AbstractDataContext
from great_expectations.data_context.types.base import ProgressBarsConfig
from great_expectations.data_context.types.resource_identifiers import ValidationResultIdentifier
from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

from evenflow.contracts import build_gx_suite
from evenflow.io import atomic_dir, write_json_atomic
from evenflow.records import ExpectationFailure, ValidationReport

logger = logging.getLogger(__name__)

RESULT_FILE = "validation_result.json"
DOCS_DIR = "data_docs"

# Most example values quoted in one failure line.
_MAX_EXAMPLES = 5


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
    with _quiet_gx_logs(), tempfile.TemporaryDirectory(prefix="evenflow-gx-") as root:
        context = gx.get_context(mode="file", project_root_dir=root)
        context.variables.progress_bars = ProgressBarsConfig(globally=False)
        checkpoint = _add_checkpoint(context, gx_suite, dataset)
        run = checkpoint.run(
            batch_parameters={"dataframe": frame}, run_id=RunIdentifier(run_name=dataset)
        )
        ((identifier, result),) = run.run_results.items()
        # GX returns results grouped by the metrics they share; report them in suite order.
        order = {expectation.id: index for index, expectation in enumerate(gx_suite.expectations)}
        result_path = write_json_atomic(out_dir / RESULT_FILE, result.to_json_dict())
        docs_path = _copy_data_docs(context, identifier, out_dir / DOCS_DIR)
    report = _report(frame, result, order, result_path, docs_path)
    logger.info(
        "validated %s against suite %r: %d of %d expectations failed",
        dataset,
        report.suite_name,
        len(report.failures),
        report.n_expectations,
    )
    return report


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


@contextmanager
def _quiet_gx_logs() -> Iterator[None]:
    """Hold GX's loggers at WARNING for the call: its INFO lines are internals, not news."""
    gx_logger = logging.getLogger("great_expectations")
    previous = gx_logger.level
    gx_logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        gx_logger.setLevel(previous)


def _add_checkpoint(
    context: AbstractDataContext, suite: gx.ExpectationSuite, dataset: str
) -> gx.Checkpoint:
    batch = (
        context.data_sources.add_pandas(name="evenflow")
        .add_dataframe_asset(name=dataset)
        .add_batch_definition_whole_dataframe("whole frame")
    )
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name=dataset, data=batch, suite=context.suites.add(suite))
    )
    checkpoint: gx.Checkpoint = context.checkpoints.add(
        gx.Checkpoint(
            name=dataset,
            validation_definitions=[definition],
            result_format={"result_format": "SUMMARY"},
            actions=[UpdateDataDocsAction(name="data docs")],
        )
    )
    return checkpoint


def _copy_data_docs(
    context: AbstractDataContext, identifier: ValidationResultIdentifier, target: Path
) -> Path | None:
    """Copy the local Data Docs site into ``target``; return the result's page there."""
    (index,) = context.get_docs_sites_urls()
    (page,) = context.get_docs_sites_urls(resource_identifier=identifier)
    index_url, page_url = index["site_url"], page["site_url"]
    if index_url is None or page_url is None:
        logger.warning("GX built no Data Docs page for %s", identifier)
        return None
    site = _url_path(index_url).parent
    relative = _url_path(page_url).relative_to(site)
    with atomic_dir(target) as tmp:
        shutil.copytree(site, tmp, dirs_exist_ok=True)
    return target / relative


def _url_path(url: str) -> Path:
    return Path(url2pathname(urlparse(url).path))


def _report(
    frame: pd.DataFrame,
    result: ExpectationSuiteValidationResult,
    order: Mapping[str | None, int],
    result_path: Path,
    docs_path: Path | None,
) -> ValidationReport:
    failed = sorted(
        (item for item in result.results if not item.success),
        key=lambda item: order[_config(item).id],
    )
    failures = tuple(_failure(frame, item) for item in failed)
    return ValidationReport(
        success=bool(result.success),
        suite_name=result.suite_name,
        n_expectations=len(result.results),
        n_rows=len(frame),
        failures=failures,
        result_path=result_path,
        docs_path=docs_path,
    )


def _failure(frame: pd.DataFrame, item: ExpectationValidationResult) -> ExpectationFailure:
    config = _config(item)
    kwargs = {key: value for key, value in config.kwargs.items() if key != "batch_id"}
    column = kwargs.get("column")
    return ExpectationFailure(
        expectation=config.type,
        column=None if column is None else str(column),
        observed=_observed(frame, config.type, column, item),
        kwargs=kwargs,
    )


def _config(item: ExpectationValidationResult) -> ExpectationConfiguration:
    config = item.expectation_config
    assert config is not None, "GX attaches the configuration to every validation result"
    return config


def _observed(
    frame: pd.DataFrame, kind: str, column: Any, item: ExpectationValidationResult
) -> str:
    """A short, human account of what the data held where the expectation failed."""
    if column is not None and column not in frame.columns:
        return "column missing"
    error = _exception_message(item.exception_info)
    if error is not None:
        return f"the check could not run: {error}"
    describe = _DESCRIBERS.get(kind, _describe_default)
    return describe(frame, column, item.result)


def _exception_message(info: dict[str, Any]) -> str | None:
    """GX puts one flat record here, or one record per failed metric; return the first message."""
    records = [info, *(value for value in info.values() if isinstance(value, dict))]
    for record in records:
        if record.get("raised_exception"):
            return str(record.get("exception_message") or "unknown error")
    return None


def _describe_column_set(frame: pd.DataFrame, column: Any, details: dict[str, Any]) -> str:
    mismatched = details.get("details", {}).get("mismatched", {})
    parts = [
        f"{kind} {mismatched[kind]}" for kind in ("missing", "unexpected") if mismatched.get(kind)
    ]
    return "; ".join(parts) or str(details.get("observed_value"))


def _describe_type(frame: pd.DataFrame, column: Any, details: dict[str, Any]) -> str:
    # Object columns are checked value by value, so GX reports the offending values too.
    dtype = f"dtype {frame[column].dtype}"
    if "unexpected_count" not in details:
        return dtype
    return f"{dtype}; {_unexpected(details, 'of another type')}"


def _describe_nulls(frame: pd.DataFrame, column: Any, details: dict[str, Any]) -> str:
    return (
        f"{details['unexpected_count']} of {details['element_count']} values null "
        f"({details['unexpected_percent']:.2f}%)"
    )


def _describe_range(frame: pd.DataFrame, column: Any, details: dict[str, Any]) -> str:
    values = frame[column]
    return (
        f"{_unexpected(details, 'out of range')}; observed min {values.min()}, max {values.max()}"
    )


def _describe_contains(frame: pd.DataFrame, column: Any, details: dict[str, Any]) -> str:
    seen = sorted(frame[column].dropna().unique().tolist(), key=str)
    return f"{details.get('partial_missing_list')} absent; values seen: {_examples(seen)}"


def _describe_set(frame: pd.DataFrame, column: Any, details: dict[str, Any]) -> str:
    return _unexpected(details, "not in the set")


def _describe_rows(frame: pd.DataFrame, column: Any, details: dict[str, Any]) -> str:
    return f"{details.get('observed_value')} rows"


def _describe_default(frame: pd.DataFrame, column: Any, details: dict[str, Any]) -> str:
    if "unexpected_count" in details:
        return _unexpected(details, "unexpected")
    return str(details.get("observed_value"))


_DESCRIBERS: dict[str, Callable[[pd.DataFrame, Any, dict[str, Any]], str]] = {
    "expect_table_columns_to_match_set": _describe_column_set,
    "expect_column_values_to_be_in_type_list": _describe_type,
    "expect_column_values_to_not_be_null": _describe_nulls,
    "expect_column_values_to_be_between": _describe_range,
    "expect_column_distinct_values_to_contain_set": _describe_contains,
    "expect_column_values_to_be_in_set": _describe_set,
    "expect_table_row_count_to_be_between": _describe_rows,
}


def _unexpected(details: dict[str, Any], what: str) -> str:
    counts = details.get("partial_unexpected_counts") or []
    values = [entry["value"] for entry in counts] or details.get("partial_unexpected_list", [])
    return (
        f"{details['unexpected_count']} of {details['element_count']} values {what}, "
        f"e.g. {_examples(values)}"
    )


def _examples(values: list[Any]) -> str:
    shown = ", ".join(repr(value) for value in values[:_MAX_EXAMPLES])
    return shown + (", ..." if len(values) > _MAX_EXAMPLES else "")
