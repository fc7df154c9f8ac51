"""Row rules: a contract's column expectations compiled to vectorised per-row checks.

Row checks evaluate the contract's column expectations directly in pandas, one vectorised mask
per expectation, rather than running Great Expectations with ``unexpected_index_list``:

- **Meaning.** A contract is written for batches; some of its expectations are not about single
  rows. ``mostly`` < 1 says a share of nulls or odd values is normal, so a row with one is not
  wrong (the batch share is still checked and reported as a warning); the table-level checks (the
  column set, a training-size row floor, "the positive label occurs") do not apply to a scoring
  batch; a scoring row without a label is the normal case. GX's type check judges a CSV column's
  dtype, so one unreadable cell makes every value of the column "unexpected"; here a cell fails
  only if it is not a value of the contracted kind ("37" is a number, "unknown" is not).
- **Speed.** GX builds a context, resolves metrics and, with the COMPLETE result format, lists
  every unexpected index and value in Python; the masks are plain vectorised pandas (see the
  scoring benchmark, "Batch scoring"). A unit test checks that both agree row for row on the
  expectations they share.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from evenflow.contracts.kinds import KINDS, Kind, dtype_holds, is_plain_numeric, kind_of_type_list

_INTEGER_SIGNATURE = frozenset({"long", "integer"})


@dataclass(frozen=True)
class RowRule:
    """One contract expectation evaluated per row: ``failing`` marks the rows that break it."""

    expectation: str
    column: str
    failing: Callable[[pd.Series], pd.Series]
    explain: Callable[[pd.Series], pd.Series]
    secondary: bool = False
    """Counted only for rows no contract rule on the same column already rejected."""
    mostly: float = 1.0
    """Below 1 a share of odd rows is normal: no row is rejected, the batch share is reported."""
    expects: Kind | None = None
    """Type rules: the kind of value a column must hold at least once (else it is the wrong one)."""

    @property
    def key(self) -> str:
        """The rule as counted and quoted: ``expectation[column]``."""
        return f"{self.expectation}[{self.column}]"


def row_rules(
    columns: Sequence[str],
    suite: Mapping[str, Any],
    *,
    features: Mapping[str, str],
    target: str | None,
    label_empty: bool = False,
) -> tuple[list[RowRule], list[str]]:
    """Turn the suite's expectations into row rules; list what is skipped and why.

    Returns the rules (``mostly`` < 1 ones only report the batch share) and the expectations not
    checked per row, with the reason. ``label_empty``: the batch's label column holds no value.
    """
    rules: list[RowRule] = []
    skipped: list[str] = []
    for expectation in suite.get("expectations", []):
        kind = str(expectation.get("type"))
        kwargs: dict[str, Any] = dict(expectation.get("kwargs") or {})
        column = kwargs.get("column")
        where = f"{kind} on '{column}'" if column is not None else kind
        if kind == "expect_column_to_exist" and column in columns:
            continue  # met: nothing to check per row
        reason = _not_row_level(kind, kwargs, column, columns, target, label_empty=label_empty)
        if reason:
            skipped.append(f"{where}: {reason}")
            continue
        assert isinstance(column, str)  # _not_row_level skips expectations without a column
        rule = _RULE_BUILDERS[kind](kind, column, kwargs)
        if rule is None:
            skipped.append(f"{where}: type list {kwargs.get('type_list')} not checkable per row")
            continue
        rules.append(replace(rule, mostly=float(kwargs.get("mostly", 1.0))))
    for column, signature_type in features.items():
        if signature_type in _INTEGER_SIGNATURE and column in columns:
            rules.append(_whole_number_rule(column))
    return rules, skipped


def numbers(values: pd.Series) -> pd.Series:
    """The values as numbers: text that is not a number becomes NaN."""
    return pd.to_numeric(values, errors="coerce") if not is_plain_numeric(values.dtype) else values


def _not_row_level(
    kind: str,
    kwargs: Mapping[str, Any],
    column: Any,
    columns: Sequence[str],
    target: str | None,
    *,
    label_empty: bool,
) -> str | None:
    """Why an expectation is not checked per row, or None when it is."""
    if kind in _TABLE_LEVEL:
        return _TABLE_LEVEL[kind]
    if kind not in _RULE_BUILDERS and kind != "expect_column_to_exist":
        return "not an expectation type evenflow checks per row"
    if column is None or kwargs.get("row_condition"):
        return "names no column, or holds a row condition"
    return _not_in_batch(kind, str(column), columns, target, label_empty=label_empty)


def _not_in_batch(
    kind: str, column: str, columns: Sequence[str], target: str | None, *, label_empty: bool
) -> str | None:
    """Expectations on columns a scoring batch need not carry, or on the label's nulls."""
    label = column == target
    if column not in columns:
        return "the label is absent" if label else "column absent (not a model input)"
    if label and kind == "expect_column_values_to_not_be_null":
        return "a scoring row may have no label"
    if label and label_empty:
        return "the label column is empty"
    return None


