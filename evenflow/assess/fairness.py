"""Fairness report: per-group rates, calibration and score distributions, each with an interval.

Groups differ in base rates, so no single parity number says a model is fair. The report shows
parity, error-rate balance and calibration side by side, for every sensitive column and every
intersection of them, each value with a seeded percentile bootstrap interval. It holds aggregates
only.

One rule for small groups (:func:`cell_status`), used by every consumer (groups.json, the review,
the gates, monitoring, the model card): below ``min_cell`` rows a group is *private* and only its n
is shown; with fewer than ``min_positives`` positives or ``min_negatives`` negatives it is shown
with its (wide) intervals, marked *insufficient* evidence, and kept out of between-group summaries
and gates; otherwise it is *reported*. Every slice counts the groups and rows it left out.

How the bootstrap stays fast: every row gets a key (finest cell x calibration bin x label x
decision). All statistics are sums over keys, and every group of every slice is a sum of finest
cells, so one weighted tally per replicate serves all slices. Rows are sorted by key once; Poisson(1)
weights for a block of replicates are drawn as one array and reduced with ``np.add.reduceat``.
"""

from __future__ import annotations

import itertools
import logging
import math
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

import numpy as np
import numpy.typing as npt
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from evenflow.config.fairness import JOIN, FairnessParams
from evenflow.errors import DataError
from evenflow.numbers import finite_int

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

LABEL_COLUMN = "label"
DECISION_COLUMN = "decision"
SCORE_COLUMN = "score"
ROW_ID_COLUMN = "_row_id"
MISSING = "(missing)"

_MIN_GROUPS = 2  # a between-group summary needs at least two groups

CellStatus = Literal["private", "insufficient", "reported"]
PRIVATE: CellStatus = "private"
INSUFFICIENT: CellStatus = "insufficient"
REPORTED: CellStatus = "reported"
LEFT_OUT: tuple[CellStatus, ...] = (PRIVATE, INSUFFICIENT)

RATE_METRICS = ("base_rate", "selection_rate", "tpr", "fpr", "fnr", "precision", "accuracy")
GROUP_METRICS = (*RATE_METRICS, "ece", "mean_score")
_REPLICATED = (*GROUP_METRICS, "bin_observed")


def _poisson_table(bits: int = 16) -> npt.NDArray[np.uint8]:
    """Poisson(1) by inverse CDF on a ``bits``-bit grid.

    A uniform draw ``u`` has weight ``table[u]``, the number of CDF points (rounded to the grid)
    at or below ``u``.

    On 16 bits each probability is within 2**-17 of Poisson(1)'s; the tail beyond the grid
    (mass ~1e-5) is folded into the largest weight.
    """
    size = 1 << bits
    cdf = np.cumsum([math.exp(-1.0) / math.factorial(k) for k in range(16)])
    edges = np.round(cdf * size)
    return np.searchsorted(edges, np.arange(size), side="right").astype(np.uint8)


_POISSON_TABLE = _poisson_table()
_UINT64_MAX = np.iinfo(np.uint64).max
# Weights held in memory at once (replicates x rows); a constant, so results never depend on it.
_BLOCK_ELEMENTS = 1 << 22


def cell_status(n: int, n_pos: int, n_neg: int, params: FairnessParams) -> CellStatus:
    """The one rule for small groups: ``private``, ``insufficient`` or ``reported``.

    Args:
        n: Rows in the cell.
        n_pos: Positive labels in the cell.
        n_neg: Negative labels in the cell.
        params: ``min_cell`` (privacy floor), ``min_positives`` and ``min_negatives``.

    Returns:
        ``private`` when ``n < min_cell`` (only n may be shown); ``insufficient`` when
        ``n_pos < min_positives`` or ``n_neg < min_negatives`` (shown with its intervals, marked,
        kept out of summaries and gates); ``reported`` otherwise.
    """
    if n < params.min_cell:
        return PRIVATE
    if n_pos < params.min_positives or n_neg < params.min_negatives:
        return INSUFFICIENT
    return REPORTED


