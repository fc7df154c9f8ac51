"""The fairness report's engine: rows reduced to key tallies, groups as sums of cells, a fast bootstrap.

Every row gets a key (finest cell x calibration bin x label x decision). All statistics are sums
over keys, and every group of every slice is a sum of finest cells, so one weighted tally per
replicate serves all slices. Rows are sorted by key once; Poisson(1) weights for a block of
replicates are drawn as one array and reduced with ``np.add.reduceat``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import pandas as pd

from evenflow.assess.arrays import BoolArray, FloatArray, IntArray
from evenflow.assess.bootstrap import block_sizes, poisson_weights
from evenflow.assess.group_rates import RATE_METRICS, bin_index, rates_from_counts, ratio
from evenflow.assess.predictions import (
    DECISION_COLUMN,
    LABEL_COLUMN,
    ROW_ID_COLUMN,
    SCORE_COLUMN,
    group_labels,
)
from evenflow.config.fairness import JOIN, FairnessParams
from evenflow.errors import DataError

GROUP_METRICS = (*RATE_METRICS, "ece", "mean_score")
_REPLICATED = (*GROUP_METRICS, "bin_observed")
# Weights held in memory at once (replicates x rows); a constant, so results never depend on it.
_BLOCK_ELEMENTS = 1 << 22
MIN_GROUPS = 2  # a between-group summary needs at least two groups


@dataclass(frozen=True)
class Rows:
    """Rows reduced to what the report needs, sorted by key."""

    keys: IntArray
    scores: FloatArray
    cells: IntArray
    cell_levels: IntArray
    levels: tuple[tuple[str, ...], ...]
    n_bins: int

    @property
    def n_cells(self) -> int:
        """Finest cells (combinations of sensitive values) present in the rows."""
        return int(self.cell_levels.shape[0])

    @property
    def n_keys(self) -> int:
        """Possible keys: cell x calibration bin x label x decision."""
        return self.n_cells * self.n_bins * 4


@dataclass(frozen=True)
class Slice:
    """A slice's groups: which finest cells make up each group."""

    columns: tuple[str, ...]
    group_values: tuple[dict[str, str], ...]
    cell_to_group: IntArray
    membership: FloatArray

    @property
    def name(self) -> str:
        """The slice's name: its columns joined, or "overall"."""
        return JOIN.join(self.columns) if self.columns else "overall"

    def group_name(self, index: int) -> str:
        """A group's name: its values joined, or "all rows"."""
        values = self.group_values[index]
        return JOIN.join(values.values()) if values else "all rows"


def check_input(predictions: pd.DataFrame, sensitive: tuple[str, ...]) -> None:
    """Raise ``DataError`` unless the predictions can be reported on for ``sensitive``."""
    if not sensitive:
        raise DataError("fairness report: at least one sensitive column is needed")
    if len(set(sensitive)) != len(sensitive):
        raise DataError(f"fairness report: sensitive columns repeat: {list(sensitive)}")
    needed = [LABEL_COLUMN, SCORE_COLUMN, *sensitive]
    missing = [c for c in needed if c not in predictions.columns]
    if missing:
        raise DataError(f"fairness report: predictions lack columns {missing}")
    if len(predictions) == 0:
        raise DataError("fairness report: predictions are empty")
    labels = predictions[LABEL_COLUMN]
    if labels.isna().any() or not labels.isin([0, 1]).all():
        raise DataError(f"fairness report: column '{LABEL_COLUMN}' must hold only 0 and 1")
    scores = predictions[SCORE_COLUMN].to_numpy(dtype=np.float64)
    if not np.isfinite(scores).all() or scores.min() < 0.0 or scores.max() > 1.0:
        raise DataError(
            f"fairness report: column '{SCORE_COLUMN}' must hold probabilities in [0, 1]"
        )


def _decisions(predictions: pd.DataFrame, scores: np.ndarray, threshold: float) -> np.ndarray:
    """A ``decision`` column (e.g. per-group thresholds) wins over ``score >= threshold``."""
    if DECISION_COLUMN not in predictions.columns:
        return (scores >= threshold).astype(np.int64)
    decisions = predictions[DECISION_COLUMN].to_numpy()
    if not np.isin(decisions, (0, 1)).all():
        raise DataError(f"fairness report: column '{DECISION_COLUMN}' must hold only 0 and 1")
    return np.asarray(decisions, dtype=np.int64)


