"""Reweighing (Kamiran & Calders): training weights that give every group the overall label rate.

Computed from (group, label) cell counts, which add across shards: workers count, the driver sums
and builds the table, and each worker weights its own rows with it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from evenflow.assess.arrays import FloatArray, IntArray, ObjectArray
from evenflow.assess.predictions import group_labels
from evenflow.errors import DataError

CellKey = tuple[str, int]


def group_keys(values: Any) -> ObjectArray:
    """Group labels as Python strings, missing values as their own ``(missing)`` group.

    The same convention as the fairness report, so a mitigation and its report see the same groups.
    """
    return np.asarray(group_labels(pd.Series(values)).astype(object).to_numpy(), dtype=object)


def binary_labels(values: Any) -> IntArray:
    """Labels as a 1-D int64 array of 0 and 1, or a ``DataError``."""
    labels = np.asarray(values)
    if labels.ndim != 1 or not np.isin(labels, (0, 1)).all():
        raise DataError("labels must be a 1-D array of 0 and 1 (no missing values)")
    return labels.astype(np.int64)


def cell_counts(labels: Any, groups: Any) -> dict[CellKey, int]:
    """Rows per (group, label) cell: what a worker sends to the driver for its shards.

    Counts add across shards, so the driver sums the workers' dicts and calls
    ``reweighing_table`` without ever holding the rows.
    """
    y, g = binary_labels(labels), group_keys(groups)
    if y.size != g.size:
        raise DataError(f"labels ({y.size}) and groups ({g.size}) differ in length")
    counts = pd.Series(1, index=pd.MultiIndex.from_arrays([g, y])).groupby(level=[0, 1]).sum()
    return {(str(group), int(label)): int(n) for (group, label), n in counts.items()}


def reweighing_table(counts: Mapping[CellKey, int]) -> dict[CellKey, float]:
    """Kamiran & Calders weights ``w(g, y) = P(g) P(y) / P(g, y)`` from cell counts.

    In the weighted data every group has the overall label rate and the weights sum to the row
    count, so the learning rate of the booster needs no change. Empty cells get no weight.
    """
    total = sum(counts.values())
    if total <= 0:
        raise DataError("reweighing needs at least one row")
    by_group: dict[str, int] = {}
    by_label: dict[int, int] = {}
    for (group, label), n in counts.items():
        by_group[group] = by_group.get(group, 0) + n
        by_label[label] = by_label.get(label, 0) + n
    return {
        (group, label): by_group[group] * by_label[label] / (total * n)
        for (group, label), n in counts.items()
        if n > 0
    }


def reweighing_weights(labels: Any, groups: Any) -> dict[CellKey, float]:
    """Reweighing table of one frame's labels and sensitive values (see ``reweighing_table``)."""
    return reweighing_table(cell_counts(labels, groups))


def weights_for(labels: Any, groups: Any, table: Mapping[CellKey, float]) -> FloatArray:
    """Each row's weight from the table; a cell the table lacks gets 1.0 (left as it was)."""
    y, g = binary_labels(labels), group_keys(groups)
    if not table:
        return np.ones(y.size)
    lookup = pd.Series(
        list(table.values()), index=pd.MultiIndex.from_tuples(list(table.keys())), dtype="float64"
    )
    rows = pd.MultiIndex.from_arrays([g, y])
    weights: FloatArray = lookup.reindex(rows).fillna(1.0).to_numpy(dtype=np.float64)
    return weights