def cell_statuses(
    n: npt.ArrayLike, n_pos: npt.ArrayLike, n_neg: npt.ArrayLike, params: FairnessParams
) -> npt.NDArray[np.object_]:
    """:func:`cell_status` of many cells at once (elementwise over equal-shaped arrays)."""
    rows, pos, neg = (np.asarray(a) for a in (n, n_pos, n_neg))
    status = np.full(rows.shape, REPORTED, dtype=object)
    status[(pos < params.min_positives) | (neg < params.min_negatives)] = INSUFFICIENT
    status[rows < params.min_cell] = PRIVATE
    return status


def cell_reason(n: int, n_pos: int, n_neg: int, params: FairnessParams) -> str | None:
    """Why a cell is private or insufficient, in words; None for a reported cell.

    A private cell's reason names only its n: its positives are not shown.
    """
    status = cell_status(n, n_pos, n_neg, params)
    if status == PRIVATE:
        return f"{n} rows < min_cell={params.min_cell} (private: only n is shown)"
    if status == REPORTED:
        return None
    reasons = []
    if n_pos < params.min_positives:
        reasons.append(f"{n_pos} positives < min_positives={params.min_positives}")
    if n_neg < params.min_negatives:
        reasons.append(f"{n_neg} negatives < min_negatives={params.min_negatives}")
    return "insufficient evidence: " + "; ".join(reasons)


def record_status(record: Mapping[str, Any], params: FairnessParams) -> CellStatus:
    """The status of a logged per-group record (``groups.json``) under the rule.

    A record carries its ``status`` since the rule was unified. Older records carry ``n``,
    ``n_pos`` and ``suppressed`` instead: a suppressed one had no figures (private); the others
    are classified from their counts under ``params``.
    """
    status = record.get("status")
    if status in (PRIVATE, INSUFFICIENT, REPORTED):
        return cast(CellStatus, status)
    if record.get("suppressed"):
        return PRIVATE
    n, n_pos = finite_int(record.get("n")), finite_int(record.get("n_pos"))
    if n is None or n_pos is None:
        return PRIVATE  # nothing to classify by: show nothing
    return cell_status(n, n_pos, n - n_pos, params)


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Estimate(_Record):
    """A point value with its percentile bootstrap interval (None where undefined)."""

    value: float | None
    low: float | None = None
    high: float | None = None


class Disparity(Estimate):
    """A between-group summary, naming the groups at its two ends."""

    highest: str | None = Field(default=None, description="Group with the largest value.")
    lowest: str | None = Field(default=None, description="Group with the smallest value.")


class ReliabilityBin(_Record):
    """One bin of a reliability curve: mean score against observed positive rate."""

    lower: float
    upper: float
    n: int
    mean_score: float | None
    observed_rate: Estimate


class ScoreDistribution(_Record):
    """A group's scores as quantiles and histogram counts (edges live on the report)."""

    quantiles: dict[str, float] = Field(description="Quantile level (e.g. 'p50') -> score.")
    histogram_counts: tuple[int, ...]


class GroupMetrics(_Record):
    """Counts, rates and calibration of one group, with its status under the small-group rule.

    A ``private`` group shows only ``n``: its positives, negatives and rates are None. An
    ``insufficient`` group shows everything, with its (wide) intervals, but no summary uses it.
    """

    name: str
    values: dict[str, str] = Field(description="Sensitive column -> value defining the group.")
    n: int
    n_pos: int | None = Field(description="Positive labels; None for a private group.")
    n_neg: int | None = Field(description="Negative labels; None for a private group.")
    n_pred_pos: int | None
    status: CellStatus = Field(description="private, insufficient or reported (cell_status).")
    reason: str | None = Field(default=None, description="Why it is private or insufficient.")
    base_rate: Estimate | None = None
    selection_rate: Estimate | None = None
    tpr: Estimate | None = None
    fpr: Estimate | None = None
    fnr: Estimate | None = None
    precision: Estimate | None = None
    accuracy: Estimate | None = None
    ece: Estimate | None = None
    mean_score: Estimate | None = None
    reliability: tuple[ReliabilityBin, ...] = ()
    scores: ScoreDistribution | None = None


class LeftOut(_Record):
    """Groups of one status kept out of a slice's summaries, and their rows."""

    status: CellStatus
    groups: int
    rows: int


