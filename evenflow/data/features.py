"""Typing model inputs the same way at training and at serving time (pandas only)."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from evenflow.config.run import DatasetSpec
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


def feature_specs(frame: pd.DataFrame, spec: DatasetSpec) -> tuple[FeatureSpec, ...]:
    """Type each model input: numeric columns stay numeric, everything else is categorical."""
    tally = FeatureTally(spec)
    tally.update(frame)
    return tally.specs()


def is_number(column: pd.Series) -> bool:
    """A numeric feature: numbers, but not booleans (which pandas also calls numeric)."""
    return bool(pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column))


class FeatureTally:
    """Feature kinds from the first chunk, categories gathered over every chunk."""

    def __init__(self, spec: DatasetSpec) -> None:
        self.spec = spec
        self.numeric: dict[str, bool] = {}
        self.categories: dict[str, set[str]] = {}

    def update(self, chunk: pd.DataFrame) -> None:
        """Fold one chunk in: a column's kind is set by the first chunk that has it."""
        excluded = self.spec.not_features()
        for name in chunk.columns:
            if name in excluded:
                continue
            column = chunk[name]
            if name not in self.numeric:
                self.numeric[name] = is_number(column)
            if not self.numeric[name]:
                self.categories.setdefault(name, set()).update(column.dropna().astype(str).unique())

    def specs(self) -> tuple[FeatureSpec, ...]:
        """The typed features, in column order; a ``DataError`` when none is left."""
        features = tuple(
            FeatureSpec(name=str(name), kind="numeric")
            if numeric
            else FeatureSpec(
                name=str(name),
                kind="categorical",
                categories=tuple(sorted(self.categories.get(name, ()))),
            )
            for name, numeric in self.numeric.items()
        )
        if not features:
            raise DataError(
                f"dataset '{self.spec.name}' has no feature columns left after exclusions"
            )
        return features
