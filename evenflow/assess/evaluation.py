"""Test-split evaluation: overall and per-group metrics computed by the project, not by Evidently.

Evidently 0.7's ``GroupBy`` returns the overall value for classification metrics, so group figures
are computed here from confusion counts aggregated with one ``groupby`` per sensitive column and
checked against scikit-learn and fairlearn in the tests.

Conventions shared by every function here:

- A row is predicted positive when ``score >= threshold`` (the same rule Evidently applies).
- A ratio whose denominator is zero (recall with no positives, precision with no predicted
  positives, AUC with a single class) is NaN: undefined, never an exception and never a silent 0.
- Every group is listed with its ``status`` under the one rule for small groups
  (:func:`evenflow.assess.fairness.cell_status`): a ``private`` group keeps only its ``n`` (no positives,
  no rates); an ``insufficient`` group keeps every figure but is marked, and no summary or gate
  uses it; a ``reported`` group is used everywhere.
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
from numpy.typing import ArrayLike, NDArray
from sklearn.metrics import log_loss, roc_auc_score

from evenflow.assess.fairness import (
    PRIVATE,
    REPORTED,
    bin_index,
    block_sizes,
    cell_reason,
    cell_statuses,
    percentile_interval,
    poisson_weights,
)
from evenflow.config.fairness import FairnessParams
from evenflow.config.run import EvalParams
from evenflow.errors import DataError
from evenflow.io import write_json_atomic
from evenflow.records import EvalReport

logger = logging.getLogger(__name__)

LABEL = "label"
SCORE = "score"
DECISION = "decision"  # optional 0/1 decisions (e.g. per-group thresholds) that override the cut
MISSING_GROUP = "(missing)"
METRICS_FILE = "metrics.json"
GROUPS_FILE = "groups.json"

RATE_METRICS = (
    "accuracy",
    "precision",
    "recall",
    "f1",
    "tpr",
    "fpr",
    "fnr",
    "base_rate",
    "selection_rate",
)
SCORE_METRICS = ("roc_auc", "log_loss", "brier", "mean_score")
GROUP_METRICS = (*SCORE_METRICS, *RATE_METRICS)
GROUP_COLUMNS = ("column", "group", "n", "n_pos", "n_neg", "status", *GROUP_METRICS)
# The metrics reported with a bootstrap interval, as <name>, <name>_low, <name>_high.
HEADLINE_METRICS = ("roc_auc", "accuracy", "precision", "recall", "f1", "brier", "log_loss", "ece")

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


def confusion_counts(
    label: ArrayLike, score: ArrayLike, threshold: float, decision: ArrayLike | None = None
) -> dict[str, int]:
    """Count true/false positives/negatives at ``threshold``.

    Args:
        label: True labels, 0 or 1.
        score: Probability of the positive class.
        threshold: Scores at or above it are predicted positive.
        decision: The 0/1 decisions actually made, when they are not ``score >= threshold``.

    Returns:
        ``{"tp", "fp", "tn", "fn"}`` as Python ints (JSON- and pydantic-friendly).
    """
    y, s = _validated(label, score)
    return _counts(y, _predicted(s, threshold, decision))


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
    y, s = _validated(label, score)
    counts = _counts(y, _predicted(s, threshold, decision))
    rates = _rates_from_counts(*(np.array([counts[k]], dtype=np.float64) for k in _COUNT_KEYS))
    metrics = {name: float(values[0]) for name, values in rates.items()}
    metrics.update(_score_metrics(y, s))
    metrics["n"] = float(y.size)
    return metrics


def group_metrics(
    predictions: pd.DataFrame,
    sensitive: Sequence[str],
    threshold: float,
    rule: FairnessParams,
) -> pd.DataFrame:
    """Metrics per group of each sensitive column, one row per (column, group).

    A ``decision`` column (per-group thresholds, say) gives the decisions; otherwise a row is
    positive when ``score >= threshold``.

    Missing values form their own group, labelled ``"(missing)"``. Every group is listed with its
    ``status`` under the one rule for small groups (:func:`evenflow.assess.fairness.cell_status`): a
    ``private`` group keeps only ``n`` (``n_pos``, ``n_neg`` and every metric are NaN); an
    ``insufficient`` group keeps its figures, marked, for readers but not for summaries or gates.

    Args:
        predictions: Frame with ``label`` (0/1), ``score`` (float) and the sensitive columns.
        sensitive: Sensitive column names, reported one after another.
        threshold: Scores at or above it are predicted positive.
        rule: The small-group rule: ``min_cell``, ``min_positives``, ``min_negatives``.

    Returns:
        Columns ``GROUP_COLUMNS``; groups sorted by label within each column.
    """
    _require_columns(predictions, [LABEL, SCORE, *sensitive])
    y, s = _validated(predictions[LABEL], predictions[SCORE])
    predicted = _predicted(s, threshold, predictions.get(DECISION))
    frames = [
        _column_group_metrics(predictions[column], y, s, predicted, rule) for column in sensitive
    ]
    if not frames:
        return pd.DataFrame(columns=list(GROUP_COLUMNS))
    return pd.concat(frames, ignore_index=True)


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
    y, s = _validated(label, score)
    predicted = _predicted(s, threshold, decision)
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
    fairness: FairnessParams | None = None,
) -> tuple[dict[str, float], dict[str, int], pd.DataFrame]:
    """Overall metrics (headline ones with intervals), confusion counts and group table (no files).

    ``fairness`` gives the small-group rule and the bootstrap; None uses ``FairnessParams``'
    defaults at ``params.threshold`` (and says so in the log).
    """
    _require_columns(predictions, [LABEL, SCORE, *sensitive])
    rule = _rule(params, fairness)
    label, score = predictions[LABEL], predictions[SCORE]
    decision = predictions.get(DECISION)
    metrics = binary_metrics(label, score, params.threshold, decision)
    metrics.update(headline_metrics(label, score, decision, params.threshold, rule))
    confusion = confusion_counts(label, score, params.threshold, decision)
    groups = group_metrics(predictions, sensitive, params.threshold, rule)
    return metrics, confusion, groups


def write_evaluation(
    predictions: pd.DataFrame,
    sensitive: Sequence[str],
    params: EvalParams,
    out_dir: Path,
    *,
    predictions_path: Path,
    report_dir: Path | None = None,
    fairness: FairnessParams | None = None,
) -> EvalReport:
    """Evaluate the test predictions and write ``metrics.json`` and ``groups.json`` atomically.

    Args:
        predictions: Test-split predictions (``label``, ``score`` and the sensitive columns).
        sensitive: Sensitive column names.
        params: The decision threshold.
        out_dir: Folder for the two JSON files (created if missing).
        predictions_path: Where ``predictions`` was read from; recorded for lineage.
        report_dir: Folder of reports to log with the run; ``out_dir`` if not given.
        fairness: The run's fairness parameters: the small-group rule and the bootstrap of the
            headline intervals. None uses their defaults (pass the run's own).

    Returns:
        The ``EvalReport`` record pointing at the files; its ``metrics`` hold each headline
        metric with ``<name>_low`` / ``<name>_high``.
    """
    rule = _rule(params, fairness)
    metrics, confusion, groups = evaluate(predictions, sensitive, params, rule)
    write_json_atomic(
        out_dir / METRICS_FILE,
        {
            "threshold": params.threshold,
            "small_groups": {
                "min_cell": rule.min_cell,
                "min_positives": rule.min_positives,
                "min_negatives": rule.min_negatives,
            },
            "bootstrap": {
                "replicates": rule.n_bootstrap,
                "confidence_level": rule.confidence_level,
                "seed": rule.seed,
                "method": "Poisson(1) row weights, percentile intervals",
            },
            "metrics": json_safe(metrics),
            "confusion_matrix": confusion,
        },
    )
    groups_path = write_json_atomic(out_dir / GROUPS_FILE, groups_to_records(groups))
    _log_left_out(groups, rule)
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

_COUNT_KEYS = ("tp", "fp", "tn", "fn")


def _validated(label: ArrayLike, score: ArrayLike) -> tuple[NDArray[np.int64], FloatArray]:
    """Labels as int64 0/1 and scores as float64 in [0, 1], or a ``DataError`` saying why not."""
    y_raw = np.asarray(label)
    s = np.asarray(score, dtype=np.float64)
    if y_raw.ndim != 1 or s.ndim != 1 or y_raw.shape != s.shape:
        raise DataError(
            f"label and score must be 1-D of equal length, got {y_raw.shape} and {s.shape}"
        )
    if y_raw.size == 0:
        raise DataError("cannot evaluate an empty prediction set")
    if not np.isin(y_raw, (0, 1)).all():
        raise DataError("label must contain only 0 and 1 (no missing values)")
    if not (np.isfinite(s).all() and s.min() >= 0.0 and s.max() <= 1.0):
        raise DataError("score must be a finite probability in [0, 1] (no missing values)")
    return y_raw.astype(np.int64), s


def _predicted(
    score: FloatArray, threshold: float, decision: ArrayLike | None
) -> NDArray[np.bool_]:
    """The decisions: a given 0/1 ``decision`` array, else ``score >= threshold``."""
    if decision is None:
        return np.asarray(score >= threshold)
    made = np.asarray(decision)
    if made.shape != score.shape or not np.isin(made, (0, 1)).all():
        raise DataError("decision must hold one 0 or 1 per row")
    return np.asarray(made == 1, dtype=np.bool_)


def _counts(label: NDArray[np.int64], predicted: NDArray[np.bool_]) -> dict[str, int]:
    positive = label == 1
    return {
        "tp": int(np.count_nonzero(predicted & positive)),
        "fp": int(np.count_nonzero(predicted & ~positive)),
        "tn": int(np.count_nonzero(~predicted & ~positive)),
        "fn": int(np.count_nonzero(~predicted & positive)),
    }


def _require_columns(frame: pd.DataFrame, columns: Sequence[str]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(f"predictions lack column(s) {missing}; found {list(frame.columns)}")


def _safe_ratio(numerator: FloatArray, denominator: FloatArray) -> FloatArray:
    """Element-wise ratio that is NaN where the denominator is zero (the ratio is undefined)."""
    out = np.full(numerator.shape, np.nan, dtype=np.float64)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def _rates_from_counts(
    tp: FloatArray, fp: FloatArray, tn: FloatArray, fn: FloatArray
) -> dict[str, FloatArray]:
    """Threshold metrics from confusion counts; works on one group or many at once."""
    n = tp + fp + tn + fn
    recall = _safe_ratio(tp, tp + fn)
    return {
        "accuracy": _safe_ratio(tp + tn, n),
        "precision": _safe_ratio(tp, tp + fp),
        "recall": recall,
        "f1": _safe_ratio(2 * tp, 2 * tp + fp + fn),
        "tpr": recall,
        "fpr": _safe_ratio(fp, fp + tn),
        "fnr": _safe_ratio(fn, tp + fn),
        "base_rate": _safe_ratio(tp + fn, n),
        "selection_rate": _safe_ratio(tp + fp, n),
    }


def _score_metrics(label: NDArray[np.int64], score: FloatArray) -> dict[str, float]:
    """Threshold-free metrics; AUC is NaN for a single class rather than sklearn's error."""
    single_class = bool(label.min() == label.max())
    auc = math.nan if single_class else float(roc_auc_score(label, score))
    return {
        "roc_auc": auc,
        "log_loss": float(log_loss(label, score, labels=[0, 1])),
        "brier": float(np.mean((score - label) ** 2)),
        "mean_score": float(np.mean(score)),
    }


def _group_keys(values: pd.Series) -> pd.Series:
    """Group labels as strings, with missing values as their own ``(missing)`` group."""
    keys = values.astype("string")
    if keys.isna().any() and (keys == MISSING_GROUP).any():
        raise DataError(f"column {values.name!r} holds the literal value {MISSING_GROUP!r}")
    return keys.fillna(MISSING_GROUP).astype(object)


def _column_group_metrics(
    values: pd.Series,
    label: NDArray[np.int64],
    score: FloatArray,
    predicted: NDArray[np.bool_],
    rule: FairnessParams,
) -> pd.DataFrame:
    """One row per group of one sensitive column; counts come from a single groupby."""
    keys = _group_keys(values)
    positive = label == 1
    parts = pd.DataFrame(
        {
            "group": keys.to_numpy(),
            "tp": predicted & positive,
            "fp": predicted & ~positive,
            "tn": ~predicted & ~positive,
            "fn": ~predicted & positive,
            "sq_err": (score - label) ** 2,
            "score": score,
        }
    )
    grouped = parts.groupby("group", sort=True)
    agg = grouped.agg(
        tp=("tp", "sum"),
        fp=("fp", "sum"),
        tn=("tn", "sum"),
        fn=("fn", "sum"),
        brier=("sq_err", "mean"),
        mean_score=("score", "mean"),
    )
    counts = {k: agg[k].to_numpy(dtype=np.float64) for k in _COUNT_KEYS}
    n = counts["tp"] + counts["fp"] + counts["tn"] + counts["fn"]
    n_pos = counts["tp"] + counts["fn"]
    status = cell_statuses(n, n_pos, n - n_pos, rule)
    private = np.asarray(status == PRIVATE, dtype=np.bool_)
    table = pd.DataFrame(
        {
            "column": str(values.name),
            "group": agg.index.to_numpy(),
            "n": n.astype(np.int64),
            "n_pos": n_pos,
            "n_neg": n - n_pos,
            "status": status,
        }
    )
    ranking = _ranking_by_group(grouped.indices, agg.index, label, score, private)
    table["roc_auc"], table["log_loss"] = ranking
    table["brier"] = agg["brier"].to_numpy()
    table["mean_score"] = agg["mean_score"].to_numpy()
    for name, metric in _rates_from_counts(**counts).items():
        table[name] = metric
    # A private cell shows its n only: not even its positives (they would give its base rate).
    table.loc[private, ["n_pos", "n_neg", *GROUP_METRICS]] = np.nan
    table["n_pos"] = table["n_pos"].astype("Int64")
    table["n_neg"] = table["n_neg"].astype("Int64")
    return table[list(GROUP_COLUMNS)]


def _ranking_by_group(
    indices: Mapping[Any, NDArray[np.intp]],
    groups: pd.Index,
    label: NDArray[np.int64],
    score: FloatArray,
    private: NDArray[np.bool_],
) -> tuple[FloatArray, FloatArray]:
    """AUC and log loss per shown group (a loop over groups: neither is a sum of counts)."""
    auc = np.full(len(groups), np.nan)
    loss = np.full(len(groups), np.nan)
    for i, group in enumerate(groups):
        if private[i]:
            continue
        rows = indices[group]
        metrics = _score_metrics(label[rows], score[rows])
        auc[i], loss[i] = metrics["roc_auc"], metrics["log_loss"]
    return auc, loss


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


def _rule(params: EvalParams, fairness: FairnessParams | None) -> FairnessParams:
    """The fairness parameters to use; their defaults (at the evaluation threshold) if not given."""
    if fairness is not None:
        return fairness
    logger.warning(
        "evaluation without fairness parameters: the small-group rule and the headline intervals "
        "use FairnessParams' defaults"
    )
    return FairnessParams(threshold=params.threshold)


# --- headline intervals ----------------------------------------------------------------------

# Weights held in memory at once (replicates x rows); results depend on it only through the order
# in which the seeded stream is cut into blocks, which depends on the row count alone.
_BLOCK_ELEMENTS = 1 << 22
_ROW_CHUNK = 1 << 16
# Columns of the per-row matrix whose weighted sums give every headline metric but AUC.
_TP, _FP, _FN, _TN, _SQ_ERR, _LOSS, _RESIDUAL = range(7)


def _row_losses(label: NDArray[np.int64], score: FloatArray) -> FloatArray:
    """Per-row log loss, clipped as scikit-learn clips (each class probability to [eps, 1-eps])."""
    eps = np.finfo(np.float64).eps
    positive = np.log(np.clip(score, eps, 1 - eps))
    negative = np.log(np.clip(1.0 - score, eps, 1 - eps))
    return -np.where(label == 1, positive, negative)


def _ece(label: NDArray[np.int64], score: FloatArray, n_bins: int) -> float:
    """Expected calibration error over equal-width bins (as the fairness report computes it)."""
    bins = bin_index(score, n_bins)
    residual = np.bincount(bins, weights=score - label, minlength=n_bins)
    return float(np.abs(residual).sum() / label.size)


def _headline_points(
    label: NDArray[np.int64], score: FloatArray, predicted: NDArray[np.bool_], n_bins: int
) -> dict[str, float]:
    counts = _counts(label, predicted)
    rates = _rates_from_counts(*(np.array([counts[k]], dtype=np.float64) for k in _COUNT_KEYS))
    points = {name: float(values[0]) for name, values in rates.items()}
    points.update(_score_metrics(label, score))
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
) -> Iterator[tuple[int, int, int, NDArray[np.uint8]]]:
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
    label: NDArray[np.int64],
    score: FloatArray,
    predicted: NDArray[np.bool_],
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


def _pairs_below(
    weights: NDArray[np.uint8], is_positive: NDArray[np.uint8], score: FloatArray
) -> FloatArray:
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
    rates = _rates_from_counts(tp, fp, tn, fn)
    return {
        "roc_auc": _safe_ratio(auc_sum, (tp + fn) * (fp + tn)),
        "accuracy": rates["accuracy"],
        "precision": rates["precision"],
        "recall": rates["recall"],
        "f1": rates["f1"],
        "brier": _safe_ratio(sums[:, _SQ_ERR], weight),
        "log_loss": _safe_ratio(sums[:, _LOSS], weight),
        "ece": _safe_ratio(np.abs(residual).sum(axis=1), weight),
    }
