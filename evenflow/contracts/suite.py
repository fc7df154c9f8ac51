"""Data contracts: infer a starter Great Expectations suite from data, save it and load it back.

GX 1.x ships no profiler, so the starter suite is inferred here from reference data. It is a
first draft for the data team to edit and review like code, so it is deterministic: the same data
always gives the same file, however it is cut into chunks.

Inference streams: each chunk is folded into a few facts per column (counts, dtype, range, at most
``MAX_CATEGORIES + 1`` distinct texts), so a batch of any size is never held whole. Chunks of one
frame all share its dtypes; chunks read separately may not, and their dtypes are merged the way
``pd.concat`` merges them where that is well defined:

- a chunk where the column holds only nulls says nothing about its type (pyarrow reads an all-null
  text column as object, a CSV reader as float64); it is ignored unless its dtype merges cleanly;
- numpy integer and float dtypes widen (int64 and float64 give float64);
- any other difference (text in one chunk, numbers in another) is a ``ConfigError``.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import great_expectations as gx
import numpy as np
import pandas as pd
from great_expectations.exceptions.exceptions import GreatExpectationsError
from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

from evenflow.config.run import DatasetSpec
from evenflow.config.settings import EvenflowSettings
from evenflow.contracts.kinds import KINDS, gx_kind
from evenflow.errors import ConfigError, DataError
from evenflow.io import write_json_atomic

logger = logging.getLogger(__name__)

# Text columns with more distinct values than this get no value-set check: they look like ids or
# free text, where every new batch brings unseen values, so the check would only raise false alarms
# (and list thousands of values in a file people review). UCI Adult's widest category has 41.
MAX_CATEGORIES = 50

# Slack below the observed non-null share, so sampling noise between batches does not fail them.
# Columns that had no nulls stay strict: a first null there usually means a broken export.
NULL_TOLERANCE = 0.01

# A batch below this share of the reference rows is more likely a truncated file than real data.
ROW_FLOOR_FRACTION = 0.1

# Most labels quoted in an error message.
_MAX_LABELS_SHOWN = 20

_SUITE_KEYS = frozenset({"name", "expectations", "suite_parameters", "meta", "notes", "id"})


def infer_suite(frame: pd.DataFrame, spec: DatasetSpec) -> dict[str, Any]:
    """Infer a starter expectation suite from a reference frame (the one-chunk case)."""
    return infer_suite_from_chunks([frame], spec)


def infer_suite_from_chunks(chunks: Iterable[pd.DataFrame], spec: DatasetSpec) -> dict[str, Any]:
    """Infer a starter suite from the chunks of a batch, as GX 1.24 serialises it.

    Gives the same suite as ``infer_suite`` on the chunks joined, holding one chunk at a time.

    Raises:
        ConfigError: The target or a sensitive column is missing, the positive label is not
            among the target's values, or a column's dtypes in two chunks cannot be merged.
        DataError: There are no chunks, or a chunk's columns differ from the first chunk's.
    """
    table = _gather(chunks, spec)
    labels = table.columns[spec.target].distinct()
    _require_positive_label(labels, spec)
    expectations = [*_table_expectations(table)]
    for name, facts in table.columns.items():
        if name in spec.personal_columns:
            # Personal data: its presence is checked, its values are never written down.
            expectations.append(_expectation("expect_column_to_exist", column=str(name)))
            continue
        expectations.extend(_column_expectations(facts, is_target=name == spec.target))
    expectations.extend(_label_expectations(spec, labels))
    draft = {"name": spec.name, "expectations": expectations, "meta": _suite_meta(table, spec)}
    # GX's own serialisation is the canonical form: a suite saved by a GX context round-trips to
    # the same file (it drops default kwargs such as mostly=1.0 and adds its version to meta).
    suite: dict[str, Any] = build_gx_suite(draft, source=f"suite {spec.name!r}").to_json_dict()
    return suite


def contract_path(settings: EvenflowSettings, dataset: str) -> Path:
    """Where a dataset's contract lives: ``expectations/NAME.json``."""
    return settings.expectations_dir / f"{dataset}.json"


