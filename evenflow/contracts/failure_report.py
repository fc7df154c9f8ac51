"""From a GX result to a ``ValidationReport``: failed expectations in suite order, in plain words.

Each failure line says what the data held (dtype, nulls, observed range, values seen), read off the
frame in memory (``FrameFacts``) or gathered chunk by chunk (``StreamFacts``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pandas as pd
from great_expectations.core.expectation_validation_result import (
    ExpectationSuiteValidationResult,
    ExpectationValidationResult,
)

from evenflow.contracts.gx_runtime import result_config
from evenflow.records import ExpectationFailure, ValidationReport

# Most example values quoted in one failure line.
_MAX_EXAMPLES = 5
# Distinct values kept per column for a failure line (contain-set checks are on label columns).
_MAX_DISTINCT = 10_000


def build_report(
    facts: Facts,
    result: ExpectationSuiteValidationResult,
    order: Mapping[str | None, int],
    result_path: Path,
    docs_path: Path | None,
) -> ValidationReport:
    """The report of ``result``: its failures in suite ``order``, each with what the data held."""
    failed = sorted(
        (item for item in result.results if not item.success),
        key=lambda item: order[result_config(item).id],
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


def _failure(facts: Facts, item: ExpectationValidationResult) -> ExpectationFailure:
    config = result_config(item)
    kwargs = {key: value for key, value in config.kwargs.items() if key != "batch_id"}
    column = kwargs.get("column")
    return ExpectationFailure(
        expectation=config.type,
        column=None if column is None else str(column),
        observed=_observed(facts, config.type, column, item),
        kwargs=kwargs,
    )


def _observed(facts: Facts, kind: str, column: Any, item: ExpectationValidationResult) -> str:
    """A short, human account of what the data held where the expectation failed."""
    if column is not None and not facts.has(column):
        return "column missing"
    error = exception_message(item.exception_info)
    if error is not None:
        return f"the check could not run: {error}"
    describe = _DESCRIBERS.get(kind, _describe_default)
    return describe(facts, column, item.result)


def exception_message(info: dict[str, Any]) -> str | None:
    """GX puts one flat record here, or one record per failed metric; return the first message."""
    records = [info, *(value for value in info.values() if isinstance(value, dict))]
    for record in records:
        if record.get("raised_exception"):
            return str(record.get("exception_message") or "unknown error")
    return None


def _describe_column_set(facts: Facts, column: Any, details: dict[str, Any]) -> str:
    mismatched = details.get("details", {}).get("mismatched", {})
    parts = [
        f"{kind} {mismatched[kind]}" for kind in ("missing", "unexpected") if mismatched.get(kind)
    ]
    return "; ".join(parts) or str(details.get("observed_value"))


def _describe_type(facts: Facts, column: Any, details: dict[str, Any]) -> str:
    # Object columns are checked value by value, so GX reports the offending values too.
    dtype = f"dtype {facts.dtype(column)}"
    if "unexpected_count" not in details:
        return dtype
    return f"{dtype}; {_unexpected(details, 'of another type')}"


def _describe_nulls(facts: Facts, column: Any, details: dict[str, Any]) -> str:
    return (
        f"{details['unexpected_count']} of {details['element_count']} values null "
        f"({details['unexpected_percent']:.2f}%)"
    )


def _describe_range(facts: Facts, column: Any, details: dict[str, Any]) -> str:
    low, high = facts.min_max(column)
    return f"{_unexpected(details, 'out of range')}; observed min {low}, max {high}"


def _describe_contains(facts: Facts, column: Any, details: dict[str, Any]) -> str:
    seen = sorted(facts.distinct(column), key=str)
    return f"{details.get('partial_missing_list')} absent; values seen: {_examples(seen)}"


def _describe_set(facts: Facts, column: Any, details: dict[str, Any]) -> str:
    return _unexpected(details, "not in the set")


def _describe_rows(facts: Facts, column: Any, details: dict[str, Any]) -> str:
    return f"{details.get('observed_value')} rows"


def _describe_default(facts: Facts, column: Any, details: dict[str, Any]) -> str:
    if "unexpected_count" in details:
        return _unexpected(details, "unexpected")
    return str(details.get("observed_value"))


_DESCRIBERS: dict[str, Callable[[Facts, Any, dict[str, Any]], str]] = {
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


class Facts(Protocol):
    """What the describers may ask about the validated data."""

    @property
    def n_rows(self) -> int:
        """Rows validated."""
        ...

    def has(self, column: Any) -> bool:
        """Whether the data has ``column``."""
        ...

    def dtype(self, column: Any) -> str:
        """The column's dtype, as text."""
        ...

    def min_max(self, column: Any) -> tuple[Any, Any]:
        """The column's smallest and largest value."""
        ...

    def distinct(self, column: Any) -> list[Any]:
        """The column's distinct non-null values seen."""
        ...


class FrameFacts:
    """Facts read off a frame held in memory."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame

    @property
    def n_rows(self) -> int:
        """Rows validated."""
        return len(self.frame)

    def has(self, column: Any) -> bool:
        """Whether the data has ``column``."""
        return column in self.frame.columns

    def dtype(self, column: Any) -> str:
        """The column's dtype, as text."""
        return str(self.frame[column].dtype)

    def min_max(self, column: Any) -> tuple[Any, Any]:
        """The column's smallest and largest value."""
        values = self.frame[column]
        return values.min(), values.max()

    def distinct(self, column: Any) -> list[Any]:
        """The column's distinct non-null values seen."""
        values: list[Any] = self.frame[column].dropna().unique().tolist()
        return values


@dataclass
class StreamFacts:
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
        """Rows validated."""
        return self.rows

    def has(self, column: Any) -> bool:
        """Whether the data has ``column``."""
        return column in self.dtypes

    def dtype(self, column: Any) -> str:
        """The column's dtype, as text."""
        return self.dtypes[column]

    def min_max(self, column: Any) -> tuple[Any, Any]:
        """The column's smallest and largest value."""
        return self.minima.get(column), self.maxima.get(column)

    def distinct(self, column: Any) -> list[Any]:
        """The column's distinct non-null values seen."""
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

    def merge(self, other: StreamFacts) -> None:
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