class SliceSummary(_Record):
    """Between-group summaries over the reported groups of a slice (max - min, or min/max)."""

    n_groups_compared: int
    n_rows_compared: int = Field(description="Rows of the groups the summaries compare.")
    n_rows_left_out: int = Field(description="Rows of private and insufficient groups.")
    left_out: tuple[LeftOut, ...] = Field(
        description="Per status (private, insufficient): groups and rows left out of summaries."
    )
    note: str | None = None
    demographic_parity_difference: Disparity | None = None
    demographic_parity_ratio: Disparity | None = None
    equalized_odds_difference: Disparity | None = None
    equal_opportunity_difference: Disparity | None = None
    false_positive_rate_difference: Disparity | None = None
    predictive_parity_difference: Disparity | None = None
    calibration_gap: Disparity | None = None
    base_rate_difference: Disparity | None = None


class SliceReport(_Record):
    """One sensitive column or one intersection of them, with its groups and summaries."""

    name: str
    columns: tuple[str, ...]
    groups: tuple[GroupMetrics, ...]
    summary: SliceSummary


class LeftOutCell(_Record):
    """A group kept out of summaries and gates: its status, counts (n only if private) and why."""

    slice: str
    group: str
    values: dict[str, str]
    status: CellStatus
    n: int
    n_pos: int | None
    n_neg: int | None
    reason: str


class BootstrapInfo(_Record):
    """How the intervals were made."""

    replicates: int
    confidence_level: float
    seed: int
    method: str = "Poisson(1) row weights, percentile intervals"


class FairnessReport(_Record):
    """Per-group and between-group fairness figures of one set of predictions; aggregates only."""

    params: FairnessParams
    sensitive: tuple[str, ...]
    n_rows: int
    n_pos: int
    n_neg: int
    calibration_edges: tuple[float, ...]
    histogram_edges: tuple[float, ...]
    bootstrap: BootstrapInfo
    overall: GroupMetrics
    slices: tuple[SliceReport, ...]
    left_out: tuple[LeftOutCell, ...] = Field(
        description="Every private or insufficient group of every slice, with its reason."
    )

    def slice(self, *columns: str) -> SliceReport:
        """Return the slice over exactly these columns (in the order given to the report)."""
        for item in self.slices:
            if set(item.columns) == set(columns) and len(item.columns) == len(columns):
                return item
        raise KeyError(f"no slice over columns {columns!r}")


@dataclass(frozen=True)
class _Data:
    """Rows reduced to what the report needs, sorted by key."""

    keys: IntArray
    scores: FloatArray
    cells: IntArray
    cell_levels: IntArray
    levels: tuple[tuple[str, ...], ...]
    n_bins: int

    @property
    def n_cells(self) -> int:
        return int(self.cell_levels.shape[0])

    @property
    def n_keys(self) -> int:
        return self.n_cells * self.n_bins * 4


@dataclass(frozen=True)
class _Slice:
    """A slice's groups: which finest cells make up each group."""

    columns: tuple[str, ...]
    group_values: tuple[dict[str, str], ...]
    cell_to_group: IntArray
    membership: FloatArray

    @property
    def name(self) -> str:
        return JOIN.join(self.columns) if self.columns else "overall"

    def group_name(self, index: int) -> str:
        values = self.group_values[index]
        return JOIN.join(values.values()) if values else "all rows"


