"""The one computation of rates from confusion counts, for the overall row and for every group.

Names are the fairness report's (``tpr``, not ``recall``); a ratio whose denominator is zero is
NaN: undefined, never an exception and never a silent 0. Works on one count or on arrays of
counts (groups, replicates) at once.
"""

from __future__ import annotations

import numpy as np

from evenflow.assess.arrays import FloatArray, IntArray

RATE_METRICS = ("base_rate", "selection_rate", "tpr", "fpr", "fnr", "precision", "accuracy")
"""The per-group rates of the fairness report, in its order."""


def ratio(numerator: FloatArray, denominator: FloatArray) -> FloatArray:
    """Elementwise ratio, NaN where the denominator is zero (the rate is undefined)."""
    out = np.full(np.broadcast(numerator, denominator).shape, np.nan)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def rates_from_counts(
    tp: FloatArray, fp: FloatArray, tn: FloatArray, fn: FloatArray
) -> dict[str, FloatArray]:
    """``RATE_METRICS`` and ``f1`` from true/false positive/negative counts (elementwise)."""
    n, pos, neg, pred_pos = tp + fp + tn + fn, tp + fn, fp + tn, tp + fp
    return {
        "base_rate": ratio(pos, n),
        "selection_rate": ratio(pred_pos, n),
        "tpr": ratio(tp, pos),
        "fpr": ratio(fp, neg),
        "fnr": ratio(fn, pos),
        "precision": ratio(tp, pred_pos),
        "accuracy": ratio(tp + tn, n),
        "f1": ratio(2 * tp, 2 * tp + fp + fn),
    }


def bin_index(scores: FloatArray, n_bins: int) -> IntArray:
    """Equal-width bins on [0, 1]; the last bin is closed so a score of 1 belongs to it."""
    return np.minimum((scores * n_bins).astype(np.int64), n_bins - 1)


def bin_edges(n_bins: int) -> tuple[float, ...]:
    """The ``n_bins + 1`` edges of ``bin_index``'s bins."""
    return tuple(float(e) for e in np.linspace(0.0, 1.0, n_bins + 1))
