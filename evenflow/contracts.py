"""Data contracts: infer a starter Great Expectations suite from a frame, save it and load it back.

GX 1.x ships no profiler, so the starter suite is inferred here from a reference frame. It is a
first draft for the data team to edit and review like code, so it is deterministic: the same data
always gives the same file.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import great_expectations as gx
import numpy as np
import pandas as pd
from great_expectations.exceptions.exceptions import GreatExpectationsError
from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

from evenflow.errors import ConfigError
from evenflow.io import write_json_atomic
from evenflow.params import DatasetSpec

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

# Type names as GX's pandas check resolves them (numpy dtype names, pandas extension dtype classes).
# Integers and floats are one family: a CSV integer column with one missing value parses as float64,
# and the null check reports that more clearly than a type failure would.
_NUMERIC_TYPES = (
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "float32",
    "float64",
    "Int8Dtype",
    "Int16Dtype",
    "Int32Dtype",
    "Int64Dtype",
    "UInt8Dtype",
    "UInt16Dtype",
    "UInt32Dtype",
    "UInt64Dtype",
    "Float32Dtype",
    "Float64Dtype",
)
_BOOLEAN_TYPES = ("bool", "BooleanDtype")
_DATETIME_TYPES = ("datetime64[s]", "datetime64[ms]", "datetime64[us]", "datetime64[ns]")
# "str" matches each value of an object column; "StringDtype" matches pandas' python-backed strings.
_TEXT_TYPES = ("str", "StringDtype")

_SUITE_KEYS = frozenset({"name", "expectations", "suite_parameters", "meta", "notes", "id"})


def infer_suite(frame: pd.DataFrame, spec: DatasetSpec) -> dict[str, Any]:
    """Infer a starter expectation suite from a reference frame, as GX 1.24 serialises it.

    Raises:
        ConfigError: The target or a sensitive column is missing, or the positive label is not
            among the target's values.
    """
    _require_columns(frame, spec)
    labels = _sorted_values(frame[spec.target])
    _require_positive_label(labels, spec)
    expectations = [*_table_expectations(frame)]
    for column in frame.columns:
        expectations.extend(_column_expectations(frame[column], is_target=column == spec.target))
    expectations.extend(_label_expectations(spec, labels))
    draft = {"name": spec.name, "expectations": expectations, "meta": _suite_meta(frame, spec)}
    # GX's own serialisation is the canonical form: a suite saved by a GX context round-trips to
    # the same file (it drops default kwargs such as mostly=1.0 and adds its version to meta).
    suite: dict[str, Any] = build_gx_suite(draft, source=f"suite {spec.name!r}").to_json_dict()
    return suite


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


def _require_columns(frame: pd.DataFrame, spec: DatasetSpec) -> None:
    for column in (spec.target, *spec.sensitive):
        if column not in frame.columns:
            role = "target" if column == spec.target else "sensitive"
            raise ConfigError(
                f"dataset {spec.name!r}: {role} column {column!r} is not in the data "
                f"(columns: {list(frame.columns)})"
            )


def _require_positive_label(labels: list[Any], spec: DatasetSpec) -> None:
    if not any(str(label) == spec.positive_label for label in labels):
        shown = labels[:_MAX_LABELS_SHOWN]
        more = f" and {len(labels) - len(shown)} more" if len(labels) > len(shown) else ""
        raise ConfigError(
            f"dataset {spec.name!r}: positive label {spec.positive_label!r} is not among the "
            f"values of target column {spec.target!r}; labels seen: {shown}{more}"
        )


def _sorted_values(series: pd.Series) -> list[Any]:
    """Distinct non-null values as plain Python objects, in a stable order."""
    values = series.dropna().unique().tolist()
    return sorted(values, key=lambda value: (type(value).__name__, value))


def _expectation(kind: str, meta: dict[str, Any] | None = None, **kwargs: Any) -> dict[str, Any]:
    return {"type": kind, "kwargs": kwargs, "meta": meta or {}}


def _table_expectations(frame: pd.DataFrame) -> Iterator[dict[str, Any]]:
    yield _expectation(
        "expect_table_columns_to_match_set",
        column_set=sorted(str(column) for column in frame.columns),
        exact_match=True,
    )
    yield _expectation(
        "expect_table_row_count_to_be_between",
        {"observed_rows": len(frame)},
        min_value=max(1, math.floor(len(frame) * ROW_FLOOR_FRACTION)),
    )


def _column_expectations(series: pd.Series, *, is_target: bool) -> Iterator[dict[str, Any]]:
    column = str(series.name)
    yield _expectation("expect_column_to_exist", column=column)
    family = _type_family(series)
    if family is None:
        logger.info("column %r: dtype %s has no GX type check; none inferred", column, series.dtype)
    else:
        yield _expectation(
            "expect_column_values_to_be_in_type_list",
            {"observed_dtype": str(series.dtype)},
            column=column,
            type_list=list(family),
        )
    yield _null_expectation(series)
    if is_target or series.count() == 0:
        return
    if family is _NUMERIC_TYPES:
        yield _expectation(
            "expect_column_values_to_be_between",
            column=column,
            min_value=float(series.min()),
            max_value=float(series.max()),
        )
    elif family is _TEXT_TYPES:
        categories = _sorted_values(series)
        if len(categories) <= MAX_CATEGORIES:
            yield _expectation(
                "expect_column_values_to_be_in_set", column=column, value_set=categories
            )


def _type_family(series: pd.Series) -> tuple[str, ...] | None:
    """GX type names compatible with the column's dtype, or None where GX cannot express it."""
    dtype = series.dtype
    if pd.api.types.is_object_dtype(dtype):
        return _TEXT_TYPES if pd.api.types.infer_dtype(series, skipna=True) == "string" else None
    if dtype == pd.StringDtype():
        return _TEXT_TYPES
    name = dtype.name if isinstance(dtype, np.dtype) else type(dtype).__name__
    for family in (_NUMERIC_TYPES, _BOOLEAN_TYPES, _DATETIME_TYPES):
        if name in family:
            return family
    return None


def _null_expectation(series: pd.Series) -> dict[str, Any]:
    null_fraction = float(series.isna().mean())
    mostly = 1.0
    if null_fraction > 0:
        mostly = max(0.0, math.floor((1.0 - null_fraction - NULL_TOLERANCE) * 1000) / 1000)
    return _expectation(
        "expect_column_values_to_not_be_null",
        {"observed_null_fraction": round(null_fraction, 4)},
        column=str(series.name),
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


def _suite_meta(frame: pd.DataFrame, spec: DatasetSpec) -> dict[str, Any]:
    return {
        "evenflow": {
            "dataset": spec.name,
            "target": spec.target,
            "positive_label": spec.positive_label,
            "sensitive": list(spec.sensitive),
            "inferred_from_rows": len(frame),
            "note": "Starter suite inferred by evenflow.contracts.infer_suite: edit it to state "
            "the data contract.",
        }
    }