def fairness_report(
    predictions: pd.DataFrame, sensitive: Sequence[str], params: FairnessParams
) -> FairnessReport:
    """Compute the fairness report of test-split predictions.

    Args:
        predictions: One row per example with ``label`` (0/1), ``score`` (probability in [0, 1]),
            optionally ``_row_id`` (fixes the bootstrap's row order), and the sensitive columns.
        sensitive: Sensitive columns; each one and every intersection of them is reported.
        params: Threshold, bootstrap, binning and small-group settings.

    Returns:
        The report: aggregates only, JSON-serialisable through ``report_to_json``.

    Raises:
        DataError: If a column is missing or labels / scores are out of range.
    """
    columns = tuple(sensitive)
    _check_input(predictions, columns)
    data = _prepare(predictions, columns, params)
    slices = _make_slices(data, columns, params.max_intersection_size)
    counts, sums = _tally(data)
    points = [_group_stats(counts, sums, s.membership) for s in slices]
    started = time.perf_counter()
    replicates = _bootstrap(data, slices, params)
    logger.info(
        "fairness bootstrap: %d replicates, %d rows, %d slices in %.2fs",
        params.n_bootstrap,
        data.keys.size,
        len(slices),
        time.perf_counter() - started,
    )
    reports = [
        _slice_report(data, s, p, r, params)
        for s, p, r in zip(slices, points, replicates, strict=True)
    ]
    n_pos = int(points[0]["n_pos"][0, 0])
    return FairnessReport(
        params=params,
        sensitive=columns,
        n_rows=int(data.keys.size),
        n_pos=n_pos,
        n_neg=int(data.keys.size) - n_pos,
        calibration_edges=_edges(params.calibration_bins),
        histogram_edges=_edges(params.histogram_bins),
        bootstrap=BootstrapInfo(
            replicates=params.n_bootstrap,
            confidence_level=params.confidence_level,
            seed=params.seed,
        ),
        overall=reports[0].groups[0],
        slices=tuple(reports[1:]),
        left_out=tuple(_left_out_cells(reports)),
    )


def report_to_json(report: FairnessReport) -> dict[str, Any]:
    """Return the report as a JSON-ready dict (undefined values are null)."""
    return report.model_dump(mode="json")


# --- input ----------------------------------------------------------------------------------


def _check_input(predictions: pd.DataFrame, sensitive: tuple[str, ...]) -> None:
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


def _prepare(
    predictions: pd.DataFrame, sensitive: tuple[str, ...], params: FairnessParams
) -> _Data:
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
    return _Data(
        keys=keys[order],
        scores=scores[order],
        cells=cells.astype(np.int64)[order],
        cell_levels=cell_levels,
        levels=tuple(levels for _, levels in encoded),
        n_bins=params.calibration_bins,
    )


def _encode_column(series: pd.Series) -> tuple[IntArray, tuple[str, ...]]:
    """Codes of a sensitive column as strings, with missing values as their own group."""
    text = series.astype("string")
    if text.isna().any() and (text == MISSING).any():
        raise DataError(f"fairness report: column {series.name!r} holds the literal {MISSING!r}")
    text = text.fillna(MISSING)
    codes, uniques = pd.factorize(text, sort=True)
    return codes.astype(np.int64), tuple(str(u) for u in uniques)


def bin_index(scores: FloatArray, n_bins: int) -> IntArray:
    """Equal-width bins on [0, 1]; the last bin is closed so a score of 1 belongs to it."""
    return np.minimum((scores * n_bins).astype(np.int64), n_bins - 1)


def _edges(n_bins: int) -> tuple[float, ...]:
    return tuple(float(e) for e in np.linspace(0.0, 1.0, n_bins + 1))


def _make_slices(data: _Data, columns: tuple[str, ...], max_size: int | None) -> list[_Slice]:
    """The overall slice, each column, then every intersection of two or more columns."""
    largest = len(columns) if max_size is None else min(max_size, len(columns))
    subsets: list[tuple[int, ...]] = [()]
    for size in range(1, largest + 1):
        subsets.extend(itertools.combinations(range(len(columns)), size))
    return [_make_slice(data, columns, subset) for subset in subsets]


def _make_slice(data: _Data, columns: tuple[str, ...], subset: tuple[int, ...]) -> _Slice:
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
    return _Slice(
        columns=tuple(columns[c] for c in subset),
        group_values=values,
        cell_to_group=cell_to_group,
        membership=membership,
    )


# --- tallies and statistics -----------------------------------------------------------------


def _tally(data: _Data) -> tuple[FloatArray, FloatArray]:
    """Unweighted counts and score sums per key, shaped (1, cells, bins, label, decision)."""
    shape = (1, data.n_cells, data.n_bins, 2, 2)
    counts = np.bincount(data.keys, minlength=data.n_keys).astype(np.float64)
    sums = np.bincount(data.keys, weights=data.scores, minlength=data.n_keys).astype(np.float64)
    return counts.reshape(shape), sums.reshape(shape)