def write_suite(suite: Mapping[str, Any], path: Path) -> Path:
    """Check that ``suite`` is a valid GX suite, then write it as JSON atomically."""
    build_gx_suite(suite, source=str(path))
    return write_json_atomic(path, suite)


def load_suite(path: Path) -> dict[str, Any]:
    """Read a suite file, checking that GX accepts every expectation in it.

    Raises:
        ConfigError: The file is missing, unreadable, not JSON or not a valid GX suite.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read expectation suite: {exc.strerror}") from None
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: expectation suite is not valid JSON: {exc}") from None
    build_gx_suite(payload, source=str(path))
    suite: dict[str, Any] = payload
    return suite


def build_gx_suite(suite: object, *, source: str) -> gx.ExpectationSuite:
    """Build a GX suite, failing loudly where GX would only log and drop a bad expectation.

    Args:
        suite: Suite JSON as loaded (``name``, ``expectations``, optional ``meta`` ...).
        source: What to name in errors: the file, or the suite.

    Raises:
        ConfigError: ``suite`` is not a valid GX 1.24 suite; the message names ``source``.
    """
    if not isinstance(suite, Mapping):
        raise ConfigError(f"{source}: expectation suite must be a JSON object")
    unknown = sorted(set(suite) - _SUITE_KEYS)
    if unknown:
        raise ConfigError(f"{source}: unknown key(s) in expectation suite: {unknown}")
    expectations = suite.get("expectations", [])
    if not isinstance(expectations, list):
        raise ConfigError(f"{source}: 'expectations' must be a list")
    for index, expectation in enumerate(expectations):
        _check_expectation(expectation, index, source)
    try:
        return gx.ExpectationSuite(**suite)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{source}: not a valid expectation suite: {_one_line(exc)}") from None


def _check_expectation(expectation: object, index: int, source: str) -> None:
    if not isinstance(expectation, Mapping):
        raise ConfigError(f"{source}: expectation #{index} must be a JSON object")
    try:
        ExpectationConfiguration(**expectation).to_domain_obj()
    except (TypeError, ValueError, GreatExpectationsError) as exc:
        kind = expectation.get("type", "<no type>")
        raise ConfigError(
            f"{source}: expectation #{index} ({kind}) is not valid: {_one_line(exc)}"
        ) from None


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())


@dataclass
class _ColumnFacts:
    """What the suite needs to know of one column, folded in chunk by chunk in bounded memory."""

    name: str
    # The target keeps every label (the suite lists them all); text keeps MAX_CATEGORIES + 1 at most.
    keep_all_values: bool
    rows: int = 0
    nulls: int = 0
    dtype: Any = None  # merged dtype of the chunks holding a value; None until one does
    null_dtypes: list[Any] = field(default_factory=list)  # dtypes of chunks holding only nulls
    all_text: bool = True  # every object chunk holding a value held strings only
    low: float = math.inf
    high: float = -math.inf
    values: set[Any] = field(default_factory=set)

    def add(self, series: pd.Series) -> None:
        """Fold one chunk of the column in."""
        nulls = int(series.isna().sum())
        self.rows += len(series)
        self.nulls += nulls
        if nulls == len(series):
            if series.dtype not in self.null_dtypes:
                self.null_dtypes.append(series.dtype)
            return
        self._merge_dtype(series.dtype)
        if self.all_text and pd.api.types.is_object_dtype(series.dtype):
            self.all_text = pd.api.types.infer_dtype(series, skipna=True) == "string"
        kind = gx_kind(series.dtype, holds_text=self.all_text)
        if kind == "numeric":
            # + 0.0 turns -0.0 into 0.0, so which zero bounds a range cannot depend on the chunking.
            self.low = min(self.low, float(series.min()) + 0.0)
            self.high = max(self.high, float(series.max()) + 0.0)
        if self.keep_all_values:
            self.values.update(_distinct(series))
        elif kind == "text" and len(self.values) <= MAX_CATEGORIES:
            # A chunk with more than MAX_CATEGORIES values proves the overflow with that many.
            self.values.update(_distinct(series)[: MAX_CATEGORIES + 1])

    def _merge_dtype(self, dtype: Any) -> None:
        merged = dtype if self.dtype is None else _common_dtype(self.dtype, dtype)
        if merged is None:
            raise ConfigError(
                f"column {self.name!r} is {self.dtype} in one chunk and {dtype} in another: "
                "a contract needs one type per column, so make the data agree on it"
            )
        self.dtype = merged

    @property
    def holds_text(self) -> bool:
        """Strings in every chunk holding a value, and at least one such chunk."""
        return self.all_text and self.nulls < self.rows

    def resolved_dtype(self) -> Any:
        """The column's dtype in the chunks joined (the module notes give the rule)."""
        if self.dtype is None:
            dtype = self.null_dtypes[0]
            for other in self.null_dtypes[1:]:
                dtype = _common_dtype(dtype, other) or np.dtype(object)
            return dtype
        dtype = self.dtype
        for other in self.null_dtypes:
            dtype = _common_dtype(dtype, other) or dtype
        return dtype

    def distinct(self) -> list[Any]:
        """Distinct values in a stable order, as the resolved dtype holds them."""
        values: Iterable[Any] = self.values
        dtype = self.resolved_dtype()
        if _is_numpy_number(dtype):
            # Values gathered as int64 read back as floats once another chunk widens the column.
            values = set(np.array(list(values), dtype=dtype).tolist())
        return sorted(values, key=lambda value: (type(value).__name__, value))


