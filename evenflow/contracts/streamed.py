"""Validating a parquet batch chunk by chunk, never holding the whole batch.

Each expectation is checked where it can be exactly: row-wise (map) expectations and the table's
shape on every chunk with GX, their counts added up; the row count and "distinct values contain"
from streamed totals; any other (aggregate) expectation with GX on the columns it names, read
alone. With several workers the chunks are validated on that many processes.
"""

from __future__ import annotations

import logging
import multiprocessing
import time
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import great_expectations as gx
import pandas as pd
from great_expectations.exceptions.exceptions import GreatExpectationsError
from great_expectations.expectations.expectation import (
    ColumnMapExpectation,
    ColumnPairMapExpectation,
    MulticolumnMapExpectation,
)
from great_expectations.expectations.expectation_configuration import ExpectationConfiguration
from great_expectations.expectations.registry import get_expectation_impl

from evenflow.contracts.failure_report import StreamFacts, exception_message
from evenflow.contracts.gx_runtime import gx_context, gx_ready, result_config
from evenflow.contracts.suite import build_gx_suite
from evenflow.data import datasets

logger = logging.getLogger(__name__)

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
_PARTIAL = 20  # GX's SUMMARY format keeps this many unexpected values
_NO_EXCEPTION: dict[str, Any] = {
    "raised_exception": False,
    "exception_traceback": None,
    "exception_message": None,
}

Plan = Literal["chunk", "rows", "contains", "columns"]


@dataclass(frozen=True)
class _Job:
    """What a worker needs to validate its pieces (plain data: it crosses process lines)."""

    suite: dict[str, Any]
    indices: tuple[int, ...]
    chunk_rows: int
    as_float: frozenset[str]
    range_columns: frozenset[str]
    distinct_columns: frozenset[str]


_Partial = tuple[dict[int, dict[str, Any]], StreamFacts]


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
    facts = StreamFacts(range_columns=job.range_columns, distinct_columns=job.distinct_columns)
    draft = {
        "name": full.name,
        "expectations": [job.suite["expectations"][index] for index in job.indices],
    }
    merged: dict[int, dict[str, Any]] = {}
    with gx_context() as context:
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
                    index = original[result_config(item).id]
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
    return exception_message(item.get("exception_info") or {}) is not None


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


def _contains_item(config: ExpectationConfiguration, facts: StreamFacts) -> dict[str, Any]:
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
    facts: StreamFacts,
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
    with gx_context() as context:
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
        records[original[result_config(item).id]] = record
    return records


def streamed_results(
    path: Path,
    suite: Mapping[str, Any],
    gx_suite: gx.ExpectationSuite,
    chunk_rows: int,
    workers: int,
) -> tuple[list[dict[str, Any]], StreamFacts]:
    """Every expectation's result on the batch at ``path``, in suite order, and what the data held."""
    configs = [expectation.configuration for expectation in gx_suite.expectations]
    plans = [_plan(config) for config in configs]
    facts = StreamFacts(
        range_columns=_columns_of(configs, "expect_column_values_to_be_between"),
        distinct_columns=_columns_of(configs, _CONTAINS),
    )
    as_float = datasets.float_columns(path)
    job = _Job(
        suite=dict(suite),
        indices=tuple(index for index, plan in enumerate(plans) if plan == "chunk"),
        chunk_rows=chunk_rows,
        as_float=as_float,
        range_columns=facts.range_columns,
        distinct_columns=facts.distinct_columns,
    )
    merged = _chunk_results(job, datasets.parquet_pieces(path, chunk_rows), workers, facts)
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
    return items, facts


def _chunk_results(
    job: _Job, pieces: list[datasets.Piece], workers: int, facts: StreamFacts
) -> dict[int, dict[str, Any]]:
    """The chunked expectations' results over every piece; ``facts`` gathers what the data held."""
    started = time.perf_counter()
    merged: dict[int, dict[str, Any]] = {}
    for partial_items, partial_facts in _run_pieces(job, pieces, workers):
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
    return merged