def _group_stats(
    counts: FloatArray, sums: FloatArray, membership: FloatArray
) -> dict[str, FloatArray]:
    """All per-group statistics from key tallies; leading axis is the replicate."""
    grouped = np.moveaxis(np.moveaxis(counts, 1, -1) @ membership, -1, 1)
    score_sums = np.moveaxis(np.moveaxis(sums, 1, -1) @ membership, -1, 1).sum(axis=(3, 4))
    confusion = grouped.sum(axis=2)
    tn, fp = confusion[..., 0, 0], confusion[..., 0, 1]
    fn, tp = confusion[..., 1, 0], confusion[..., 1, 1]
    n, pos, neg, pred_pos = tn + fp + fn + tp, fn + tp, tn + fp, fp + tp
    bin_n = grouped.sum(axis=(3, 4))
    bin_pos = grouped[..., 1, :].sum(axis=-1)
    return {
        "n": n,
        "n_pos": pos,
        "n_neg": neg,
        "n_pred_pos": pred_pos,
        "base_rate": _ratio(pos, n),
        "selection_rate": _ratio(pred_pos, n),
        "tpr": _ratio(tp, pos),
        "fpr": _ratio(fp, neg),
        "fnr": _ratio(fn, pos),
        "precision": _ratio(tp, pred_pos),
        "accuracy": _ratio(tp + tn, n),
        "ece": _ratio(np.abs(score_sums - bin_pos).sum(axis=-1), n),
        "mean_score": _ratio(score_sums.sum(axis=-1), n),
        "bin_n": bin_n,
        "bin_mean": _ratio(score_sums, bin_n),
        "bin_observed": _ratio(bin_pos, bin_n),
    }


def _ratio(numerator: FloatArray, denominator: FloatArray) -> FloatArray:
    """Elementwise ratio, NaN where the denominator is zero (the rate is undefined)."""
    out = np.full(np.broadcast(numerator, denominator).shape, np.nan)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


# --- bootstrap ------------------------------------------------------------------------------