_TABLE_LEVEL = {
    "expect_table_columns_to_match_set": "table-level; a scoring batch may lack the label and "
    "carry id columns (missing model inputs stop the batch)",
    "expect_table_row_count_to_be_between": "table-level; a training-size floor, not a row rule",
    "expect_column_distinct_values_to_contain_set": "batch-level; about the set of labels seen",
}


def _type_rule(kind: str, column: str, kwargs: Mapping[str, Any]) -> RowRule | None:
    expected = kind_of_type_list(kwargs.get("type_list") or [])
    if expected is None:
        return None
    key = f"{kind}[{column}]"

    def failing(values: pd.Series) -> pd.Series:
        return values.notna() & ~_of_kind(values, expected)

    def explain(values: pd.Series) -> pd.Series:
        return f"{key}: " + values.map(repr) + f" is not {KINDS[expected].words}"

    return RowRule(kind, column, failing, explain, expects=expected)


def _of_kind(values: pd.Series, kind: Kind) -> pd.Series:
    """Per value: is it of the kind (nulls count as yes; the null check judges them)."""
    dtype = values.dtype
    inferred = pd.api.types.infer_dtype(values, skipna=True)
    if dtype_holds(dtype, kind) or inferred == "empty" or inferred in _PURE[kind]:
        return pd.Series(True, index=values.index)
    if pd.api.types.is_object_dtype(dtype) or isinstance(dtype, pd.CategoricalDtype):
        return values.isna() | values.map(_VALUE_TESTS[kind]).astype(bool)
    return values.isna()


def _is_number(value: Any) -> bool:
    if isinstance(value, bool | np.bool_):
        return False
    if isinstance(value, int | float | np.number):
        return True
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return False
        return True
    return False


def _is_datetime(value: Any) -> bool:
    if isinstance(value, datetime | np.datetime64):
        return True
    if isinstance(value, str):
        try:
            datetime.fromisoformat(value)
        except ValueError:
            return False
        return True
    return False


# pandas' inferred kinds of a column whose every non-null value is of the kind (checked in C).
_PURE: dict[Kind, frozenset[str]] = {
    "numeric": frozenset({"integer", "floating", "mixed-integer-float", "decimal"}),
    "text": frozenset({"string"}),
    "boolean": frozenset({"boolean"}),
    "datetime": frozenset({"datetime64", "datetime"}),
}
_VALUE_TESTS: dict[Kind, Callable[[Any], bool]] = {
    "numeric": _is_number,
    "text": lambda value: isinstance(value, str),
    "boolean": lambda value: isinstance(value, bool | np.bool_),
    "datetime": _is_datetime,
}


def _between_rule(kind: str, column: str, kwargs: Mapping[str, Any]) -> RowRule | None:
    low, high = kwargs.get("min_value"), kwargs.get("max_value")
    strict_low, strict_high = bool(kwargs.get("strict_min")), bool(kwargs.get("strict_max"))
    key = f"{kind}[{column}]"
    bounds = f"{'(' if strict_low else '['}{low}, {high}{')' if strict_high else ']'}"

    def failing(values: pd.Series) -> pd.Series:
        numbered = numbers(values)
        out = pd.Series(False, index=values.index)
        if low is not None:
            out |= numbered <= low if strict_low else numbered < low
        if high is not None:
            out |= numbered >= high if strict_high else numbered > high
        return out & numbered.notna()

    def explain(values: pd.Series) -> pd.Series:
        return f"{key}: " + values.map(repr) + f" not in {bounds}"

    return RowRule(kind, column, failing, explain)


def _in_set_rule(kind: str, column: str, kwargs: Mapping[str, Any]) -> RowRule | None:
    allowed = list(kwargs.get("value_set") or [])
    key = f"{kind}[{column}]"

    def failing(values: pd.Series) -> pd.Series:
        return values.notna() & ~values.isin(allowed)

    def explain(values: pd.Series) -> pd.Series:
        return f"{key}: " + values.map(repr) + " not in the set"

    return RowRule(kind, column, failing, explain)


def _not_null_rule(kind: str, column: str, kwargs: Mapping[str, Any]) -> RowRule | None:
    key = f"{kind}[{column}]"

    def failing(values: pd.Series) -> pd.Series:
        return values.isna()

    def explain(values: pd.Series) -> pd.Series:
        return pd.Series(f"{key}: missing", index=values.index)

    return RowRule(kind, column, failing, explain)


def _whole_number_rule(column: str) -> RowRule:
    expectation = "model_signature_whole_number"
    key = f"{expectation}[{column}]"

    def failing(values: pd.Series) -> pd.Series:
        numbered = numbers(values)
        return numbered.isna() | (numbered % 1 != 0)

    def explain(values: pd.Series) -> pd.Series:
        return f"{key}: " + values.map(repr) + " is not a whole number (the model's input)"

    return RowRule(expectation, column, failing, explain, secondary=True)


_RULE_BUILDERS: dict[str, Callable[[str, str, Mapping[str, Any]], RowRule | None]] = {
    "expect_column_values_to_be_in_type_list": _type_rule,
    "expect_column_values_to_be_between": _between_rule,
    "expect_column_values_to_be_in_set": _in_set_rule,
    "expect_column_values_to_not_be_null": _not_null_rule,
}
