"""Impact-ratio tables as a bias audit under New York City Local Law 144 draws them up.

Per sensitive column and per intersection of them, per category: its n, its selection rate (the
share decided positive) and its scoring rate (the share scored above the median score of all
rows), and each rate's impact ratio: the category's rate divided by the highest category's rate.
Each figure has a percentile interval from the Poisson(1) bootstrap the fairness report uses.
Rows are reduced to counts per finest cell (sensitive values x selected x above the median); a sum
of m Poisson(1) row weights is Poisson(m), so each replicate draws one Poisson count per cell and
every slice of that replicate sums the same draws.

What is left out is said, never dropped silently: rows whose category is unknown (missing, or a
configured value such as "Declined") are counted per slice; categories under the minimum share of
all rows are listed with their n and kept out of the ratios; the one rule for small groups
(:mod:`evenflow.assess.small_groups`) holds too: a private category shows only its n, an
insufficient one is shown, flagged "insufficient evidence", and is neither the reference nor
gated. A category's flag reads its impact ratio's interval against the four-fifths limit:
"below four-fifths" when the whole interval lies under it, "insufficient evidence" when the
interval straddles it, "ok" when it lies entirely at or above it.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from evenflow.assess.arrays import BoolArray, FloatArray, IntArray
from evenflow.assess.bootstrap import block_sizes, percentile_interval
from evenflow.assess.estimates import Estimate
from evenflow.assess.impact_tables import (
    MIN_COMPARED,
    RATES,
    UNSURE,
    ImpactCategory,
    ImpactRatioReport,
    ImpactSlice,
    Rate,
    RateRatio,
    SmallCategory,
    impact_flag,
)
from evenflow.assess.predictions import (
    DECISION_COLUMN,
    LABEL_COLUMN,
    MISSING,
    SCORE_COLUMN,
    group_labels,
)
from evenflow.assess.small_groups import (
    INSUFFICIENT,
    PRIVATE,
    REPORTED,
    CellStatus,
    cell_reason,
    cell_status,
)
from evenflow.config.fairness import JOIN, FairnessParams, ImpactRatioParams
from evenflow.errors import DataError

# Poisson draws held in memory at once (replicates x cell counts); results never depend on it.
_BLOCK_ELEMENTS = 1 << 22


@dataclass(frozen=True)
class _Cells:
    """Rows reduced to finest cells: their levels, point counts and label counts."""

    levels: tuple[tuple[str, ...], ...]
    unknown: tuple[BoolArray, ...]  # per column: which of its levels are unknown
    cell_levels: IntArray  # (cells, columns)
    counts: FloatArray  # (cells, selected, above)
    n_pos: FloatArray | None  # (cells,), None without labels


@dataclass(frozen=True)
class _Tally:
    """Per-group n, selected and above-median counts; leading axis is the replicate."""

    n: FloatArray
    selected: FloatArray
    above: FloatArray


def impact_ratio_report(
    predictions: pd.DataFrame, sensitive: Sequence[str], params: FairnessParams
) -> ImpactRatioReport:
    """Compute the impact-ratio tables of scored rows.

    Args:
        predictions: One row per person with ``score``, the sensitive columns, optionally
            ``decision`` (wins over ``score >= threshold``) and ``label`` (for the small-group
            rule's positives and negatives; without it only the privacy floor applies).
        sensitive: Sensitive columns; each one and every intersection of them gets a table.
        params: The fairness parameters: threshold, bootstrap, small-group rule, ``impact_ratio``.

    Returns:
        The tables, JSON-serialisable.

    Raises:
        DataError: If a column is missing, scores are not finite or there are no rows.
    """
    columns = tuple(sensitive)
    _check(predictions, columns)
    scores = predictions[SCORE_COLUMN].to_numpy(dtype=np.float64)
    selected, rule = _selected(predictions, scores, params.threshold)
    median = float(np.median(scores))
    cells = _cells(predictions, columns, selected, scores > median, params.impact_ratio)
    subsets = _subsets(len(columns), params.max_intersection_size)
    specs = [_spec(cells, columns, subset) for subset in subsets]
    points = [_group_tally(cells.counts[None], spec.membership) for spec in specs]
    replicates = _bootstrap(cells, [spec.membership for spec in specs], params)
    tables = tuple(
        _slice_table(cells, spec, point, reps, params)
        for spec, point, reps in zip(specs, points, replicates, strict=True)
    )
    return ImpactRatioReport(
        settings=params.impact_ratio,
        n_rows=len(predictions),
        selection_rule=rule,
        median_score=median,
        replicates=params.n_bootstrap,
        confidence_level=params.confidence_level,
        seed=params.seed,
        slices=tables,
    )


# --- rows to cells --------------------------------------------------------------------------


def _check(predictions: pd.DataFrame, columns: tuple[str, ...]) -> None:
    if not columns:
        raise DataError("impact ratios: at least one sensitive column is needed")
    missing = [c for c in (SCORE_COLUMN, *columns) if c not in predictions.columns]
    if missing:
        raise DataError(f"impact ratios: predictions lack columns {missing}")
    if len(predictions) == 0:
        raise DataError("impact ratios: predictions are empty")
    if not np.isfinite(predictions[SCORE_COLUMN].to_numpy(dtype=np.float64)).all():
        raise DataError(f"impact ratios: column '{SCORE_COLUMN}' must be finite")


def _selected(
    predictions: pd.DataFrame, scores: FloatArray, threshold: float
) -> tuple[BoolArray, str]:
    """Who is selected: the ``decision`` column where there is one, else the threshold."""
    if DECISION_COLUMN in predictions.columns:
        decisions = predictions[DECISION_COLUMN].to_numpy()
        if not np.isin(decisions, (0, 1)).all():
            raise DataError(f"impact ratios: column '{DECISION_COLUMN}' must hold only 0 and 1")
        return decisions == 1, f"column '{DECISION_COLUMN}' = 1"
    return scores >= threshold, f"score >= {threshold:g}"


def _cells(
    predictions: pd.DataFrame,
    columns: tuple[str, ...],
    selected: BoolArray,
    above: BoolArray,
    settings: ImpactRatioParams,
) -> _Cells:
    encoded = [pd.factorize(group_labels(predictions[c]), sort=True) for c in columns]
    levels = tuple(tuple(str(u) for u in uniques) for _, uniques in encoded)
    unknown_values = {MISSING, *settings.unknown_values}
    unknown = tuple(np.array([v in unknown_values for v in lv], dtype=np.bool_) for lv in levels)
    dims = tuple(len(lv) for lv in levels)
    flat = np.ravel_multi_index(tuple(codes for codes, _ in encoded), dims)
    present, cell = np.unique(flat, return_inverse=True)
    cell = cell.reshape(-1)
    n_cells = present.size
    keys = (cell * 2 + selected.astype(np.int64)) * 2 + above.astype(np.int64)
    counts = np.bincount(keys, minlength=n_cells * 4).astype(np.float64).reshape(n_cells, 2, 2)
    n_pos = None
    if LABEL_COLUMN in predictions.columns:
        labels = predictions[LABEL_COLUMN].to_numpy(dtype=np.float64)
        n_pos = np.bincount(cell, weights=labels, minlength=n_cells).astype(np.float64)
    return _Cells(
        levels=levels,
        unknown=unknown,
        cell_levels=np.column_stack(np.unravel_index(present, dims)).astype(np.int64),
        counts=counts,
        n_pos=n_pos,
    )


def _subsets(n_columns: int, max_size: int | None) -> list[tuple[int, ...]]:
    """Each column, then every intersection (up to ``max_size`` columns), as the fairness report."""
    largest = n_columns if max_size is None else min(max_size, n_columns)
    return [
        subset
        for size in range(1, largest + 1)
        for subset in itertools.combinations(range(n_columns), size)
    ]


@dataclass(frozen=True)
class _SliceSpec:
    """A slice: its columns (names and positions), cells x groups indicator, groups' level codes."""

    columns: tuple[str, ...]
    subset: tuple[int, ...]
    membership: FloatArray
    codes: IntArray


def _spec(cells: _Cells, columns: tuple[str, ...], subset: tuple[int, ...]) -> _SliceSpec:
    groups, cell_to_group = np.unique(
        cells.cell_levels[:, list(subset)], axis=0, return_inverse=True
    )
    membership = np.zeros((cells.cell_levels.shape[0], groups.shape[0]))
    membership[np.arange(membership.shape[0]), cell_to_group.reshape(-1)] = 1.0
    return _SliceSpec(
        columns=tuple(columns[c] for c in subset),
        subset=subset,
        membership=membership,
        codes=groups.astype(np.int64),
    )


def _group_tally(counts: FloatArray, membership: FloatArray) -> _Tally:
    """Counts shaped (replicates, cells, selected, above) summed into the slice's groups."""
    grouped = np.moveaxis(np.moveaxis(counts, 1, -1) @ membership, -1, 1)
    return _Tally(
        n=grouped.sum(axis=(2, 3)),
        selected=grouped[:, :, 1, :].sum(axis=-1),
        above=grouped[:, :, :, 1].sum(axis=-1),
    )


def _bootstrap(
    cells: _Cells, memberships: list[FloatArray], params: FairnessParams
) -> list[_Tally | None]:
    """Replicate tallies per slice; every slice of a replicate sums the same cell draws."""
    if params.n_bootstrap == 0:
        return [None for _ in memberships]
    rng = np.random.default_rng(params.seed)
    lam = cells.counts.reshape(-1)
    block = max(1, min(params.n_bootstrap, _BLOCK_ELEMENTS // lam.size))
    parts: list[list[_Tally]] = [[] for _ in memberships]
    for size in block_sizes(params.n_bootstrap, block):
        draws = rng.poisson(lam, size=(size, lam.size)).astype(np.float64)
        counts = draws.reshape(size, *cells.counts.shape)
        for store, membership in zip(parts, memberships, strict=True):
            store.append(_group_tally(counts, membership))
    return [
        _Tally(
            n=np.concatenate([p.n for p in store]),
            selected=np.concatenate([p.selected for p in store]),
            above=np.concatenate([p.above for p in store]),
        )
        for store in parts
    ]


# --- one slice's table ----------------------------------------------------------------------


def _rates(tally: _Tally) -> dict[Rate, FloatArray]:
    with np.errstate(divide="ignore", invalid="ignore"):
        return {"selection": tally.selected / tally.n, "scoring": tally.above / tally.n}


def _ratios(rates: FloatArray, reference: BoolArray) -> FloatArray:
    """Each group's rate over the highest reference group's rate, per replicate (NaN if 0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        highest = np.fmax.reduce(np.where(reference, rates, np.nan), axis=-1, keepdims=True)
        return np.where(highest > 0, rates / highest, np.nan)


@dataclass(frozen=True)
class _Groups:
    """A slice's groups: names, values, counts, status and which are compared."""

    names: list[str]
    values: list[dict[str, str]]
    n: IntArray
    known: BoolArray
    large: BoolArray
    status: list[CellStatus]
    reasons: list[str | None]


def _groups(cells: _Cells, spec: _SliceSpec, point: _Tally, params: FairnessParams) -> _Groups:
    n_rows = int(cells.counts.sum())
    values = [
        {
            name: cells.levels[c][int(code)]
            for name, c, code in zip(spec.columns, spec.subset, row, strict=True)
        }
        for row in spec.codes
    ]
    unknown = [cells.unknown[c][spec.codes[:, j]] for j, c in enumerate(spec.subset)]
    known = ~np.any(np.column_stack(unknown), axis=1)
    n = point.n[0].astype(np.int64)
    n_pos = None if cells.n_pos is None else cells.n_pos @ spec.membership
    status: list[CellStatus] = []
    reasons: list[str | None] = []
    for g, rows in enumerate(n.tolist()):
        if n_pos is None:
            private = rows < params.min_cell
            status.append(PRIVATE if private else REPORTED)
            reasons.append(cell_reason(rows, 0, 0, params) if private else None)
            continue
        pos = int(n_pos[g])
        status.append(cell_status(rows, pos, rows - pos, params))
        reasons.append(cell_reason(rows, pos, rows - pos, params))
    return _Groups(
        names=[JOIN.join(v.values()) for v in values],
        values=values,
        n=n,
        known=known,
        large=n >= params.impact_ratio.min_share * n_rows - 1e-9,
        status=status,
        reasons=reasons,
    )


def _slice_table(
    cells: _Cells,
    spec: _SliceSpec,
    point: _Tally,
    replicates: _Tally | None,
    params: FairnessParams,
) -> ImpactSlice:
    n_rows = int(cells.counts.sum())
    groups = _groups(cells, spec, point, params)
    shown = groups.known & groups.large
    reference = shown & np.array([s == REPORTED for s in groups.status], dtype=np.bool_)
    enough = int(reference.sum()) >= MIN_COMPARED
    point_rates = _rates(point)
    rep_rates = None if replicates is None else _rates(replicates)
    figures = {
        rate: _rate_figures(
            point_rates[rate],
            None if rep_rates is None else rep_rates[rate],
            reference if enough else None,
            params.confidence_level,
        )
        for rate in RATES
    }
    categories = tuple(
        _category(groups, g, figures, params, n_rows) for g in np.flatnonzero(shown).tolist()
    )
    excluded = tuple(
        SmallCategory(
            name=groups.names[g],
            values=groups.values[g],
            n=int(groups.n[g]),
            share=float(groups.n[g]) / n_rows,
        )
        for g in np.flatnonzero(groups.known & ~groups.large).tolist()
    )
    return ImpactSlice(
        name=JOIN.join(spec.columns),
        columns=spec.columns,
        n_rows=n_rows,
        n_unknown=int(groups.n[~groups.known].sum()),
        reference={
            rate: _highest(point_rates[rate][0], reference, groups.names) if enough else None
            for rate in RATES
        },
        categories=categories,
        excluded=excluded,
        note=None if enough else "fewer than two reported categories: no impact ratios",
    )


@dataclass(frozen=True)
class _Figures:
    """One rate's point values and intervals, and its impact ratios', per group."""

    rate: FloatArray
    rate_bounds: tuple[FloatArray, FloatArray] | None
    ratio: FloatArray | None
    ratio_bounds: tuple[FloatArray, FloatArray] | None


def _rate_figures(
    point: FloatArray, replicates: FloatArray | None, reference: BoolArray | None, level: float
) -> _Figures:
    rate_bounds = None if replicates is None else percentile_interval(replicates, level)
    if reference is None:
        return _Figures(point[0], rate_bounds, None, None)
    ratio = _ratios(point, reference)[0]
    ratio_bounds = (
        None if replicates is None else percentile_interval(_ratios(replicates, reference), level)
    )
    return _Figures(point[0], rate_bounds, ratio, ratio_bounds)


def _highest(rates: FloatArray, reference: BoolArray, names: list[str]) -> str | None:
    masked = np.where(reference, rates, np.nan)
    if not np.isfinite(masked).any():
        return None
    return names[int(np.nanargmax(masked))]


def _category(
    groups: _Groups, g: int, figures: dict[Rate, _Figures], params: FairnessParams, n_rows: int
) -> ImpactCategory:
    status = groups.status[g]
    base = {
        "name": groups.names[g],
        "values": groups.values[g],
        "n": int(groups.n[g]),
        "share": float(groups.n[g]) / n_rows,
        "status": status,
        "reason": groups.reasons[g],
    }
    if status == PRIVATE:  # only n: never a rate
        return ImpactCategory(**base)
    limit = params.impact_ratio.four_fifths
    rates = {rate: _rate_ratio(figures[rate], g, status, limit) for rate in RATES}
    return ImpactCategory(**base, **rates)


def _rate_ratio(figures: _Figures, g: int, status: CellStatus, limit: float) -> RateRatio:
    rate = _estimate(figures.rate, figures.rate_bounds, g)
    if figures.ratio is None:
        return RateRatio(rate=rate)
    ratio = _estimate(figures.ratio, figures.ratio_bounds, g)
    if status == INSUFFICIENT:
        return RateRatio(rate=rate, impact_ratio=ratio, flag=UNSURE)
    if figures.ratio_bounds is None:  # no bootstrap: the point value is all there is
        value = ratio.value
        return RateRatio(rate=rate, impact_ratio=ratio, flag=impact_flag(value, value, limit))
    return RateRatio(rate=rate, impact_ratio=ratio, flag=impact_flag(ratio.low, ratio.high, limit))


def _estimate(values: FloatArray, bounds: tuple[FloatArray, FloatArray] | None, g: int) -> Estimate:
    if bounds is None:
        return Estimate(value=_finite(values[g]))
    return Estimate(value=_finite(values[g]), low=_finite(bounds[0][g]), high=_finite(bounds[1][g]))


def _finite(value: float) -> float | None:
    number = float(value)
    return number if np.isfinite(number) else None