def prepare(predictions: pd.DataFrame, sensitive: tuple[str, ...], params: FairnessParams) -> Rows:
    """Encode cells and keys, then sort rows by (key, row id) so the bootstrap is order-free."""
    encoded = [_encode_column(predictions[c]) for c in sensitive]
    dims = tuple(len(levels) for _, levels in encoded)
    flat = np.ravel_multi_index(tuple(codes for codes, _ in encoded), dims)
    present, cells = np.unique(flat, return_inverse=True)
    cell_levels = np.column_stack(np.unravel_index(present, dims)).astype(np.int64)
    scores = predictions[SCORE_COLUMN].to_numpy(dtype=np.float64)
    labels = predictions[LABEL_COLUMN].to_numpy(dtype=np.int64)
    decisions = _decisions(predictions, scores, params.threshold)
    bins = bin_index(scores, params.calibration_bins)
    keys = ((cells.astype(np.int64) * params.calibration_bins + bins) * 2 + labels) * 2 + decisions
    if ROW_ID_COLUMN in predictions.columns:
        order = np.lexsort((predictions[ROW_ID_COLUMN].to_numpy(), keys))
    else:
        order = np.argsort(keys, kind="stable")
    return Rows(
        keys=keys[order],
        scores=scores[order],
        cells=cells.astype(np.int64)[order],
        cell_levels=cell_levels,
        levels=tuple(levels for _, levels in encoded),
        n_bins=params.calibration_bins,
    )


def _encode_column(series: pd.Series) -> tuple[IntArray, tuple[str, ...]]:
    """Codes of a sensitive column's group labels (missing values are a group of their own)."""
    codes, uniques = pd.factorize(group_labels(series), sort=True)
    return codes.astype(np.int64), tuple(str(u) for u in uniques)


def make_slices(data: Rows, columns: tuple[str, ...], max_size: int | None) -> list[Slice]:
    """The overall slice, each column, then every intersection of two or more columns."""
    largest = len(columns) if max_size is None else min(max_size, len(columns))
    subsets: list[tuple[int, ...]] = [()]
    for size in range(1, largest + 1):
        subsets.extend(itertools.combinations(range(len(columns)), size))
    return [_make_slice(data, columns, subset) for subset in subsets]


def _make_slice(data: Rows, columns: tuple[str, ...], subset: tuple[int, ...]) -> Slice:
    if subset:
        groups, cell_to_group = np.unique(
            data.cell_levels[:, list(subset)], axis=0, return_inverse=True
        )
        cell_to_group = cell_to_group.reshape(-1).astype(np.int64)
    else:
        groups = np.zeros((1, 0), dtype=np.int64)
        cell_to_group = np.zeros(data.n_cells, dtype=np.int64)
    membership = np.zeros((data.n_cells, groups.shape[0]), dtype=np.float64)
    membership[np.arange(data.n_cells), cell_to_group] = 1.0
    values = tuple(
        {columns[c]: data.levels[c][int(code)] for c, code in zip(subset, row, strict=True)}
        for row in groups
    )
    return Slice(
        columns=tuple(columns[c] for c in subset),
        group_values=values,
        cell_to_group=cell_to_group,
        membership=membership,
    )


# --- tallies and statistics -----------------------------------------------------------------


def tally(data: Rows) -> tuple[FloatArray, FloatArray]:
    """Unweighted counts and score sums per key, shaped (1, cells, bins, label, decision)."""
    shape = (1, data.n_cells, data.n_bins, 2, 2)
    counts = np.bincount(data.keys, minlength=data.n_keys).astype(np.float64)
    sums = np.bincount(data.keys, weights=data.scores, minlength=data.n_keys).astype(np.float64)
    return counts.reshape(shape), sums.reshape(shape)


def group_stats(
    counts: FloatArray, sums: FloatArray, membership: FloatArray
) -> dict[str, FloatArray]:
    """All per-group statistics from key tallies; leading axis is the replicate."""
    grouped = np.moveaxis(np.moveaxis(counts, 1, -1) @ membership, -1, 1)
    score_sums = np.moveaxis(np.moveaxis(sums, 1, -1) @ membership, -1, 1).sum(axis=(3, 4))
    confusion = grouped.sum(axis=2)
    tn, fp = confusion[..., 0, 0], confusion[..., 0, 1]
    fn, tp = confusion[..., 1, 0], confusion[..., 1, 1]
    n = tn + fp + fn + tp
    bin_n = grouped.sum(axis=(3, 4))
    bin_pos = grouped[..., 1, :].sum(axis=-1)
    rates = rates_from_counts(tp, fp, tn, fn)
    return {
        "n": n,
        "n_pos": fn + tp,
        "n_neg": tn + fp,
        "n_pred_pos": fp + tp,
        **{name: rates[name] for name in RATE_METRICS},
        "ece": ratio(np.abs(score_sums - bin_pos).sum(axis=-1), n),
        "mean_score": ratio(score_sums.sum(axis=-1), n),
        "bin_n": bin_n,
        "bin_mean": ratio(score_sums, bin_n),
        "bin_observed": ratio(bin_pos, bin_n),
    }


# --- bootstrap ------------------------------------------------------------------------------


