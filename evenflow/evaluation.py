"""Test-split evaluation: overall and per-group metrics computed by the project, not by Evidently.

Evidently 0.7's ``GroupBy`` returns the overall value for classification metrics, so group figures
are computed here from confusion counts aggregated with one ``groupby`` per sensitive column and
checked against scikit-learn and fairlearn in the tests.

Conventions shared by every function here:

- A row is predicted positive when ``score >= threshold`` (the same rule Evidently applies).
- A ratio whose denominator is zero (recall with no positives, precision with no predicted
  positives, AUC with a single class) is NaN: undefined, never an exception and never a silent 0.
- Groups with fewer than ``min_group_size`` rows are kept as rows with ``suppressed=True`` and NaN
  metrics, so a reader sees that the cell exists and why it has no numbers.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from sklearn.metrics import log_loss, roc_auc_score

from evenflow.errors import DataError
from evenflow.io import write_json_atomic
from evenflow.params import EvalParams
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
GROUP_COLUMNS = ("column", "group", "n", "n_pos", "suppressed", *GROUP_METRICS)

FloatArray = NDArray[np.float64]


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
    min_group_size: int,
) -> pd.DataFrame:
    """Metrics per group of each sensitive column, one row per (column, group).

    A ``decision`` column (per-group thresholds, say) gives the decisions; otherwise a row is
    positive when ``score >= threshold``.

    Missing values form their own group, labelled ``"(missing)"``. Groups smaller than
    ``min_group_size`` are listed with ``suppressed=True`` and NaN metrics: small cells give
    noisy figures that invite wrong conclusions, but hiding them would hide who is not measured.

    Args:
        predictions: Frame with ``label`` (0/1), ``score`` (float) and the sensitive columns.
        sensitive: Sensitive column names, reported one after another.
        threshold: Scores at or above it are predicted positive.
        min_group_size: Fewest rows for a group to be scored.

    Returns:
        Columns ``GROUP_COLUMNS``; groups sorted by label within each column.
    """
    _require_columns(predictions, [LABEL, SCORE, *sensitive])
    y, s = _validated(predictions[LABEL], predictions[SCORE])
    predicted = _predicted(s, threshold, predictions.get(DECISION))
    frames = [
        _column_group_metrics(predictions[column], y, s, predicted, min_group_size)
        for column in sensitive
    ]
    if not frames:
        return pd.DataFrame(columns=list(GROUP_COLUMNS))
    return pd.concat(frames, ignore_index=True)


def evaluate(
    predictions: pd.DataFrame, sensitive: Sequence[str], params: EvalParams
) -> tuple[dict[str, float], dict[str, int], pd.DataFrame]:
    """Overall metrics, confusion counts and group table of a prediction frame (no files)."""
    _require_columns(predictions, [LABEL, SCORE, *sensitive])
    label, score = predictions[LABEL], predictions[SCORE]
    decision = predictions.get(DECISION)
    metrics = binary_metrics(label, score, params.threshold, decision)
    confusion = confusion_counts(label, score, params.threshold, decision)
    groups = group_metrics(predictions, sensitive, params.threshold, params.min_group_size)
    return metrics, confusion, groups


def write_evaluation(
    predictions: pd.DataFrame,
    sensitive: Sequence[str],
    params: EvalParams,
    out_dir: Path,
    *,
    predictions_path: Path,
    report_dir: Path | None = None,
) -> EvalReport:
    """Evaluate the test predictions and write ``metrics.json`` and ``groups.json`` atomically.

    Args:
        predictions: Test-split predictions (``label``, ``score`` and the sensitive columns).
        sensitive: Sensitive column names.
        params: Threshold and minimum group size.
        out_dir: Folder for the two JSON files (created if missing).
        predictions_path: Where ``predictions`` was read from; recorded for lineage.
        report_dir: Folder of reports to log with the run; ``out_dir`` if not given.

    Returns:
        The ``EvalReport`` record pointing at the files.
    """
    metrics, confusion, groups = evaluate(predictions, sensitive, params)
    write_json_atomic(
        out_dir / METRICS_FILE,
        {
            "threshold": params.threshold,
            "min_group_size": params.min_group_size,
            "metrics": json_safe(metrics),
            "confusion_matrix": confusion,
        },
    )
    groups_path = write_json_atomic(out_dir / GROUPS_FILE, groups_to_records(groups))
    _log_suppressed(groups, params.min_group_size)
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
    min_group_size: int,
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
    suppressed = n < min_group_size
    table = pd.DataFrame(
        {
            "column": str(values.name),
            "group": agg.index.to_numpy(),
            "n": n.astype(np.int64),
            "n_pos": (counts["tp"] + counts["fn"]).astype(np.int64),
            "suppressed": suppressed,
        }
    )
    ranking = _ranking_by_group(grouped.indices, agg.index, label, score, suppressed)
    table["roc_auc"], table["log_loss"] = ranking
    table["brier"] = agg["brier"].to_numpy()
    table["mean_score"] = agg["mean_score"].to_numpy()
    for name, metric in _rates_from_counts(**counts).items():
        table[name] = metric
    table.loc[suppressed, list(GROUP_METRICS)] = np.nan
    return table[list(GROUP_COLUMNS)]


def _ranking_by_group(
    indices: Mapping[Any, NDArray[np.intp]],
    groups: pd.Index,
    label: NDArray[np.int64],
    score: FloatArray,
    suppressed: NDArray[np.bool_],
) -> tuple[FloatArray, FloatArray]:
    """AUC and log loss per scored group (a loop over groups: neither is a sum of counts)."""
    auc = np.full(len(groups), np.nan)
    loss = np.full(len(groups), np.nan)
    for i, group in enumerate(groups):
        if suppressed[i]:
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


def _log_suppressed(groups: pd.DataFrame, min_group_size: int) -> None:
    small = groups.loc[groups["suppressed"], ["column", "group", "n"]]
    for row in small.itertuples(index=False):
        logger.info(
            "group %s=%s has %d rows (< %d): listed, not scored",
            row.column,
            row.group,
            row.n,
            min_group_size,
        )
