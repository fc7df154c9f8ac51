"""Data profiles: the schema and statistics of a table, built from a sample, merged shard by shard.

Profiles hold aggregates only: dtypes, null counts, numeric moments and a percentile grid,
and the category counts of low-cardinality text columns. Counts, min/max, mean and std merge
exactly (``merge_profiles``), so a profile can be built shard by shard; merged quantiles are
interpolated from the parts' grids and are approximate, as are quantiles of any sampled profile.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from pydantic import Field

from evenflow.contracts.kinds import ProfileKind, profile_kind
from evenflow.contracts.suite import MAX_CATEGORIES
from evenflow.records import Record

# Probabilities of the stored quantile grid: every percentile (ends are the sample's min and max).
# 101 numbers per numeric column keep merged quantiles within about 1% of their rank.
QUANTILE_PROBS: tuple[float, ...] = tuple(i / 100 for i in range(101))
_REPORTED_QUANTILES = {"p05": 5, "p50": 50, "p95": 95}


class NumericStats(Record):
    """Moments and quantiles of a numeric column's non-null values."""

    min: float
    max: float
    mean: float
    std: float = Field(description="Sample standard deviation (ddof=1); 0 for a single value.")
    quantile_grid: tuple[float, ...] = Field(
        description="Values at QUANTILE_PROBS (each percentile); approximate after a merge."
    )

    @property
    def quantiles(self) -> dict[str, float]:
        """The 5th, 50th and 95th percentiles."""
        return {name: self.quantile_grid[index] for name, index in _REPORTED_QUANTILES.items()}


class ColumnProfile(Record):
    """Aggregates of one column: never its values, except the categories of a low-cardinality one."""

    name: str
    dtype: str
    kind: ProfileKind
    n_rows: int
    n_null: int
    numeric: NumericStats | None = None
    categories: dict[str, int] | None = Field(
        default=None, description="Category -> count, when at most max_categories distinct."
    )
    n_distinct: int = Field(
        description="Distinct non-null values; a lower bound after merging high-cardinality parts."
    )

    @property
    def null_fraction(self) -> float:
        """Share of rows that are null."""
        return self.n_null / self.n_rows if self.n_rows else 0.0

    @property
    def type_label(self) -> str:
        """Kind and dtype, as shown in a diff."""
        return f"{self.kind} ({self.dtype})"


class DataProfile(Record):
    """Schema and statistics of a table (or a sample of it), mergeable shard by shard."""

    n_rows: int = Field(description="Rows profiled.")
    total_rows: int = Field(description="Rows in the data described (more than n_rows if sampled).")
    max_categories: int
    columns: tuple[ColumnProfile, ...]
    dropped_columns: tuple[str, ...] = Field(
        default=(),
        description="Raw columns removed before this data was stored (the split column): "
        "a candidate that carries them is not reporting new columns.",
    )

    def column(self, name: str) -> ColumnProfile | None:
        """The profile of column ``name``, or None."""
        return next((column for column in self.columns if column.name == name), None)

    @property
    def column_names(self) -> tuple[str, ...]:
        """Column names in table order."""
        return tuple(column.name for column in self.columns)


def profile(frame: pd.DataFrame, max_categories: int = MAX_CATEGORIES) -> DataProfile:
    """Profile ``frame`` (typically a sample): aggregates per column, no rows kept.

    Args:
        frame: The data, or a sample of it.
        max_categories: Text columns with more distinct values keep only their distinct count,
            so ids and free text never end up in the profile.
    """
    columns = tuple(_profile_column(frame[name], max_categories) for name in frame.columns)
    return DataProfile(
        n_rows=len(frame), total_rows=len(frame), max_categories=max_categories, columns=columns
    )


def merge_profiles(parts: Sequence[DataProfile]) -> DataProfile:
    """Merge profiles of disjoint parts (shards) of one table.

    Counts, nulls, min/max, mean and std are exact; quantiles are interpolated from the parts'
    grids (approximate). A column missing from some parts is profiled from the parts that have it.

    Raises:
        ValueError: ``parts`` is empty.
    """
    if not parts:
        raise ValueError("merge_profiles needs at least one profile")
    max_categories = parts[0].max_categories
    names = list(dict.fromkeys(name for part in parts for name in part.column_names))
    columns = []
    for name in names:
        pieces = [column for part in parts if (column := part.column(name)) is not None]
        columns.append(_merge_columns(pieces, max_categories))
    return DataProfile(
        n_rows=sum(part.n_rows for part in parts),
        total_rows=sum(part.total_rows for part in parts),
        max_categories=max_categories,
        columns=tuple(columns),
        dropped_columns=tuple(dict.fromkeys(c for part in parts for c in part.dropped_columns)),
    )


