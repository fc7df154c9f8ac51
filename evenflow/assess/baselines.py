"""Plain baselines fitted on the model's own training rows: the prior and a logistic regression.

A boosted model is only worth its complexity if it beats what a statistician would fit first.
Both baselines see exactly the rows the model's trees saw (the train split, or, when cross-fitted,
each fold's training folds) and are scored on exactly the rows the model is evaluated on, so the
comparison in the report and the gate is like for like.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from evenflow.data.features import label_values
from evenflow.errors import DataError
from evenflow.records import FeatureSpec, ShardManifest, SplitName

logger = logging.getLogger(__name__)

LABEL = "label"
BASELINES = ("prior", "logistic")
MISSING = "(missing)"


def logistic_model(features: Sequence[FeatureSpec], seed: int = 0) -> Pipeline:
    """L2-regularised logistic regression: one-hot categoricals, standardised numbers."""
    numeric = [f.name for f in features if f.kind == "numeric"]
    categorical = [f.name for f in features if f.kind == "categorical"]
    columns = ColumnTransformer(
        [
            ("numeric", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
            ("categorical", OneHotEncoder(handle_unknown="ignore"), categorical),
        ]
    )
    return make_pipeline(columns, LogisticRegression(C=1.0, max_iter=2000, random_state=seed))


def baseline_scores(
    train: pd.DataFrame, scored: pd.DataFrame, features: Sequence[FeatureSpec], seed: int = 0
) -> dict[str, np.ndarray]:
    """Fit both baselines on ``train`` and score ``scored``; both frames carry ``label``."""
    if train[LABEL].nunique() < 2:  # noqa: PLR2004
        raise DataError(
            "the baselines' training rows hold one class only; no model can be compared"
        )
    prior = float(train[LABEL].mean())
    model = logistic_model(features, seed).fit(_inputs(train, features), train[LABEL])
    return {
        "prior": np.full(len(scored), prior, dtype=np.float64),
        "logistic": np.asarray(
            model.predict_proba(_inputs(scored, features))[:, 1], dtype=np.float64
        ),
    }


def baseline_predictions(manifest: ShardManifest, max_rows: int, seed: int = 0) -> pd.DataFrame:
    """Both baselines' scores for every evaluated row, beside its id, label and groups.

    Held out: fitted on (a sample of at most ``max_rows``) train rows, scored on test. Cross-fitted:
    for each fold, fitted on the rows its fold model trained on, scored on the fold.
    """
    parts = [
        _fit_and_score(manifest, fold_manifest, max_rows, seed)
        for fold_manifest in _evaluations(manifest)
    ]
    frame = pd.concat(parts, ignore_index=True)
    return frame.sort_values(manifest.row_id, kind="stable").reset_index(drop=True)


def _evaluations(manifest: ShardManifest) -> Iterator[ShardManifest]:
    if manifest.cross_fitted:
        for fold in range(manifest.plan.folds):
            yield manifest.fold_manifest(fold)
    else:
        yield manifest


def _fit_and_score(
    manifest: ShardManifest, rows: ShardManifest, max_rows: int, seed: int
) -> pd.DataFrame:
    train = _read_split(rows, "train", max_rows, seed)
    scored = _read_split(rows, "test", None, seed)
    scores = baseline_scores(train, scored, manifest.features, seed)
    keep = [manifest.row_id, LABEL, *manifest.sensitive]
    result = scored[keep].assign(**{f"score_{name}": scores[name] for name in BASELINES})
    for column in manifest.sensitive:
        result[column] = result[column].astype("string")
    return result


def _read_split(
    manifest: ShardManifest, split: SplitName, max_rows: int | None, seed: int
) -> pd.DataFrame:
    """A split's rows (a seeded sample when it has more than ``max_rows``), labels as 0/1."""
    columns = list(
        dict.fromkeys(
            [
                manifest.row_id,
                manifest.target,
                *manifest.sensitive,
                *(f.name for f in manifest.features),
            ]
        )
    )
    total = manifest.split_rows(split)
    fraction = 1.0 if max_rows is None else min(1.0, max_rows / max(total, 1))
    rng = np.random.default_rng(seed)
    frames = []
    for path in manifest.split_paths(split):
        shard = pd.read_parquet(path, columns=columns)
        frames.append(shard if fraction >= 1.0 else shard[rng.random(len(shard)) < fraction])
    frame = pd.concat(frames, ignore_index=True)
    frame[LABEL] = label_values(frame[manifest.target], manifest.positive_label).to_numpy()
    return frame


def _inputs(frame: pd.DataFrame, features: Sequence[FeatureSpec]) -> pd.DataFrame:
    """Numbers as float64 (NaN for missing), text as object with missing as its own category."""
    return pd.DataFrame(
        {
            f.name: pd.to_numeric(frame[f.name], errors="coerce").astype("float64")
            if f.kind == "numeric"
            else frame[f.name].astype("string").fillna(MISSING).astype(object)
            for f in features
        },
        index=frame.index,
    )
