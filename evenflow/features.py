"""Typing model inputs the same way at training and at serving time (pandas only)."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from evenflow.records import FeatureSpec


def typed_column(column: pd.Series, feature: FeatureSpec) -> pd.Series:
    """Numbers as float32; text as a categorical with the training categories (unknown → missing)."""
    if feature.kind == "numeric":
        return pd.to_numeric(column, errors="coerce").astype("float32")
    # Fixed category lists keep category codes identical on every worker and at serving time.
    dtype = pd.CategoricalDtype(categories=list(feature.categories))
    return column.astype("string").astype(dtype)


def typed_features(frame: pd.DataFrame, features: Sequence[FeatureSpec]) -> pd.DataFrame:
    """Select and type the model's input columns, in training order."""
    missing = [f.name for f in features if f.name not in frame.columns]
    if missing:
        raise KeyError(f"input is missing feature columns: {missing}")
    return pd.DataFrame(
        {f.name: typed_column(frame[f.name], f) for f in features}, index=frame.index
    )