def _profile_column(series: pd.Series, max_categories: int) -> ColumnProfile:
    kind = profile_kind(series.dtype)
    values = series.dropna()
    numeric = _numeric_stats(values) if kind == "numeric" and len(values) else None
    categories = None
    n_distinct = int(values.nunique())
    if kind in ("text", "boolean") and n_distinct <= max_categories:
        counts = values.astype(str).value_counts()
        categories = {str(key): int(count) for key, count in sorted(counts.items())}
        n_distinct = len(categories)
    return ColumnProfile(
        name=str(series.name),
        dtype=str(series.dtype),
        kind=kind,
        n_rows=len(series),
        n_null=len(series) - len(values),
        numeric=numeric,
        categories=categories,
        n_distinct=n_distinct,
    )


def _numeric_stats(values: pd.Series) -> NumericStats:
    floats = values.to_numpy(dtype=np.float64)
    grid = np.quantile(floats, QUANTILE_PROBS)
    return NumericStats(
        min=float(floats.min()),
        max=float(floats.max()),
        mean=float(floats.mean()),
        std=float(floats.std(ddof=1)) if len(floats) > 1 else 0.0,
        quantile_grid=tuple(float(value) for value in grid),
    )


def _merge_columns(pieces: Sequence[ColumnProfile], max_categories: int) -> ColumnProfile:
    first = pieces[0]
    kinds = {piece.kind for piece in pieces}
    # Parts that disagree on the type (a shard of all-null text, say) fall back to the first's.
    same = [piece for piece in pieces if piece.kind == first.kind] if len(kinds) > 1 else pieces
    stats = [(piece.n_rows - piece.n_null, piece.numeric) for piece in same if piece.numeric]
    categories, n_distinct = _merge_categories(same, max_categories)
    return ColumnProfile(
        name=first.name,
        dtype=first.dtype,
        kind=first.kind,
        n_rows=sum(piece.n_rows for piece in pieces),
        n_null=sum(piece.n_null for piece in pieces),
        numeric=_merge_numeric(stats) if stats else None,
        categories=categories,
        n_distinct=n_distinct,
    )


def _merge_categories(
    pieces: Sequence[ColumnProfile], max_categories: int
) -> tuple[dict[str, int] | None, int]:
    lower_bound = max(piece.n_distinct for piece in pieces)
    if any(piece.categories is None and piece.n_distinct for piece in pieces):
        return None, lower_bound
    merged: dict[str, int] = {}
    for piece in pieces:
        for key, count in (piece.categories or {}).items():
            merged[key] = merged.get(key, 0) + count
    if len(merged) > max_categories:
        return None, len(merged)
    return dict(sorted(merged.items())), len(merged)


def _merge_numeric(parts: Sequence[tuple[int, NumericStats]]) -> NumericStats:
    """Chan's parallel update for mean and variance; quantiles by inverting the mixed CDF."""
    count, mean, m2 = 0, 0.0, 0.0
    for n, stats in parts:
        total = count + n
        delta = stats.mean - mean
        mean += delta * n / total
        m2 += stats.std**2 * (n - 1) + delta**2 * count * n / total
        count = total
    return NumericStats(
        min=min(stats.min for _, stats in parts),
        max=max(stats.max for _, stats in parts),
        mean=mean,
        std=math.sqrt(m2 / (count - 1)) if count > 1 else 0.0,
        quantile_grid=_merge_quantiles(parts),
    )


def _merge_quantiles(parts: Sequence[tuple[int, NumericStats]]) -> tuple[float, ...]:
    """Quantiles of the count-weighted mixture of the parts' piecewise-linear distributions."""
    points = np.unique(np.concatenate([np.asarray(s.quantile_grid) for _, s in parts]))
    weights = np.asarray([n for n, _ in parts], dtype=np.float64)
    cdfs = np.stack([_grid_cdf(np.asarray(s.quantile_grid), points) for _, s in parts])
    mixed = weights @ cdfs / weights.sum()
    return tuple(_inverse_cdf(mixed, points, p) for p in QUANTILE_PROBS)


def _grid_cdf(grid: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Right-continuous CDF of a quantile grid at ``points``: a repeated value is a point mass."""
    probs = np.asarray(QUANTILE_PROBS)
    below = np.searchsorted(grid, points, side="right") - 1
    inside = (below >= 0) & (below < len(grid) - 1)
    index = np.clip(below, 0, len(grid) - 2)
    low, high = grid[index], grid[index + 1]
    step = np.where(high > low, (points - low) / np.where(high > low, high - low, 1.0), 0.0)
    interpolated = probs[index] + step * (probs[index + 1] - probs[index])
    return np.where(inside, interpolated, np.where(below < 0, 0.0, 1.0))


def _inverse_cdf(cdf: np.ndarray, points: np.ndarray, prob: float) -> float:
    """The smallest grid point where ``cdf`` reaches ``prob``.

    No interpolation between points: for discrete columns (counts, codes) the answer stays a value
    the data holds, and with percentile grids the points are dense enough for continuous ones.
    """
    index = int(np.searchsorted(cdf, prob - 1e-9, side="left"))
    return float(points[min(index, len(points) - 1)])
