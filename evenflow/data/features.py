"""Typing model inputs the same way at training and at serving time (pandas only)."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from evenflow.errors import ConfigError, DataError
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


def label_values(column: pd.Series, positive_label: str) -> pd.Series:
    """Map the target column to 0/1: numeric targets compare as numbers, others as text."""
    if pd.api.types.is_numeric_dtype(column):
        try:
            positive = float(positive_label)
        except ValueError:
            raise ConfigError(
                f"positive label {positive_label!r} is not a number but target '{column.name}' is numeric"
            ) from None
        return (column.astype("float64") == positive).astype("int64")
    if column.isna().any():
        raise DataError(f"target '{column.name}' has {int(column.isna().sum())} missing values")
    return (column.astype("string").str.strip() == positive_label).astype("int64")
