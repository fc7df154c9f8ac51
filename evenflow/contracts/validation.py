"""Check a frame against its Great Expectations suite and say, in plain words, what broke.

Each call builds a throwaway file-mode GX context in a temp folder, so nothing is shared between
runs and nothing happens at import time. The GX result JSON and its Data Docs site are copied into
the caller's folder atomically; the Data Docs pages load their CSS and JS from public CDNs.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol
from urllib.parse import urlparse
from urllib.request import url2pathname

import great_expectations as gx
import numpy as np
import pandas as pd
from great_expectations.checkpoint.actions import UpdateDataDocsAction
from great_expectations.core.expectation_validation_result import (
    ExpectationSuiteValidationResult,
    ExpectationValidationResult,
    expectationSuiteValidationResultSchema,
)
from great_expectations.core.run_identifier import RunIdentifier
from great_expectations.data_context.data_context.abstract_data_context import AbstractDataContext
from great_expectations.data_context.types.base import ProgressBarsConfig
from great_expectations.data_context.types.resource_identifiers import (
    ExpectationSuiteIdentifier,
    ValidationResultIdentifier,
)
from great_expectations.exceptions.exceptions import GreatExpectationsError
from great_expectations.expectations.expectation import (
    ColumnMapExpectation,
    ColumnPairMapExpectation,
    MulticolumnMapExpectation,
)
from great_expectations.expectations.expectation_configuration import ExpectationConfiguration
from great_expectations.expectations.registry import get_expectation_impl

from evenflow.contracts.suite import build_gx_suite
from evenflow.data import datasets
from evenflow.io import atomic_dir, write_json_atomic
from evenflow.records import ExpectationFailure, ValidationReport

logger = logging.getLogger(__name__)

RESULT_FILE = "validation_result.json"
DOCS_DIR = "data_docs"

# Numbers GX checks vectorised as they are (uint64 stays: it does not fit int64).
_WIDE = frozenset({"int64", "float64", "uint64"})

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
            batch_parameters={"dataframe": gx_ready(frame)}, run_id=RunIdentifier(run_name=dataset)
        )
        ((identifier, result),) = run.run_results.items()
        # GX returns results grouped by the metrics they share; report them in suite order.
        order = {expectation.id: index for index, expectation in enumerate(gx_suite.expectations)}
        result_path = write_json_atomic(out_dir / RESULT_FILE, result.to_json_dict())
        docs_path = _copy_data_docs(context, identifier, out_dir / DOCS_DIR)
    report = _report(_FrameFacts(frame), result, order, result_path, docs_path)
    logger.info(
        "validated %s against suite %r: %d of %d expectations failed",
        dataset,
        report.suite_name,
        len(report.failures),
        report.n_expectations,
    )
    return report


def gx_ready(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy GX checks fast: narrow numbers widened to 64 bits, columns in one block per dtype.

    GX 1.24 checks a range value by value in Python unless the dtype is exactly int64 or float64
    (``column.dtype in [int, float]``); widening is exact and keeps every type check's answer
    (the inferred suites type numbers by family), and makes range checks vectorised. GX also
    filters the whole frame by a row mask once per expectation, and a frame read column by column
    (one block per column) is consolidated again on every such copy; consolidated once here, a
    1M-row chunk of 31 columns validates in about half the time.
    """
    widen: dict[str, str] = {}
    for column in frame.columns:
        dtype = frame[column].dtype
        if not isinstance(dtype, np.dtype) or dtype.kind not in "iuf" or dtype.name in _WIDE:
            continue
        widen[column] = "float64" if dtype.kind == "f" else "int64"
    return (frame.astype(widen) if widen else frame).copy()  # copy() consolidates the blocks


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
    facts: _Facts,
    result: ExpectationSuiteValidationResult,
    order: Mapping[str | None, int],
    result_path: Path,
    docs_path: Path | None,
) -> ValidationReport:
    failed = sorted(
        (item for item in result.results if not item.success),
        key=lambda item: order[_config(item).id],
    )
    failures = tuple(_failure(facts, item) for item in failed)
    return ValidationReport(
        success=bool(result.success),
        suite_name=result.suite_name,
        n_expectations=len(result.results),
        n_rows=facts.n_rows,
        failures=failures,
        result_path=result_path,
        docs_path=docs_path,
    )


