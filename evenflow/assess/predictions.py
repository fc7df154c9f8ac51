"""The predictions frame every assessment reads: its column names and its group labels.

One row per example: ``label`` (0/1), ``score`` (probability of the positive class), optionally
``decision`` (the 0/1 decisions actually made, e.g. by per-group thresholds, overriding
``score >= threshold``) and ``_row_id`` (fixes the bootstrap's row order), and the sensitive columns.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from evenflow.assess.arrays import BoolArray, FloatArray, IntArray
from evenflow.errors import DataError

LABEL_COLUMN = "label"
SCORE_COLUMN = "score"
DECISION_COLUMN = "decision"
ROW_ID_COLUMN = "_row_id"
MISSING = "(missing)"
"""The group label of rows whose sensitive value is missing: they form a group of their own."""


def group_labels(values: pd.Series) -> pd.Series:
    """A sensitive column's values as strings, missing values labelled ``MISSING``."""
    text = values.astype("string")
    if text.isna().any() and (text == MISSING).any():
        raise DataError(f"column {values.name!r} holds the literal value {MISSING!r}")
    return text.fillna(MISSING)


def validated(label: ArrayLike, score: ArrayLike) -> tuple[IntArray, FloatArray]:
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


def require_columns(frame: pd.DataFrame, columns: Sequence[str]) -> None:
    """Raise ``DataError`` naming the columns ``frame`` lacks."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(f"predictions lack column(s) {missing}; found {list(frame.columns)}")


def decided(score: FloatArray, threshold: float, decision: ArrayLike | None) -> BoolArray:
    """The decisions: a given 0/1 ``decision`` array, else ``score >= threshold``."""
    if decision is None:
        return np.asarray(score >= threshold)
    made = np.asarray(decision)
    if made.shape != score.shape or not np.isin(made, (0, 1)).all():
        raise DataError("decision must hold one 0 or 1 per row")
    return np.asarray(made == 1, dtype=np.bool_)