@dataclass
class _TableFacts:
    """Row count and per-column facts, in the first chunk's column order."""

    columns: dict[Any, _ColumnFacts]
    rows: int = 0

    def add(self, chunk: pd.DataFrame) -> None:
        """Fold one chunk in; its columns must be the first chunk's, in any order."""
        missing = [str(c) for c in self.columns if c not in chunk.columns]
        extra = [str(c) for c in chunk.columns if c not in self.columns]
        if missing or extra:
            raise DataError(
                f"a chunk's columns differ from the first chunk's: missing {missing}, extra {extra}"
            )
        self.rows += len(chunk)
        for column, facts in self.columns.items():
            facts.add(chunk[column])


def _gather(chunks: Iterable[pd.DataFrame], spec: DatasetSpec) -> _TableFacts:
    """Fold the chunks into facts, checking the required columns on the first one (fail fast)."""
    table: _TableFacts | None = None
    for chunk in chunks:
        if table is None:
            _require_columns(list(chunk.columns), spec)
            table = _TableFacts(
                {c: _ColumnFacts(str(c), keep_all_values=c == spec.target) for c in chunk.columns}
            )
        table.add(chunk)
    if table is None:
        raise DataError(f"dataset {spec.name!r}: no data to infer a contract from")
    return table


def _common_dtype(left: Any, right: Any) -> Any:
    """The dtype both merge into, as ``pd.concat`` gives it; None where they do not merge."""
    if left == right:
        return left
    if _is_numpy_number(left) and _is_numpy_number(right):
        return np.result_type(left, right)
    return None


def _is_numpy_number(dtype: Any) -> bool:
    return isinstance(dtype, np.dtype) and dtype.kind in "iuf"


def _distinct(series: pd.Series) -> list[Any]:
    """Distinct non-null values as plain Python objects.

    Nulls are dropped after ``unique``, from the few distinct values: checking every row of a
    text column for nulls costs as much as ``unique`` itself.
    """
    uniques = series.unique()
    values: list[Any] = uniques[~pd.isna(uniques)].tolist()
    return values


