"""The profile diff: what changed between the reference data's profile and a candidate's.

The diff informs, it decides nothing: schema changes (a missing column, a changed type) break a
model trained on the reference; statistics changes (a range exceeded, a shifted mean, nulls,
categories) are reported beyond their thresholds. Each item holds both values, never text.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Literal

from pydantic import Field

from evenflow.assess.profile import ColumnProfile, DataProfile, NumericStats
from evenflow.records import Record

ChangeKind = Literal[
    "missing_column",
    "new_column",
    "type_changed",
    "min_below_range",
    "max_above_range",
    "mean_shift",
    "null_fraction",
    "categories_added",
    "categories_removed",
    "cardinality",
]
DiffValue = float | int | str | None
# Changes that break a consumer reading the columns it was trained on.
SCHEMA_CHANGES: frozenset[str] = frozenset({"missing_column", "type_changed"})


class DiffItem(Record):
    """One difference between the reference and the candidate data, with both values."""

    column: str
    change: ChangeKind
    reference: DiffValue
    candidate: DiffValue
    values: tuple[str, ...] = Field(
        default=(), description="Categories added or removed (for category changes)."
    )
    unit: str = Field(default="", description="What the values count, e.g. categories.")
    note: str = ""


class DataDiff(Record):
    """Schema and statistics differences, candidate against reference."""

    reference_rows: int
    candidate_rows: int
    shift_threshold: float
    null_tolerance: float
    items: tuple[DiffItem, ...] = ()

    @property
    def is_empty(self) -> bool:
        """True when nothing in the schema or statistics changed beyond the thresholds."""
        return not self.items

    @property
    def schema_changes(self) -> tuple[DiffItem, ...]:
        """Missing columns and type changes: what breaks a model trained on the reference."""
        return tuple(item for item in self.items if item.change in SCHEMA_CHANGES)

    def for_column(self, column: str) -> tuple[DiffItem, ...]:
        """The items about ``column``."""
        return tuple(item for item in self.items if item.column == column)


def diff_profiles(
    reference: DataProfile,
    candidate: DataProfile,
    *,
    shift_threshold: float = 0.5,
    null_tolerance: float = 0.01,
) -> DataDiff:
    """Compare a candidate's profile with the reference's.

    Args:
        reference: Profile of the data the model was trained on.
        candidate: Profile of the new batch.
        shift_threshold: Report a mean shift beyond this many reference standard deviations.
        null_tolerance: Report a null fraction that moved by more than this (absolute share).
    """
    items: list[DiffItem] = []
    for ref in reference.columns:
        cand = candidate.column(ref.name)
        if cand is None:
            items.append(_item(ref.name, "missing_column", ref.type_label, None))
        else:
            items.extend(_column_diff(ref, cand, shift_threshold, null_tolerance))
    ignored = {*reference.column_names, *reference.dropped_columns}
    items.extend(
        _item(cand.name, "new_column", None, cand.type_label)
        for cand in candidate.columns
        if cand.name not in ignored
    )
    return DataDiff(
        reference_rows=reference.n_rows,
        candidate_rows=candidate.n_rows,
        shift_threshold=shift_threshold,
        null_tolerance=null_tolerance,
        items=tuple(items),
    )


def _item(
    column: str,
    change: ChangeKind,
    reference: DiffValue,
    candidate: DiffValue,
    *,
    values: Iterable[str] = (),
    unit: str = "",
    note: str = "",
) -> DiffItem:
    return DiffItem(
        column=column,
        change=change,
        reference=reference,
        candidate=candidate,
        values=tuple(values),
        unit=unit,
        note=note,
    )


def _column_diff(
    ref: ColumnProfile, cand: ColumnProfile, shift_threshold: float, null_tolerance: float
) -> list[DiffItem]:
    if ref.kind != cand.kind:
        return [_item(ref.name, "type_changed", ref.type_label, cand.type_label)]
    items = []
    if abs(cand.null_fraction - ref.null_fraction) > null_tolerance:
        items.append(
            _item(
                ref.name,
                "null_fraction",
                round(ref.null_fraction, 4),
                round(cand.null_fraction, 4),
            )
        )
    if ref.numeric is not None and cand.numeric is not None:
        items.extend(_numeric_diff(ref.name, ref.numeric, cand.numeric, shift_threshold))
    items.extend(_category_diff(ref, cand))
    return items


def _numeric_diff(
    column: str, ref: NumericStats, cand: NumericStats, shift_threshold: float
) -> list[DiffItem]:
    items = []
    if cand.min < ref.min:
        items.append(_item(column, "min_below_range", ref.min, cand.min))
    if cand.max > ref.max:
        items.append(_item(column, "max_above_range", ref.max, cand.max))
    shift = _std_units(cand.mean - ref.mean, ref.std)
    if abs(shift) > shift_threshold:
        note = f"{shift:+.2f} reference std (threshold {shift_threshold:g})"
        items.append(_item(column, "mean_shift", ref.mean, cand.mean, note=note))
    return items


def _std_units(delta: float, std: float) -> float:
    """The shift in reference standard deviations; any shift of a constant column is infinite."""
    if std > 0:
        return delta / std
    return 0.0 if delta == 0 else math.copysign(math.inf, delta)


def _category_diff(ref: ColumnProfile, cand: ColumnProfile) -> list[DiffItem]:
    if ref.categories is None and cand.categories is None:
        return []
    if ref.categories is None or cand.categories is None:
        note = "one side has more distinct values than the profile keeps as categories"
        return [
            _item(
                ref.name,
                "cardinality",
                ref.n_distinct,
                cand.n_distinct,
                unit="distinct values",
                note=note,
            )
        ]
    items = []
    added = sorted(set(cand.categories) - set(ref.categories))
    removed = sorted(set(ref.categories) - set(cand.categories))
    counts = (len(ref.categories), len(cand.categories))
    if added:
        items.append(_item(ref.name, "categories_added", *counts, values=added, unit="categories"))
    if removed:
        items.append(
            _item(ref.name, "categories_removed", *counts, values=removed, unit="categories")
        )
    return items