def _failure(facts: _Facts, item: ExpectationValidationResult) -> ExpectationFailure:
    config = _config(item)
    kwargs = {key: value for key, value in config.kwargs.items() if key != "batch_id"}
    column = kwargs.get("column")
    return ExpectationFailure(
        expectation=config.type,
        column=None if column is None else str(column),
        observed=_observed(facts, config.type, column, item),
        kwargs=kwargs,
    )


def _config(item: ExpectationValidationResult) -> ExpectationConfiguration:
    config = item.expectation_config
    assert config is not None, "GX attaches the configuration to every validation result"
    return config


def _observed(facts: _Facts, kind: str, column: Any, item: ExpectationValidationResult) -> str:
    """A short, human account of what the data held where the expectation failed."""
    if column is not None and not facts.has(column):
        return "column missing"
    error = _exception_message(item.exception_info)
    if error is not None:
        return f"the check could not run: {error}"
    describe = _DESCRIBERS.get(kind, _describe_default)
    return describe(facts, column, item.result)


def _exception_message(info: dict[str, Any]) -> str | None:
    """GX puts one flat record here, or one record per failed metric; return the first message."""
    records = [info, *(value for value in info.values() if isinstance(value, dict))]
    for record in records:
        if record.get("raised_exception"):
            return str(record.get("exception_message") or "unknown error")
    return None


def _describe_column_set(facts: _Facts, column: Any, details: dict[str, Any]) -> str:
    mismatched = details.get("details", {}).get("mismatched", {})
    parts = [
        f"{kind} {mismatched[kind]}" for kind in ("missing", "unexpected") if mismatched.get(kind)
    ]
    return "; ".join(parts) or str(details.get("observed_value"))


def _describe_type(facts: _Facts, column: Any, details: dict[str, Any]) -> str:
    # Object columns are checked value by value, so GX reports the offending values too.
    dtype = f"dtype {facts.dtype(column)}"
    if "unexpected_count" not in details:
        return dtype
    return f"{dtype}; {_unexpected(details, 'of another type')}"


def _describe_nulls(facts: _Facts, column: Any, details: dict[str, Any]) -> str:
    return (
        f"{details['unexpected_count']} of {details['element_count']} values null "
        f"({details['unexpected_percent']:.2f}%)"
    )


def _describe_range(facts: _Facts, column: Any, details: dict[str, Any]) -> str:
    low, high = facts.min_max(column)
    return f"{_unexpected(details, 'out of range')}; observed min {low}, max {high}"


def _describe_contains(facts: _Facts, column: Any, details: dict[str, Any]) -> str:
    seen = sorted(facts.distinct(column), key=str)
    return f"{details.get('partial_missing_list')} absent; values seen: {_examples(seen)}"


def _describe_set(facts: _Facts, column: Any, details: dict[str, Any]) -> str:
    return _unexpected(details, "not in the set")


def _describe_rows(facts: _Facts, column: Any, details: dict[str, Any]) -> str:
    return f"{details.get('observed_value')} rows"


def _describe_default(facts: _Facts, column: Any, details: dict[str, Any]) -> str:
    if "unexpected_count" in details:
        return _unexpected(details, "unexpected")
    return str(details.get("observed_value"))