def _bootstrap(
    data: _Data, slices: list[_Slice], params: FairnessParams
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
            stats = _group_stats(counts, sums, item.membership)
            store.append({name: stats[name] for name in _REPLICATED})
    return [
        {name: np.concatenate([part[name] for part in store]) for name in _REPLICATED}
        for store in collected
    ]


def block_sizes(total: int, block: int) -> Iterator[int]:
    """Sizes of consecutive blocks of at most ``block`` that add up to ``total``."""
    for start in range(0, total, block):
        yield min(block, total - start)


def _weighted_tally(
    rng: np.random.Generator, data: _Data, n_replicates: int, row_chunk: int
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


def poisson_weights(rng: np.random.Generator, shape: tuple[int, int]) -> npt.NDArray[np.uint8]:
    """Poisson(1) weights by a 16-bit inverse-CDF table (many times faster than ``rng.poisson``).

    Each 64-bit draw gives four weights, one table lookup each.
    """
    size = shape[0] * shape[1]
    draws = rng.integers(0, _UINT64_MAX, size=-(-size // 4), dtype=np.uint64, endpoint=True)
    return _POISSON_TABLE[draws.view(np.uint16)[:size].reshape(shape)]


def percentile_interval(replicates: FloatArray, level: float) -> tuple[FloatArray, FloatArray]:
    """Percentile interval over the replicate axis, ignoring replicates where a value is undefined."""
    tail = (1.0 - level) / 2.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        low, high = np.nanquantile(replicates, [tail, 1.0 - tail], axis=0)
    return low, high


# --- summaries ------------------------------------------------------------------------------


def _spread(values: FloatArray) -> FloatArray:
    """Max minus min over groups (last axis); NaN where fewer than two groups are defined."""
    defined = np.isfinite(values).sum(axis=-1)
    spread = np.fmax.reduce(values, axis=-1) - np.fmin.reduce(values, axis=-1)
    return np.where(defined >= _MIN_GROUPS, spread, np.nan)


def _min_over_max(values: FloatArray) -> FloatArray:
    defined = np.isfinite(values).sum(axis=-1)
    ratio = _ratio(np.fmin.reduce(values, axis=-1), np.fmax.reduce(values, axis=-1))
    return np.where(defined >= _MIN_GROUPS, ratio, np.nan)


_SPREADS = {
    "demographic_parity_difference": "selection_rate",
    "equal_opportunity_difference": "tpr",
    "false_positive_rate_difference": "fpr",
    "predictive_parity_difference": "precision",
    "calibration_gap": "ece",
    "base_rate_difference": "base_rate",
}


def _summary_values(
    stats: dict[str, FloatArray], kept: npt.NDArray[np.bool_]
) -> dict[str, FloatArray]:
    """Every between-group summary from (replicates, groups) statistics of the kept groups."""
    out = {name: _spread(stats[metric][:, kept]) for name, metric in _SPREADS.items()}
    out["demographic_parity_ratio"] = _min_over_max(stats["selection_rate"][:, kept])
    out["equalized_odds_difference"] = np.fmax(
        out["equal_opportunity_difference"], out["false_positive_rate_difference"]
    )
    return out


def _left_out_counts(
    point: dict[str, FloatArray], status: npt.NDArray[np.object_]
) -> dict[str, Any]:
    """Groups and rows compared, and left out per status: nothing disappears uncounted."""
    rows = point["n"][0]
    left_out = tuple(
        LeftOut(status=s, groups=int((status == s).sum()), rows=int(rows[status == s].sum()))
        for s in LEFT_OUT
    )
    return {
        "n_groups_compared": int((status == REPORTED).sum()),
        "n_rows_compared": int(rows[status == REPORTED].sum()),
        "n_rows_left_out": sum(item.rows for item in left_out),
        "left_out": left_out,
    }


def _summary(
    item: _Slice,
    point: dict[str, FloatArray],
    replicates: dict[str, FloatArray] | None,
    status: npt.NDArray[np.object_],
    level: float,
) -> SliceSummary:
    kept = np.asarray(status == REPORTED, dtype=np.bool_)
    counts = _left_out_counts(point, status)
    if int(kept.sum()) < _MIN_GROUPS:
        return SliceSummary(**counts, note="fewer than two reported groups")
    values = _summary_values(point, kept)
    reps = _summary_values(replicates, kept) if replicates is not None else None
    names = [item.group_name(int(i)) for i in np.flatnonzero(kept)]
    fields = {
        name: _disparity(
            value[0],
            None if reps is None else reps[name],
            level,
            point[_driving_metric(name, values)][0, kept],
            names,
        )
        for name, value in values.items()
    }
    return SliceSummary(**counts, **fields)


def _driving_metric(summary: str, values: dict[str, FloatArray]) -> str:
    """The per-group metric whose extremes a summary compares (EOD: the larger component)."""
    if summary == "equalized_odds_difference":
        tpr_gap = values["equal_opportunity_difference"][0]
        fpr_gap = values["false_positive_rate_difference"][0]
        return "fpr" if fpr_gap > tpr_gap else "tpr"
    return _SPREADS.get(summary, "selection_rate")


def _disparity(
    value: float,
    replicates: FloatArray | None,
    level: float,
    group_values: FloatArray,
    names: list[str],
) -> Disparity:
    low = high = None
    if replicates is not None:
        lo, hi = percentile_interval(replicates, level)
        low, high = _finite(lo), _finite(hi)
    highest = lowest = None
    if np.isfinite(group_values).any():
        highest = names[int(np.nanargmax(group_values))]
        lowest = names[int(np.nanargmin(group_values))]
    return Disparity(value=_finite(value), low=low, high=high, highest=highest, lowest=lowest)


def _finite(value: Any) -> float | None:
    number = float(value)
    return number if np.isfinite(number) else None


# --- assembling records ---------------------------------------------------------------------


@dataclass(frozen=True)
class _SliceResult:
    """Point statistics, intervals and distributions of one slice, ready to become records."""

    item: _Slice
    point: dict[str, FloatArray]
    intervals: dict[str, tuple[FloatArray, FloatArray]] | None
    status: npt.NDArray[np.object_]
    histograms: IntArray
    quantiles: FloatArray


def _slice_report(
    data: _Data,
    item: _Slice,
    point: dict[str, FloatArray],
    replicates: dict[str, FloatArray] | None,
    params: FairnessParams,
) -> SliceReport:
    status = cell_statuses(point["n"][0], point["n_pos"][0], point["n_neg"][0], params)
    result = _SliceResult(
        item=item,
        point=point,
        intervals=_group_intervals(replicates, params.confidence_level),
        status=status,
        histograms=_histograms(data, item, params.histogram_bins),
        quantiles=_quantiles(data, item, params.score_quantiles),
    )
    groups = tuple(_group_metrics(result, g, params) for g in range(len(item.group_values)))
    summary = _summary(item, point, replicates, status, params.confidence_level)
    return SliceReport(name=item.name, columns=item.columns, groups=groups, summary=summary)


def _group_intervals(
    replicates: dict[str, FloatArray] | None, level: float
) -> dict[str, tuple[FloatArray, FloatArray]] | None:
    if replicates is None:
        return None
    return {name: percentile_interval(values, level) for name, values in replicates.items()}


def _group_metrics(result: _SliceResult, g: int, params: FairnessParams) -> GroupMetrics:
    point, intervals = result.point, result.intervals
    name, values = result.item.group_name(g), result.item.group_values[g]
    n, n_pos, n_neg = (int(point[k][0, g]) for k in ("n", "n_pos", "n_neg"))
    status = cell_status(n, n_pos, n_neg, params)
    reason = cell_reason(n, n_pos, n_neg, params)
    if status == PRIVATE:  # only n: no positives, no base rate, no rates, no scores
        return GroupMetrics(
            name=name,
            values=values,
            n=n,
            n_pos=None,
            n_neg=None,
            n_pred_pos=None,
            status=status,
            reason=reason,
        )
    rates = {m: _estimate(point[m][0, g], intervals, m, (g,)) for m in GROUP_METRICS}
    quantiles = zip(params.score_quantiles, result.quantiles[g], strict=True)
    return GroupMetrics(
        name=name,
        values=values,
        n=n,
        n_pos=n_pos,
        n_neg=n_neg,
        n_pred_pos=int(point["n_pred_pos"][0, g]),
        status=status,
        reason=reason,
        **rates,
        reliability=_reliability(point, intervals, g, params.calibration_bins),
        scores=ScoreDistribution(
            quantiles={_quantile_key(q): float(v) for q, v in quantiles},
            histogram_counts=tuple(int(c) for c in result.histograms[g]),
        ),
    )


def _estimate(
    value: Any,
    intervals: dict[str, tuple[FloatArray, FloatArray]] | None,
    metric: str,
    index: tuple[int, ...],
) -> Estimate:
    if intervals is None:
        return Estimate(value=_finite(value))
    low, high = intervals[metric]
    return Estimate(value=_finite(value), low=_finite(low[index]), high=_finite(high[index]))


def _reliability(
    point: dict[str, FloatArray],
    intervals: dict[str, tuple[FloatArray, FloatArray]] | None,
    g: int,
    n_bins: int,
) -> tuple[ReliabilityBin, ...]:
    edges = _edges(n_bins)
    return tuple(
        ReliabilityBin(
            lower=edges[b],
            upper=edges[b + 1],
            n=int(point["bin_n"][0, g, b]),
            mean_score=_finite(point["bin_mean"][0, g, b]),
            observed_rate=_estimate(
                point["bin_observed"][0, g, b], intervals, "bin_observed", (g, b)
            ),
        )
        for b in range(n_bins)
    )


def _quantile_key(q: float) -> str:
    return f"p{100 * q:g}"


def _histograms(data: _Data, item: _Slice, n_bins: int) -> IntArray:
    """Score histogram counts per group, shaped (groups, bins)."""
    per_cell = np.bincount(
        data.cells * n_bins + bin_index(data.scores, n_bins), minlength=data.n_cells * n_bins
    ).reshape(data.n_cells, n_bins)
    return (item.membership.T.astype(np.int64) @ per_cell).astype(np.int64)


def _quantiles(data: _Data, item: _Slice, levels: tuple[float, ...]) -> FloatArray:
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


def _left_out_cells(slices: list[SliceReport]) -> Iterator[LeftOutCell]:
    """Every private or insufficient group of every slice (the overall row is not a slice)."""
    for item in slices[1:]:
        for group in item.groups:
            if group.status != REPORTED:
                yield LeftOutCell(
                    slice=item.name,
                    group=group.name,
                    values=group.values,
                    status=group.status,
                    n=group.n,
                    n_pos=group.n_pos,
                    n_neg=group.n_neg,
                    reason=group.reason or group.status,
                )
