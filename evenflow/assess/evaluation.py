"""Test-split evaluation: overall metrics with seeded bootstrap intervals, and the files they go to.

Evidently 0.7's ``GroupBy`` returns the overall value for classification metrics, so the figures
are computed by the project (per group in :mod:`evenflow.assess.group_metrics`) and checked against
scikit-learn and fairlearn in the tests.

Conventions shared by every function here:

- A row is predicted positive when ``score >= threshold`` (the same rule Evidently applies),
  unless a ``decision`` column gives the decisions made (per-group thresholds, say).
- A ratio whose denominator is zero (recall with no positives, precision with no predicted
  positives, AUC with a single class) is NaN: undefined, never an exception and never a silent 0.
- Headline metrics (:data:`HEADLINE_METRICS`) carry seeded bootstrap intervals as
  ``<metric>_low`` / ``<metric>_high`` (:func:`headline_metrics`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from evenflow import layout
from evenflow.assess.arrays import BoolArray, FloatArray, IntArray, UInt8Array
from evenflow.assess.bootstrap import block_sizes, percentile_interval, poisson_weights
from evenflow.assess.fairness import BootstrapInfo
from evenflow.assess.group_metrics import (
    group_metrics,
    outcome_counts,
    rates_of,
    score_metrics,
    serialized_rates,
)
from evenflow.assess.group_rates import bin_index, ratio
from evenflow.assess.predictions import (
    DECISION_COLUMN,
    LABEL_COLUMN,
    SCORE_COLUMN,
    decided,
    require_columns,
    validated,
)
from evenflow.assess.small_groups import REPORTED, cell_reason
from evenflow.config.fairness import FairnessParams
from evenflow.config.run import EvalParams
from evenflow.io import write_json_atomic
from evenflow.records import EvalReport

logger = logging.getLogger(__name__)


# The metrics reported with a bootstrap interval, as <name>, <name>_low, <name>_high.
HEADLINE_METRICS = ("roc_auc", "accuracy", "precision", "recall", "f1", "brier", "log_loss", "ece")


def confusion_counts(
    label: ArrayLike, score: ArrayLike, threshold: float, decision: ArrayLike | None = None
) -> dict[str, int]:
    """Count true/false positives/negatives at ``threshold`` (arguments as :func:`binary_metrics`).

    Returns:
        ``{"tp", "fp", "tn", "fn"}`` as Python ints (JSON- and pydantic-friendly).
    """
    y, s = validated(label, score)
    return outcome_counts(y, decided(s, threshold, decision))


def binary_metrics(
    label: ArrayLike, score: ArrayLike, threshold: float, decision: ArrayLike | None = None
) -> dict[str, float]:
    """Overall metrics of a binary scorer at one threshold.

    Threshold metrics come from the same count formulas as :func:`group_metrics`, so the overall
    row and the group rows can never disagree on a definition.

    Args:
        label: True labels, 0 or 1.
        score: Probability of the positive class.
        threshold: Scores at or above it are predicted positive.
        decision: The 0/1 decisions actually made, when they are not ``score >= threshold``.

    Returns:
        roc_auc, log_loss, brier, mean_score, accuracy, precision, recall, f1, tpr, fpr, fnr,
        base_rate, selection_rate and n. ``roc_auc`` is NaN when only one class is present.
    """
    y, s = validated(label, score)
    counts = outcome_counts(y, decided(s, threshold, decision))
    metrics = rates_of(counts)
    metrics.update(score_metrics(y, s))
    metrics["n"] = float(y.size)
    return metrics


def headline_metrics(
    label: ArrayLike,
    score: ArrayLike,
    decision: ArrayLike | None,
    threshold: float,
    params: FairnessParams,
) -> dict[str, float]:
    """Headline metrics with seeded percentile bootstrap intervals.

    For each name in :data:`HEADLINE_METRICS` (ROC AUC, accuracy, precision, recall, F1, Brier,
    log loss, ECE) the result holds the point value and ``<name>_low`` / ``<name>_high``. Each
    replicate reweights the rows with Poisson(1) weights (drawn in blocks, as the fairness report
    does); AUC per replicate is the weighted Mann-Whitney statistic over rows sorted by score (ties
    count one half), which equals ``roc_auc_score`` with those weights as ``sample_weight``.

    Args:
        label: True labels, 0 or 1.
        score: Probability of the positive class.
        decision: The 0/1 decisions actually made, or None for ``score >= threshold``.
        threshold: Scores at or above it are predicted positive (when ``decision`` is None).
        params: ``n_bootstrap``, ``confidence_level``, ``seed`` and ``calibration_bins`` (ECE).

    Returns:
        Point values and bounds as floats; NaN where undefined (AUC of one class) and for every
        bound when ``n_bootstrap`` is 0.
    """
    y, s = validated(label, score)
    predicted = decided(s, threshold, decision)
    points = _headline_points(y, s, predicted, params.calibration_bins)
    replicates = _headline_replicates(y, s, predicted, params) if params.n_bootstrap else None
    out: dict[str, float] = {}
    for name in HEADLINE_METRICS:
        low = high = math.nan
        if replicates is not None:
            lows, highs = percentile_interval(replicates[name], params.confidence_level)
            low, high = float(lows), float(highs)
        out.update({name: points[name], f"{name}_low": low, f"{name}_high": high})
    return out


def evaluate(
    predictions: pd.DataFrame,
    sensitive: Sequence[str],
    params: EvalParams,
    fairness: FairnessParams,
) -> tuple[dict[str, float], dict[str, int], pd.DataFrame]:
    """Overall metrics (headline ones with intervals), confusion counts and group table (no files).

    ``fairness`` (the run's) gives the small-group rule and the bootstrap of the intervals.
    """
    require_columns(predictions, [LABEL_COLUMN, SCORE_COLUMN, *sensitive])
    label, score = predictions[LABEL_COLUMN], predictions[SCORE_COLUMN]
    decision = predictions.get(DECISION_COLUMN)
    metrics = binary_metrics(label, score, params.threshold, decision)
    metrics.update(headline_metrics(label, score, decision, params.threshold, fairness))
    confusion = confusion_counts(label, score, params.threshold, decision)
    groups = group_metrics(predictions, sensitive, params.threshold, fairness)
    return metrics, confusion, groups


def write_evaluation(
    predictions: pd.DataFrame,
    sensitive: Sequence[str],
    params: EvalParams,
    out_dir: Path,
    *,
    predictions_path: Path,
    fairness: FairnessParams,
    report_dir: Path | None = None,
) -> EvalReport:
    """Evaluate the test predictions and write ``metrics.json`` and ``groups.json`` atomically.

    Args:
        predictions: Test-split predictions (``label``, ``score`` and the sensitive columns).
        sensitive: Sensitive column names.
        params: The decision threshold.
        out_dir: Folder for the two JSON files (created if missing).
        predictions_path: Where ``predictions`` was read from; recorded for lineage.
        fairness: The run's fairness parameters: the small-group rule and the bootstrap of the
            headline intervals.
        report_dir: Folder of reports to log with the run; ``out_dir`` if not given.

    Returns:
        The ``EvalReport`` record pointing at the files; its ``metrics`` hold each headline
        metric with ``<name>_low`` / ``<name>_high``.
    """
    metrics, confusion, groups = evaluate(predictions, sensitive, params, fairness)
    write_json_atomic(
        out_dir / layout.METRICS_FILE,
        {
            "threshold": params.threshold,
            "small_groups": fairness.model_dump(
                include={"min_cell", "min_positives", "min_negatives"}
            ),
            "bootstrap": BootstrapInfo.of(fairness).model_dump(mode="json"),
            "metrics": json_safe(metrics),
            "confusion_matrix": confusion,
        },
    )
    groups_path = write_json_atomic(out_dir / layout.GROUPS_FILE, groups_to_records(groups))
    _log_left_out(groups, fairness)
    return EvalReport(
        metrics=metrics,
        confusion_matrix=confusion,
        groups_path=groups_path,
        report_dir=report_dir if report_dir is not None else out_dir,
        predictions_path=predictions_path,
    )


def groups_to_records(groups: pd.DataFrame) -> list[dict[str, Any]]:
    """Group table as JSON-safe records: Python scalars, NaN as ``None``."""
    records: list[dict[str, Any]] = groups.to_dict(orient="records")
    return [json_safe(record) for record in records]


def json_safe(mapping: Mapping[str, Any]) -> dict[str, Any]:
    """Copy of a flat mapping with numpy scalars unboxed and NaN/inf replaced by ``None``.

    Strict JSON has no NaN; writing ``null`` keeps the files readable by any parser.
    """
    return {key: _json_scalar(value) for key, value in mapping.items()}


# --- internals -------------------------------------------------------------------------------


def _json_scalar(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is pd.NA:
        return None
    return value


def _log_left_out(groups: pd.DataFrame, rule: FairnessParams) -> None:
    """One log line per group kept out of summaries and gates, with the rule's reason."""
    left_out = groups.loc[groups["status"] != REPORTED]
    for row in left_out.itertuples(index=False):
        n_pos = 0 if pd.isna(row.n_pos) else int(row.n_pos)
        n_neg = 0 if pd.isna(row.n_neg) else int(row.n_neg)
        reason = cell_reason(int(row.n), n_pos, n_neg, rule)
        logger.info("group %s=%s (%d rows): %s", row.column, row.group, row.n, reason)


# --- headline intervals ----------------------------------------------------------------------

# Weights held in memory at once (replicates x rows); results depend on it only through the order
# in which the seeded stream is cut into blocks, which depends on the row count alone.
_BLOCK_ELEMENTS = 1 << 22
_ROW_CHUNK = 1 << 16
# Columns of the per-row matrix whose weighted sums give every headline metric but AUC.
_TP, _FP, _FN, _TN, _SQ_ERR, _LOSS, _RESIDUAL = range(7)


def _row_losses(label: IntArray, score: FloatArray) -> FloatArray:
    """Per-row log loss, clipped as scikit-learn clips (each class probability to [eps, 1-eps])."""
    eps = np.finfo(np.float64).eps
    positive = np.log(np.clip(score, eps, 1 - eps))
    negative = np.log(np.clip(1.0 - score, eps, 1 - eps))
    return -np.where(label == 1, positive, negative)


def _ece(label: IntArray, score: FloatArray, n_bins: int) -> float:
    """Expected calibration error over equal-width bins (as the fairness report computes it)."""
    bins = bin_index(score, n_bins)
    residual = np.bincount(bins, weights=score - label, minlength=n_bins)
    return float(np.abs(residual).sum() / label.size)


def _headline_points(
    label: IntArray, score: FloatArray, predicted: BoolArray, n_bins: int
) -> dict[str, float]:
    counts = outcome_counts(label, predicted)
    points = rates_of(counts)
    points.update(score_metrics(label, score))
    points["ece"] = _ece(label, score, n_bins)
    return points


def _row_chunks(score: FloatArray, bins: IntArray, target: int) -> list[tuple[int, int]]:
    """Ranges of about ``target`` sorted rows, each inside one calibration bin.

    A range never splits a run of tied scores (tied scores share a bin, so bin edges are tie-run
    starts too).
    """
    n = score.size
    tie_starts = np.flatnonzero(np.concatenate([[True], score[1:] != score[:-1]]))
    wanted = np.arange(target, n, target)
    near = tie_starts[np.minimum(np.searchsorted(tie_starts, wanted), tie_starts.size - 1)]
    bin_starts = np.flatnonzero(np.concatenate([[True], bins[1:] != bins[:-1]]))
    cuts = np.unique(np.concatenate([[0, n], near, bin_starts]))
    return [(int(a), int(b)) for a, b in zip(cuts[:-1], cuts[1:], strict=True) if b > a]


def _weight_blocks(
    chunks: Sequence[tuple[int, int]], params: FairnessParams
) -> Iterator[tuple[int, int, int, UInt8Array]]:
    """Poisson(1) weights, block by block: (first replicate, rows start, rows stop, weights).

    The seeded stream is cut the same way for the same chunks, so a replicate's weights can be
    rebuilt (the tests compare AUC replicates with scikit-learn's weighted AUC).
    """
    rng = np.random.default_rng(params.seed)
    widest = max(stop - start for start, stop in chunks)
    block = max(1, min(params.n_bootstrap, _BLOCK_ELEMENTS // widest))
    first = 0
    for size in block_sizes(params.n_bootstrap, block):
        for start, stop in chunks:
            yield first, start, stop, poisson_weights(rng, (size, stop - start))
        first += size


def _headline_replicates(
    label: IntArray,
    score: FloatArray,
    predicted: BoolArray,
    params: FairnessParams,
) -> dict[str, FloatArray]:
    """Every headline metric per bootstrap replicate, shape (n_bootstrap,) each.

    Rows are sorted by score once and cut into chunks that each lie in one calibration bin. Per
    chunk and block of replicates, one matrix product gives the weighted confusion counts, squared
    errors, log losses and the bin's residual (for ECE); AUC adds, per positive row, its weight
    times the negative weight below it (ties: half), counted exactly in integers and carried
    across chunks, over ``W_pos * W_neg``.
    """
    order = np.argsort(score, kind="stable")
    y, s, decided = label[order], score[order], predicted[order]
    positive = y == 1
    bins = bin_index(s, params.calibration_bins)
    columns = np.column_stack(
        [
            decided & positive,
            decided & ~positive,
            ~decided & positive,
            ~decided & ~positive,
            (s - y) ** 2,
            _row_losses(y, s),
            s - y,
        ]
    ).astype(np.float64)
    chunks = _row_chunks(s, bins, _ROW_CHUNK)
    is_positive = positive.astype(np.uint8)
    sums = np.zeros((params.n_bootstrap, _RESIDUAL))
    residual = np.zeros((params.n_bootstrap, params.calibration_bins))
    auc_sum = np.zeros(params.n_bootstrap)
    below = np.zeros(params.n_bootstrap)
    for first, start, stop, weights in _weight_blocks(chunks, params):
        reps = slice(first, first + weights.shape[0])
        if start == 0:
            below[reps] = 0.0
        chunk = weights.astype(np.float64) @ columns[start:stop]
        sums[reps] += chunk[:, :_RESIDUAL]
        residual[reps, bins[start]] += chunk[:, _RESIDUAL]
        pairs = _pairs_below(weights, is_positive[start:stop], s[start:stop])
        auc_sum[reps] += pairs + below[reps] * (chunk[:, _TP] + chunk[:, _FN])
        below[reps] += chunk[:, _FP] + chunk[:, _TN]
    return _headline_from_sums(sums, residual, auc_sum)


def _pairs_below(weights: UInt8Array, is_positive: UInt8Array, score: FloatArray) -> FloatArray:
    """Weighted pairs (positive above negative) within sorted rows, per replicate.

    Sum over positives of weight x (weight of lower-scored negatives + half the weight of tied
    negatives), counted exactly in integers.
    """
    pos = weights * is_positive
    neg = weights - pos
    starts = np.flatnonzero(np.concatenate([[True], score[1:] != score[:-1]]))
    tied = starts.size < score.size
    if tied:  # collapse runs of equal scores into one cell each
        pos = np.add.reduceat(pos, starts, axis=1, dtype=np.int32)
        neg = np.add.reduceat(neg, starts, axis=1, dtype=np.int32)
    # Negative weight up to and including each cell, times the cell's positive weight. Without
    # ties int32 is exact: a weight is at most 8 and a chunk holds at most _BLOCK_ELEMENTS rows,
    # so a product stays below 8 * 8 * 2**22. Tied cells can be large: int64 there.
    exact = np.int64 if tied else np.int32
    cumulative = np.cumsum(neg, axis=1, dtype=exact)
    total = np.multiply(pos, cumulative, dtype=exact).sum(axis=1, dtype=np.int64)
    if tied:
        total = total - 0.5 * np.multiply(pos, neg, dtype=exact).sum(axis=1, dtype=np.int64)
    return np.asarray(total, dtype=np.float64)


def _headline_from_sums(
    sums: FloatArray, residual: FloatArray, auc_sum: FloatArray
) -> dict[str, FloatArray]:
    tp, fp, fn, tn = (sums[:, k] for k in (_TP, _FP, _FN, _TN))
    weight = tp + fp + fn + tn
    rates = serialized_rates(tp, fp, tn, fn)
    return {
        "roc_auc": ratio(auc_sum, (tp + fn) * (fp + tn)),
        "accuracy": rates["accuracy"],
        "precision": rates["precision"],
        "recall": rates["recall"],
        "f1": rates["f1"],
        "brier": ratio(sums[:, _SQ_ERR], weight),
        "log_loss": ratio(sums[:, _LOSS], weight),
        "ece": ratio(np.abs(residual).sum(axis=1), weight),
    }