def bootstrap_stats(
    data: Rows, slices: list[Slice], params: FairnessParams
) -> list[dict[str, FloatArray] | None]:
    """Replicate statistics per slice, shaped (replicates, groups[, bins]); None without replicates."""
    if params.n_bootstrap == 0:
        return [None for _ in slices]
    rng = np.random.default_rng(params.seed)
    n_rows = int(data.keys.size)
    block = max(1, min(params.n_bootstrap, _BLOCK_ELEMENTS // n_rows))
    row_chunk = max(1, _BLOCK_ELEMENTS // block)
    collected: list[list[dict[str, FloatArray]]] = [[] for _ in slices]
    for size in block_sizes(params.n_bootstrap, block):
        counts, sums = _weighted_tally(rng, data, size, row_chunk)
        for store, item in zip(collected, slices, strict=True):
            stats = group_stats(counts, sums, item.membership)
            store.append({name: stats[name] for name in _REPLICATED})
    return [
        {name: np.concatenate([part[name] for part in store]) for name in _REPLICATED}
        for store in collected
    ]


def _weighted_tally(
    rng: np.random.Generator, data: Rows, n_replicates: int, row_chunk: int
) -> tuple[FloatArray, FloatArray]:
    """Poisson-weighted counts and score sums per key for a block of replicates."""
    counts = np.zeros((n_replicates, data.n_keys))
    sums = np.zeros((n_replicates, data.n_keys))
    for start in range(0, data.keys.size, row_chunk):
        keys = data.keys[start : start + row_chunk]
        scores = data.scores[start : start + row_chunk]
        weights = poisson_weights(rng, (n_replicates, keys.size))
        starts = np.flatnonzero(np.concatenate([[True], keys[1:] != keys[:-1]]))
        present = keys[starts]
        counts[:, present] += np.add.reduceat(weights, starts, axis=1, dtype=np.float64)
        sums[:, present] += np.add.reduceat(weights * scores, starts, axis=1)
    shape = (n_replicates, data.n_cells, data.n_bins, 2, 2)
    return counts.reshape(shape), sums.reshape(shape)


def score_histograms(data: Rows, item: Slice, n_bins: int) -> IntArray:
    """Score histogram counts per group, shaped (groups, bins)."""
    per_cell = np.bincount(
        data.cells * n_bins + bin_index(data.scores, n_bins), minlength=data.n_cells * n_bins
    ).reshape(data.n_cells, n_bins)
    return (item.membership.T.astype(np.int64) @ per_cell).astype(np.int64)


def score_quantiles(data: Rows, item: Slice, levels: tuple[float, ...]) -> FloatArray:
    """Score quantiles per group (linear interpolation, as ``np.quantile``), shaped (groups, levels)."""
    groups = item.cell_to_group[data.cells]
    order = np.lexsort((data.scores, groups))
    scores = data.scores[order]
    sizes = np.bincount(groups, minlength=len(item.group_values))
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    out = np.empty((sizes.size, len(levels)))
    for j, q in enumerate(levels):
        position = (sizes - 1) * q
        below = np.floor(position).astype(np.int64)
        above = np.minimum(below + 1, sizes - 1)
        low, high = scores[starts + below], scores[starts + above]
        out[:, j] = low + (position - below) * (high - low)
    return out


# --- between-group summaries ----------------------------------------------------------------


def _spread(values: FloatArray) -> FloatArray:
    """Max minus min over groups (last axis); NaN where fewer than two groups are defined."""
    defined = np.isfinite(values).sum(axis=-1)
    spread = np.fmax.reduce(values, axis=-1) - np.fmin.reduce(values, axis=-1)
    return np.where(defined >= MIN_GROUPS, spread, np.nan)


def _min_over_max(values: FloatArray) -> FloatArray:
    defined = np.isfinite(values).sum(axis=-1)
    smallest_over_largest = ratio(np.fmin.reduce(values, axis=-1), np.fmax.reduce(values, axis=-1))
    return np.where(defined >= MIN_GROUPS, smallest_over_largest, np.nan)


SPREADS = {
    "demographic_parity_difference": "selection_rate",
    "equal_opportunity_difference": "tpr",
    "false_positive_rate_difference": "fpr",
    "predictive_parity_difference": "precision",
    "calibration_gap": "ece",
    "base_rate_difference": "base_rate",
}


def summary_values(stats: dict[str, FloatArray], kept: BoolArray) -> dict[str, FloatArray]:
    """Every between-group summary from (replicates, groups) statistics of the kept groups."""
    out = {name: _spread(stats[metric][:, kept]) for name, metric in SPREADS.items()}
    out["demographic_parity_ratio"] = _min_over_max(stats["selection_rate"][:, kept])
    out["equalized_odds_difference"] = np.fmax(
        out["equal_opportunity_difference"], out["false_positive_rate_difference"]
    )
    return out


def driving_metric(summary: str, values: dict[str, FloatArray]) -> str:
    """The per-group metric whose extremes a summary compares (EOD: the larger component)."""
    if summary == "equalized_odds_difference":
        tpr_gap = values["equal_opportunity_difference"][0]
        fpr_gap = values["false_positive_rate_difference"][0]
        return "fpr" if fpr_gap > tpr_gap else "tpr"
    return SPREADS.get(summary, "selection_rate")
