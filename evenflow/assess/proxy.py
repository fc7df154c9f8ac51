"""The proxy check: how well the other features predict each sensitive column.

Dropping a sensitive column does not remove its signal when other columns carry it; the check
reports how much they do (an out-of-fold AUC and the features that carry it). It is reported,
never a gate by itself.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
import xgboost as xgb
from pydantic import Field

from evenflow.assess.arrays import FloatArray, IntArray
from evenflow.assess.attribution import OTHER, FeatureImportance, sample_rows
from evenflow.assess.predictions import MISSING
from evenflow.errors import DataError
from evenflow.records import Record

logger = logging.getLogger(__name__)


_PROXY_PARAMS: dict[str, Any] = {
    "tree_method": "hist",
    "max_depth": 4,
    "eta": 0.15,
    "subsample": 0.9,
    "max_cat_to_onehot": 1,
}
_PROXY_ROUNDS = 80
_PROXY_EXPLAIN_ROWS = 1_000
_BINARY = 2


class ProxyResult(Record):
    """How well the non-sensitive features predict one sensitive column on held-out rows."""

    column: str
    auc: float | None = Field(description="Out-of-fold AUC; None when it cannot be computed.")
    auc_kind: Literal["binary", "macro_ovr", "none"]
    class_auc: dict[str, float] = Field(
        default_factory=dict, description="One-vs-rest AUC per class (multiclass only)."
    )
    n_rows: int
    n_folds: int
    classes: dict[str, int] = Field(description="Class -> rows (after merging rare classes).")
    merged_classes: tuple[str, ...] = Field(
        default=(), description="Classes too rare to stratify, merged into '(other)'."
    )
    features_used: tuple[str, ...]
    top_features: tuple[FeatureImportance, ...] = Field(
        description="Features by mean |SHAP| of the proxy model on held-out rows (≤1,000 per fold)."
    )
    model: str = Field(description="The proxy model, in words.")
    note: str | None = None


def proxy_check(
    features: pd.DataFrame,
    sensitive: pd.DataFrame,
    seed: int = 0,
    max_rows: int | None = 20_000,
    *,
    n_folds: int = 3,
    top_k: int = 5,
    n_threads: int = 1,
) -> dict[str, ProxyResult]:
    """How well the non-sensitive features predict each sensitive column (out-of-fold AUC).

    A gradient-boosted classifier (XGBoost, categorical splits) is fitted on ``n_folds`` stratified
    folds; the AUC is computed on the out-of-fold probabilities: binary AUC for two classes, macro
    one-vs-rest AUC for more. Classes with fewer rows than folds are merged into ``"(other)"``.
    An AUC near 0.5 means the features say little about the column; near 1, they encode it.

    Args:
        features: Model inputs (typed); sensitive columns among them are excluded.
        sensitive: The sensitive columns, same index as ``features``.
        seed: Seed of the row sample, the folds and the model.
        max_rows: Rows used at most (a seeded sample); None uses every row.
        n_folds: Cross-validation folds.
        top_k: Features listed as carrying the signal.
        n_threads: XGBoost threads per fit; one by default because OpenMP threads on busy
            cores (e.g. beside Dask workers) run many times slower than one thread.

    Returns:
        Sensitive column -> result, in the order of ``sensitive``'s columns.
    """
    if not features.index.equals(sensitive.index):
        raise DataError("features and sensitive columns must share the same index")
    rows = sample_rows(features.index.to_frame(), max_rows, seed).index
    predictors = features.loc[rows, [c for c in features.columns if c not in sensitive.columns]]
    return {
        str(column): _proxy_one(
            str(column),
            predictors,
            sensitive.loc[rows, column],
            seed=seed,
            n_folds=n_folds,
            top_k=top_k,
            n_threads=n_threads,
        )
        for column in sensitive.columns
    }


def _proxy_one(
    column: str,
    predictors: pd.DataFrame,
    target: pd.Series,
    *,
    seed: int,
    n_folds: int,
    top_k: int,
    n_threads: int,
) -> ProxyResult:
    labels, merged = _proxy_labels(target, n_folds)
    predictors = predictors.loc[labels.index]
    classes = sorted(labels.unique())
    base = {
        "column": column,
        "n_rows": len(labels),
        "n_folds": n_folds,
        "classes": {str(c): int(n) for c, n in labels.value_counts().sort_index().items()},
        "merged_classes": merged,
        "features_used": tuple(map(str, predictors.columns)),
        "model": f"XGBoost hist, depth {_PROXY_PARAMS['max_depth']}, {_PROXY_ROUNDS} rounds",
    }
    if predictors.shape[1] == 0 or len(classes) < _BINARY:
        why = "no non-sensitive features" if predictors.shape[1] == 0 else "fewer than two classes"
        return ProxyResult(**base, auc=None, auc_kind="none", top_features=(), note=why)
    codes = pd.Categorical(labels, categories=classes).codes.astype(np.int64)
    params = {**_PROXY_PARAMS, "seed": seed, "nthread": n_threads, **_objective(len(classes))}
    proba, importance = _out_of_fold(predictors, codes, params, n_folds, seed)
    auc, per_class = _proxy_auc(codes, proba, classes)
    top = importance.sort_values(ascending=False, kind="stable").head(top_k)
    logger.info("proxy check %s: AUC %.3f from %d features", column, auc, predictors.shape[1])
    return ProxyResult(
        **base,
        auc=auc,
        auc_kind="binary" if len(classes) == _BINARY else "macro_ovr",
        class_auc=per_class,
        top_features=tuple(
            FeatureImportance(feature=str(k), mean_abs_shap=float(v)) for k, v in top.items()
        ),
    )


def _proxy_labels(target: pd.Series, n_folds: int) -> tuple[pd.Series, tuple[str, ...]]:
    """Class labels as strings; classes too rare for stratified folds merged into ``(other)``."""
    labels = target.astype("string").fillna(MISSING).astype(object)
    counts = labels.value_counts()
    rare = tuple(sorted(str(c) for c, n in counts.items() if n < n_folds))
    if not rare:
        return labels, ()
    merged = labels.where(~labels.isin(rare), OTHER)
    if int((merged == OTHER).sum()) < n_folds:  # still too rare: drop those rows
        merged = merged[merged != OTHER]
    return merged, rare


def _out_of_fold(
    predictors: pd.DataFrame,
    codes: IntArray,
    params: Mapping[str, Any],
    folds: int,
    seed: int,
) -> tuple[FloatArray, pd.Series]:
    """Out-of-fold class probabilities and mean |SHAP| per feature on the held-out rows."""
    from sklearn.model_selection import StratifiedKFold  # noqa: PLC0415

    n_classes = int(params.get("num_class", _BINARY))
    proba = np.zeros((len(codes), n_classes))
    importance = np.zeros(predictors.shape[1])
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for train, test in splitter.split(np.zeros(len(codes)), codes):
        fit = xgb.DMatrix(predictors.iloc[train], label=codes[train], enable_categorical=True)
        booster = xgb.train(params, fit, num_boost_round=_PROXY_ROUNDS)
        held_out = xgb.DMatrix(predictors.iloc[test], enable_categorical=True)
        raw = np.asarray(booster.predict(held_out), dtype=np.float64)
        proba[test] = raw if n_classes > _BINARY else np.column_stack([1.0 - raw, raw])
        importance += _mean_abs_contributions(booster, predictors.iloc[test]) / folds
    return proba, pd.Series(importance, index=list(map(str, predictors.columns)))


def _mean_abs_contributions(booster: xgb.Booster, rows: pd.DataFrame) -> FloatArray:
    """Mean |SHAP| per feature over at most ``_PROXY_EXPLAIN_ROWS`` evenly spaced rows.

    TreeSHAP costs far more than the fit here (one tree set per class); a mean needs few rows.
    """
    step = max(1, -(-len(rows) // _PROXY_EXPLAIN_ROWS))
    matrix = xgb.DMatrix(rows.iloc[::step], enable_categorical=True)
    contributions = np.abs(np.asarray(booster.predict(matrix, pred_contribs=True)))
    axes = tuple(range(contributions.ndim - 1))  # rows, and classes when multiclass
    means: FloatArray = contributions.mean(axis=axes)[:-1].astype(np.float64)
    return means


def _objective(n_classes: int) -> dict[str, Any]:
    if n_classes == _BINARY:
        return {"objective": "binary:logistic"}
    return {"objective": "multi:softprob", "num_class": n_classes}


def _proxy_auc(
    codes: IntArray, proba: FloatArray, classes: Sequence[str]
) -> tuple[float, dict[str, float]]:
    from sklearn.metrics import roc_auc_score  # noqa: PLC0415

    if len(classes) == _BINARY:
        return float(roc_auc_score(codes, proba[:, 1])), {}
    per_class = {
        str(name): float(roc_auc_score(codes == k, proba[:, k])) for k, name in enumerate(classes)
    }
    return float(np.mean(list(per_class.values()))), per_class