def _require_columns(columns: list[Any], spec: DatasetSpec) -> None:
    for column in (spec.target, *spec.sensitive):
        if column not in columns:
            role = "target" if column == spec.target else "sensitive"
            raise ConfigError(
                f"dataset {spec.name!r}: {role} column {column!r} is not in the data "
                f"(columns: {columns})"
            )


def _require_positive_label(labels: list[Any], spec: DatasetSpec) -> None:
    if not any(str(label) == spec.positive_label for label in labels):
        shown = labels[:_MAX_LABELS_SHOWN]
        more = f" and {len(labels) - len(shown)} more" if len(labels) > len(shown) else ""
        raise ConfigError(
            f"dataset {spec.name!r}: positive label {spec.positive_label!r} is not among the "
            f"values of target column {spec.target!r}; labels seen: {shown}{more}"
        )


def _expectation(kind: str, meta: dict[str, Any] | None = None, **kwargs: Any) -> dict[str, Any]:
    return {"type": kind, "kwargs": kwargs, "meta": meta or {}}


def _table_expectations(table: _TableFacts) -> Iterator[dict[str, Any]]:
    yield _expectation(
        "expect_table_columns_to_match_set",
        column_set=sorted(str(column) for column in table.columns),
        exact_match=True,
    )
    yield _expectation(
        "expect_table_row_count_to_be_between",
        {"observed_rows": table.rows},
        min_value=max(1, math.floor(table.rows * ROW_FLOOR_FRACTION)),
    )


def _column_expectations(facts: _ColumnFacts, *, is_target: bool) -> Iterator[dict[str, Any]]:
    column = facts.name
    yield _expectation("expect_column_to_exist", column=column)
    dtype = facts.resolved_dtype()
    kind = gx_kind(dtype, holds_text=facts.holds_text)
    if kind is None:
        logger.info("column %r: dtype %s has no GX type check; none inferred", column, dtype)
    else:
        yield _expectation(
            "expect_column_values_to_be_in_type_list",
            {"observed_dtype": str(dtype)},
            column=column,
            type_list=list(KINDS[kind].gx_types),
        )
    yield _null_expectation(column, facts.nulls / facts.rows)
    if is_target or facts.nulls == facts.rows:
        return
    if kind == "numeric":
        yield _expectation(
            "expect_column_values_to_be_between",
            column=column,
            min_value=facts.low,
            max_value=facts.high,
        )
    elif kind == "text":
        categories = facts.distinct()
        if len(categories) <= MAX_CATEGORIES:
            yield _expectation(
                "expect_column_values_to_be_in_set", column=column, value_set=categories
            )


def _null_expectation(column: str, null_fraction: float) -> dict[str, Any]:
    mostly = 1.0
    if null_fraction > 0:
        mostly = max(0.0, math.floor((1.0 - null_fraction - NULL_TOLERANCE) * 1000) / 1000)
    return _expectation(
        "expect_column_values_to_not_be_null",
        {"observed_null_fraction": round(null_fraction, 4)},
        column=column,
        mostly=mostly,
    )


def _label_expectations(spec: DatasetSpec, labels: list[Any]) -> Iterator[dict[str, Any]]:
    yield _expectation(
        "expect_column_values_to_be_in_set",
        {"role": "target labels"},
        column=spec.target,
        value_set=labels,
    )
    positive = [label for label in labels if str(label) == spec.positive_label]
    yield _expectation(
        "expect_column_distinct_values_to_contain_set",
        {"role": "positive label present"},
        column=spec.target,
        value_set=positive,
    )


def _suite_meta(table: _TableFacts, spec: DatasetSpec) -> dict[str, Any]:
    return {
        "evenflow": {
            "dataset": spec.name,
            "target": spec.target,
            "positive_label": spec.positive_label,
            "sensitive": list(spec.sensitive),
            "personal_columns": list(spec.personal_columns),
            "inferred_from_rows": table.rows,
            "note": "Starter suite inferred by evenflow.contracts.suite.infer_suite: edit it to state "
            "the data contract.",
        }
    }
