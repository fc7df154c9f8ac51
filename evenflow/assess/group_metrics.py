"""Per-group metrics of test predictions: the table behind ``groups.json``.

One row per (sensitive column, group): counts, the rates of :mod:`evenflow.assess.group_rates`
(the one computation, shared with the fairness report), threshold-free score metrics, and the
group's ``status`` under the one rule of :mod:`evenflow.assess.small_groups`. ``recall`` is the
serialized name of ``tpr`` in ``groups.json`` and ``metrics.json``: both keys stay, one value.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from sklearn.metrics import log_loss, roc_auc_score

from evenflow.assess.arrays import BoolArray, FloatArray, IntArray
from evenflow.assess.group_rates import rates_from_counts
from evenflow.assess.predictions import (
    DECISION_COLUMN,
    LABEL_COLUMN,
    SCORE_COLUMN,
    decided,
    group_labels,
    require_columns,
    validated,
)
from evenflow.assess.small_groups import PRIVATE, cell_statuses
from evenflow.config.fairness import FairnessParams

RATE_COLUMNS = (
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
METRIC_COLUMNS = (*SCORE_METRICS, *RATE_COLUMNS)
GROUP_COLUMNS = ("column", "group", "n", "n_pos", "n_neg", "status", *METRIC_COLUMNS)
COUNT_KEYS = ("tp", "fp", "tn", "fn")


def serialized_rates(
    tp: FloatArray, fp: FloatArray, tn: FloatArray, fn: FloatArray
) -> dict[str, FloatArray]:
    """The rates of ``rates_from_counts`` under their serialized names (``recall`` is ``tpr``)."""
    computed = rates_from_counts(tp, fp, tn, fn)
    return {name: computed["tpr" if name == "recall" else name] for name in RATE_COLUMNS}


def rates_of(counts: Mapping[str, int]) -> dict[str, float]:
    """``serialized_rates`` of one set of counts (the overall row), as floats."""
    one = (np.array([counts[k]], dtype=np.float64) for k in COUNT_KEYS)
    return {name: float(values[0]) for name, values in serialized_rates(*one).items()}


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
    require_columns(predictions, [LABEL_COLUMN, SCORE_COLUMN, *sensitive])
    y, s = validated(predictions[LABEL_COLUMN], predictions[SCORE_COLUMN])
    predicted = decided(s, threshold, predictions.get(DECISION_COLUMN))
    frames = [
        _column_group_metrics(predictions[column], y, s, predicted, rule) for column in sensitive
    ]
    if not frames:
        return pd.DataFrame(columns=list(GROUP_COLUMNS))
    return pd.concat(frames, ignore_index=True)


def outcome_counts(label: IntArray, predicted: BoolArray) -> dict[str, int]:
    """True/false positives/negatives as Python ints (JSON- and pydantic-friendly)."""
    positive = label == 1
    return {
        "tp": int(np.count_nonzero(predicted & positive)),
        "fp": int(np.count_nonzero(predicted & ~positive)),
        "tn": int(np.count_nonzero(~predicted & ~positive)),
        "fn": int(np.count_nonzero(~predicted & positive)),
    }


def score_metrics(label: IntArray, score: FloatArray) -> dict[str, float]:
    """Threshold-free metrics; AUC is NaN for a single class rather than sklearn's error."""
    single_class = bool(label.min() == label.max())
    auc = math.nan if single_class else float(roc_auc_score(label, score))
    return {
        "roc_auc": auc,
        "log_loss": float(log_loss(label, score, labels=[0, 1])),
        "brier": float(np.mean((score - label) ** 2)),
        "mean_score": float(np.mean(score)),
    }


def _column_group_metrics(
    values: pd.Series,
    label: IntArray,
    score: FloatArray,
    predicted: BoolArray,
    rule: FairnessParams,
) -> pd.DataFrame:
    """One row per group of one sensitive column; counts come from a single groupby."""
    keys = group_labels(values).astype(object)
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
    counts = {k: agg[k].to_numpy(dtype=np.float64) for k in COUNT_KEYS}
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
    for name, metric in serialized_rates(**counts).items():
        table[name] = metric
    # A private cell shows its n only: not even its positives (they would give its base rate).
    table.loc[private, ["n_pos", "n_neg", *METRIC_COLUMNS]] = np.nan
    table["n_pos"] = table["n_pos"].astype("Int64")
    table["n_neg"] = table["n_neg"].astype("Int64")
    return table[list(GROUP_COLUMNS)]


def _ranking_by_group(
    indices: Mapping[Any, NDArray[np.intp]],
    groups: pd.Index,
    label: IntArray,
    score: FloatArray,
    private: BoolArray,
) -> tuple[FloatArray, FloatArray]:
    """AUC and log loss per shown group (a loop over groups: neither is a sum of counts)."""
    auc = np.full(len(groups), np.nan)
    loss = np.full(len(groups), np.nan)
    for i, group in enumerate(groups):
        if private[i]:
            continue
        rows = indices[group]
        metrics = score_metrics(label[rows], score[rows])
        auc[i], loss[i] = metrics["roc_auc"], metrics["log_loss"]
    return auc, loss