_DESCRIBERS: dict[str, Callable[[_Facts, Any, dict[str, Any]], str]] = {
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


# --- what the data held, for the failure lines ------------------------------------------------


class _Facts(Protocol):
    """What the describers may ask about the validated data."""

    @property
    def n_rows(self) -> int: ...

    def has(self, column: Any) -> bool: ...

    def dtype(self, column: Any) -> str: ...

    def min_max(self, column: Any) -> tuple[Any, Any]: ...

    def distinct(self, column: Any) -> list[Any]: ...


class _FrameFacts:
    """Facts read off a frame held in memory."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame

    @property
    def n_rows(self) -> int:
        return len(self.frame)

    def has(self, column: Any) -> bool:
        return column in self.frame.columns

    def dtype(self, column: Any) -> str:
        return str(self.frame[column].dtype)

    def min_max(self, column: Any) -> tuple[Any, Any]:
        values = self.frame[column]
        return values.min(), values.max()

    def distinct(self, column: Any) -> list[Any]:
        values: list[Any] = self.frame[column].dropna().unique().tolist()
        return values


@dataclass
class _StreamFacts:
    """Facts gathered chunk by chunk: column dtypes, min/max and distinct values where needed."""

    range_columns: frozenset[str]
    distinct_columns: frozenset[str]
    rows: int = 0
    dtypes: dict[str, str] = field(default_factory=dict)
    minima: dict[str, Any] = field(default_factory=dict)
    maxima: dict[str, Any] = field(default_factory=dict)
    seen: dict[str, set[Any]] = field(default_factory=dict)

    @property
    def n_rows(self) -> int:
        return self.rows

    def has(self, column: Any) -> bool:
        return column in self.dtypes

    def dtype(self, column: Any) -> str:
        return self.dtypes[column]

    def min_max(self, column: Any) -> tuple[Any, Any]:
        return self.minima.get(column), self.maxima.get(column)

    def distinct(self, column: Any) -> list[Any]:
        return list(self.seen.get(column, ()))

    def update(self, chunk: pd.DataFrame) -> None:
        """Fold one chunk in."""
        self.rows += len(chunk)
        for column in chunk.columns:
            self.dtypes.setdefault(str(column), str(chunk[column].dtype))
        for column in self.range_columns & set(chunk.columns):
            values = chunk[column]
            with suppress(TypeError, ValueError):
                low, high = values.min(), values.max()
                if not pd.isna(low):
                    self.minima[column] = _fold(min, self.minima.get(column), low)
                    self.maxima[column] = _fold(max, self.maxima.get(column), high)
        for column in self.distinct_columns & set(chunk.columns):
            seen = self.seen.setdefault(column, set())
            if len(seen) <= _MAX_DISTINCT:
                seen.update(chunk[column].dropna().unique().tolist())

    def merge(self, other: _StreamFacts) -> None:
        """Fold another chunk range's facts in (the other range comes later in the batch)."""
        self.rows += other.rows
        for column, dtype in other.dtypes.items():
            self.dtypes.setdefault(column, dtype)
        for column, low in other.minima.items():
            self.minima[column] = _fold(min, self.minima.get(column), low)
        for column, high in other.maxima.items():
            self.maxima[column] = _fold(max, self.maxima.get(column), high)
        for column, values in other.seen.items():
            self.seen.setdefault(column, set()).update(values)


def _fold(pick: Callable[[Any, Any], Any], current: Any, value: Any) -> Any:
    return value if current is None else pick(current, value)


# --- out-of-core validation of parquet batches -----------------------------------------------

# Expectations on the table's shape: every chunk sees the same columns, so every chunk agrees.
_SCHEMA_KINDS = frozenset(
    {
        "expect_table_columns_to_match_set",
        "expect_table_columns_to_match_ordered_list",
        "expect_table_column_count_to_equal",
        "expect_table_column_count_to_be_between",
        "expect_column_to_exist",
    }
)
_ROW_COUNT_KINDS = frozenset(
    {"expect_table_row_count_to_be_between", "expect_table_row_count_to_equal"}
)
_CONTAINS = "expect_column_distinct_values_to_contain_set"
_COLUMN_KWARGS = ("column", "column_A", "column_B")
# Distinct values kept per column for a failure line (contain-set checks are on label columns).
_MAX_DISTINCT = 10_000
_PARTIAL = 20  # GX's SUMMARY format keeps this many unexpected values
_NO_EXCEPTION: dict[str, Any] = {
    "raised_exception": False,
    "exception_traceback": None,
    "exception_message": None,
}

Plan = Literal["chunk", "rows", "contains", "columns"]


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
    configs = [expectation.configuration for expectation in gx_suite.expectations]
    plans = [_plan(config) for config in configs]
    chunked = [index for index, plan in enumerate(plans) if plan == "chunk"]
    facts = _StreamFacts(
        range_columns=_columns_of(configs, "expect_column_values_to_be_between"),
        distinct_columns=_columns_of(configs, _CONTAINS),
    )
    as_float = datasets.float_columns(path)
    pieces = datasets.parquet_pieces(path, chunk_rows)
    job = _Job(
        suite=dict(suite),
        indices=tuple(chunked),
        chunk_rows=chunk_rows,
        as_float=as_float,
        range_columns=facts.range_columns,
        distinct_columns=facts.distinct_columns,
    )
    started = time.perf_counter()
    partials = _run_pieces(job, pieces, workers)
    merged: dict[int, dict[str, Any]] = {}
    for partial_items, partial_facts in partials:
        facts.merge(partial_facts)
        for index, item in partial_items.items():
            merged[index] = _merge_items(merged[index], item) if index in merged else item
    logger.info(
        "validated %d rows in %d pieces on %d process(es) in %.1fs",
        facts.n_rows,
        len(pieces),
        min(workers, len(pieces)),
        time.perf_counter() - started,
    )
    whole = _columns_results(path, configs, plans, facts, as_float)
    items = []
    for index, (config, plan) in enumerate(zip(configs, plans, strict=True)):
        if plan == "chunk":
            item = _finish_map(merged[index], config) if index in merged else _empty_item(config)
        elif plan == "rows":
            item = _row_count_item(config, facts.n_rows)
        elif plan == "contains":
            item = _contains_item(config, facts)
        else:
            item = whole[index]
        items.append({**item, "expectation_config": config.to_json_dict()})
    return _write_streamed(gx_suite, items, facts, out_dir, dataset)


def worker_count(requested: int | Literal["auto"]) -> int:
    """Processes for chunked validation: ``auto`` is one per CPU this process may use."""
    if requested != "auto":
        return requested
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@dataclass(frozen=True)
class _Job:
    """What a worker needs to validate its pieces (plain data: it crosses process lines)."""

    suite: dict[str, Any]
    indices: tuple[int, ...]
    chunk_rows: int
    as_float: frozenset[str]
    range_columns: frozenset[str]
    distinct_columns: frozenset[str]


_Partial = tuple[dict[int, dict[str, Any]], _StreamFacts]


def _plan(config: ExpectationConfiguration) -> Plan:
    kind = config.type
    if kind in _ROW_COUNT_KINDS:
        return "rows"
    if kind == _CONTAINS and config.kwargs.get("column") is not None:
        return "contains"
    if kind in _SCHEMA_KINDS or _is_map(kind):
        return "chunk"
    return "columns"


def _is_map(kind: str) -> bool:
    try:
        impl = get_expectation_impl(kind)
    except GreatExpectationsError:
        return False
    return issubclass(
        impl, (ColumnMapExpectation, ColumnPairMapExpectation, MulticolumnMapExpectation)
    )


def _columns_of(configs: list[ExpectationConfiguration], kind: str) -> frozenset[str]:
    return frozenset(str(c.kwargs["column"]) for c in configs if c.type == kind)


def _run_pieces(job: _Job, pieces: list[datasets.Piece], workers: int) -> list[_Partial]:
    if workers <= 1 or len(pieces) <= 1:
        return [_validate_pieces(job, pieces)]
    n = min(workers, len(pieces))
    # Contiguous ranges, so each worker's first failing chunk is the earliest of its range.
    size = -(-len(pieces) // n)
    ranges = [pieces[start : start + size] for start in range(0, len(pieces), size)]
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=n, mp_context=context) as pool:
        return list(pool.map(_validate_pieces, [job] * len(ranges), ranges))


def _validate_pieces(job: _Job, pieces: list[datasets.Piece]) -> _Partial:
    """Validate pieces in order with one GX context; fold their results and facts."""
    full = build_gx_suite(job.suite, source=f"suite {job.suite.get('name')!r}")
    facts = _StreamFacts(range_columns=job.range_columns, distinct_columns=job.distinct_columns)
    draft = {
        "name": full.name,
        "expectations": [job.suite["expectations"][index] for index in job.indices],
    }
    merged: dict[int, dict[str, Any]] = {}
    with _quiet_gx_logs(), tempfile.TemporaryDirectory(prefix="evenflow-gx-") as root:
        context = gx.get_context(mode="file", project_root_dir=root)
        context.variables.progress_bars = ProgressBarsConfig(globally=False)
        chunk_suite = context.suites.add(build_gx_suite(draft, source="chunk suite"))
        original = {
            e.id: index for e, index in zip(chunk_suite.expectations, job.indices, strict=True)
        }
        batch_definition = (
            context.data_sources.add_pandas(name="evenflow")
            .add_dataframe_asset(name="chunks")
            .add_batch_definition_whole_dataframe("chunk")
        )
        frames = (
            chunk
            for piece in pieces
            for chunk in datasets.read_piece(piece, job.chunk_rows, as_float=job.as_float)
        )
        for chunk in datasets.rebatch(frames, job.chunk_rows):
            facts.update(chunk)
            if job.indices:
                batch = batch_definition.get_batch(batch_parameters={"dataframe": gx_ready(chunk)})
                result = batch.validate(chunk_suite, result_format="SUMMARY")
                for item in result.results:
                    index = original[_config(item).id]
                    record = item.to_json_dict()
                    record.pop("expectation_config", None)
                    merged[index] = (
                        _merge_items(merged[index], record) if index in merged else record
                    )
    return merged, facts


def _merge_items(first: dict[str, Any], later: dict[str, Any]) -> dict[str, Any]:
    """Combine one expectation's results on two chunk ranges (``later`` follows ``first``)."""
    if _raised(first):
        return first
    if _raised(later):
        return later
    a, b = first["result"], later["result"]
    if "unexpected_count" in a and "unexpected_count" in b:
        result = {
            key: a.get(key, 0) + b.get(key, 0)
            for key in ("element_count", "missing_count", "unexpected_count")
            if key in a
        }
        result["partial_unexpected_list"] = [
            *a.get("partial_unexpected_list", []),
            *b.get("partial_unexpected_list", []),
        ][:_PARTIAL]
        result["partial_unexpected_index_list"] = [
            *a.get("partial_unexpected_index_list", []),
            *b.get("partial_unexpected_index_list", []),
        ][:_PARTIAL]
        result["partial_unexpected_counts"] = _add_counts(
            a.get("partial_unexpected_counts", []), b.get("partial_unexpected_counts", [])
        )
        return {**first, "success": bool(first["success"] and later["success"]), "result": result}
    # Same answer expected from every chunk (shape, dtype): the first failure stands.
    return first if not first["success"] else later


def _raised(item: Mapping[str, Any]) -> bool:
    return _exception_message(item.get("exception_info") or {}) is not None


def _add_counts(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> list[dict[str, Any]]:
    totals: dict[str, tuple[Any, int]] = {}
    for entry in (*a, *b):
        key = repr(entry["value"])
        value, count = totals.get(key, (entry["value"], 0))
        totals[key] = (value, count + int(entry["count"]))
    ordered = sorted(totals.values(), key=lambda pair: -pair[1])  # ties: first seen first
    return [{"value": value, "count": count} for value, count in ordered[:_PARTIAL]]


def _finish_map(item: dict[str, Any], config: ExpectationConfiguration) -> dict[str, Any]:
    """Percentages and ``mostly`` from the summed counts, as GX computes them on one frame."""
    result = dict(item["result"])
    if _raised(item) or "unexpected_count" not in result:
        return item
    elements = int(result["element_count"])
    missing = int(result.get("missing_count", 0))
    unexpected = int(result["unexpected_count"])
    considered = elements - missing
    mostly = float(config.kwargs.get("mostly", 1.0))
    success = considered == 0 or (considered - unexpected) / considered >= mostly
    result["unexpected_percent"] = _percent(unexpected, considered)
    if "missing_count" in result:
        result["missing_percent"] = _percent(missing, elements)
        result["unexpected_percent_total"] = _percent(unexpected, elements)
        result["unexpected_percent_nonmissing"] = _percent(unexpected, considered)
    return {**item, "success": bool(success), "result": result}


def _percent(count: int, total: int) -> float | None:
    return None if total == 0 else count / total * 100


def _empty_item(config: ExpectationConfiguration) -> dict[str, Any]:
    return {"success": True, "result": {}, "meta": {}, "exception_info": dict(_NO_EXCEPTION)}


def _row_count_item(config: ExpectationConfiguration, n_rows: int) -> dict[str, Any]:
    kwargs = config.kwargs
    if config.type == "expect_table_row_count_to_equal":
        success = n_rows == kwargs["value"]
    else:
        low, high = kwargs.get("min_value"), kwargs.get("max_value")
        above = low is None or (n_rows > low if kwargs.get("strict_min") else n_rows >= low)
        below = high is None or (n_rows < high if kwargs.get("strict_max") else n_rows <= high)
        success = above and below
    return {
        "success": bool(success),
        "result": {"observed_value": n_rows},
        "meta": {},
        "exception_info": dict(_NO_EXCEPTION),
    }


def _contains_item(config: ExpectationConfiguration, facts: _StreamFacts) -> dict[str, Any]:
    column = str(config.kwargs["column"])
    if not facts.has(column):
        info: dict[str, Any] = {
            **_NO_EXCEPTION,
            "raised_exception": True,
            "exception_message": f'The column "{column}" in BatchData does not exist.',
        }
        return {"success": False, "result": {}, "meta": {}, "exception_info": info}
    seen = set(facts.distinct(column))
    missing = [value for value in config.kwargs.get("value_set") or [] if value not in seen]
    return {
        "success": not missing,
        "result": {
            "observed_value": sorted(seen, key=str)[:_PARTIAL],
            "partial_missing_list": missing[:_PARTIAL],
            "missing_count": len(missing),
        },
        "meta": {},
        "exception_info": dict(_NO_EXCEPTION),
    }


def _columns_results(
    path: Path,
    configs: list[ExpectationConfiguration],
    plans: list[Plan],
    facts: _StreamFacts,
    as_float: frozenset[str],
) -> dict[int, dict[str, Any]]:
    """Run the remaining aggregate expectations with GX on the columns they name, read alone."""
    indices = [index for index, plan in enumerate(plans) if plan == "columns"]
    if not indices:
        return {}
    named: set[str] = set()
    table_level = False
    for index in indices:
        kwargs = configs[index].kwargs
        names = [kwargs[key] for key in _COLUMN_KWARGS if kwargs.get(key) is not None]
        names += list(kwargs.get("column_list") or [])
        table_level |= not names
        named.update(str(name) for name in names)
    columns = None if table_level else [c for c in facts.dtypes if c in named]
    if table_level:
        logger.warning("a table-level aggregate expectation needs the whole batch in memory")
    frame = pd.concat(
        [
            chunk
            for piece in datasets.parquet_pieces(path, 1 << 62)
            for chunk in datasets.read_piece(piece, 1 << 20, columns=columns, as_float=as_float)
        ]
    )
    expectations = [configs[i].to_json_dict() for i in indices]
    for expectation in expectations:
        expectation.pop("id", None)
    draft = {"name": "aggregates", "expectations": expectations}
    suite = build_gx_suite(draft, source="aggregate expectations")
    with _quiet_gx_logs(), tempfile.TemporaryDirectory(prefix="evenflow-gx-") as root:
        context = gx.get_context(mode="file", project_root_dir=root)
        context.variables.progress_bars = ProgressBarsConfig(globally=False)
        added = context.suites.add(suite)
        original = {e.id: index for e, index in zip(added.expectations, indices, strict=True)}
        batch = (
            context.data_sources.add_pandas(name="evenflow")
            .add_dataframe_asset(name="columns")
            .add_batch_definition_whole_dataframe("columns")
            .get_batch(batch_parameters={"dataframe": frame})
        )
        result = batch.validate(added, result_format="SUMMARY")
    records: dict[int, dict[str, Any]] = {}
    for item in result.results:
        record = item.to_json_dict()
        record.pop("expectation_config", None)
        records[original[_config(item).id]] = record
    return records


def _write_streamed(
    gx_suite: gx.ExpectationSuite,
    items: list[dict[str, Any]],
    facts: _StreamFacts,
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
    result_path = write_json_atomic(out_dir / RESULT_FILE, payload)
    with _quiet_gx_logs(), tempfile.TemporaryDirectory(prefix="evenflow-gx-") as root:
        context = gx.get_context(mode="file", project_root_dir=root)
        context.variables.progress_bars = ProgressBarsConfig(globally=False)
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
        docs_path = _copy_data_docs(context, identifier, out_dir / DOCS_DIR)
        order = {expectation.id: index for index, expectation in enumerate(added.expectations)}
        report = _report(facts, result, order, result_path, docs_path)
    logger.info(
        "validated %s against suite %r chunk by chunk: %d of %d expectations failed",
        dataset,
        report.suite_name,
        len(report.failures),
        report.n_expectations,
    )
    return report
