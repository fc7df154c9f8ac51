"""Reductions (Fairlearn's ExponentiatedGradient): XGBoost trained under a fairness constraint.

The result is a randomised mixture of XGBoost classifiers, fitted on one node on a seeded row
sample; its decisions, not its scores, carry the constraint's guarantee.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from evenflow.assess.arrays import FloatArray, IntArray
from evenflow.assess.mitigation import target_column
from evenflow.assess.predictions import LABEL_COLUMN, require_columns
from evenflow.assess.reweighing import binary_labels, group_keys
from evenflow.config.mitigation import (
    REDUCTIONS_CONSTRAINTS,
    MitigationParams,
    unsupported_constraint,
)
from evenflow.config.run import ModelParams
from evenflow.data.features import typed_features
from evenflow.errors import ConfigError
from evenflow.records import FeatureSpec
from evenflow.training.boosters import tree_settings

logger = logging.getLogger(__name__)


class ReductionsModel:
    """A fitted ``ExponentiatedGradient``: a randomised mixture of XGBoost classifiers.

    ``score`` is the mixture's probability of predicting 1 (``_pmf_predict``), a float64.
    ``decide`` draws the randomised decisions, which are what ExponentiatedGradient's guarantee is
    about: ``score >= 0.5`` is a derandomised rule whose parity is not guaranteed, so pass
    ``decide``'s output as the ``decision`` column to ``compare_mitigations``.
    """

    def __init__(
        self,
        mitigator: Any,
        features: Sequence[FeatureSpec],
        sensitive_column: str,
        constraint: str,
        n_rows: int,
    ) -> None:
        self.mitigator = mitigator
        self.features = tuple(features)
        self.sensitive_column = sensitive_column
        self.constraint = constraint
        self.n_rows = n_rows

    def score(self, frame: pd.DataFrame) -> FloatArray:
        """P(decision = 1) per row of a frame with the feature columns (raw or typed).

        Clipped to [0, 1]: the mixture's weighted sum can overshoot 1 by a rounding error.
        """
        return np.clip(self._pmf(frame), 0.0, 1.0)

    def decide(self, frame: pd.DataFrame, seed: int) -> IntArray:
        """Seeded decisions, equal to ``ExponentiatedGradient.predict(X, random_state=seed)``."""
        draws = np.random.RandomState(seed).rand(len(frame))
        return (self._pmf(frame) >= draws).astype(np.int64)

    def _pmf(self, frame: pd.DataFrame) -> FloatArray:
        pmf = self.mitigator._pmf_predict(typed_features(frame, self.features))
        positive: FloatArray = np.asarray(pmf, dtype=np.float64)[:, 1]
        return positive

    def summary(self) -> dict[str, Any]:
        """Numbers worth logging: iterations, oracle calls, gap and the mixture's support."""
        m = self.mitigator
        weights = np.asarray(m.weights_, dtype=np.float64)
        return {
            "constraint": self.constraint,
            "sensitive_column": self.sensitive_column,
            "n_rows": self.n_rows,
            "last_iter": int(m.last_iter_),
            "best_iter": int(m.best_iter_),
            "best_gap": float(m.best_gap_),
            "n_oracle_calls": int(m.n_oracle_calls_),
            "n_predictors_used": int(np.count_nonzero(weights > 0)),
        }


def fit_reductions(
    train: pd.DataFrame,
    features: Sequence[FeatureSpec],
    sensitive: Sequence[str],
    params: MitigationParams,
    model: ModelParams | None = None,
) -> ReductionsModel:
    """Train ``ExponentiatedGradient`` with an XGBClassifier inside, on a seeded row sample.

    Args:
        train: Training rows: the feature columns (raw or typed), ``label`` (0/1) and the
            sensitive column.
        features: The model's inputs, typed as in distributed training.
        sensitive: Sensitive columns; the target is picked by ``target_column``.
        params: Constraint, eps, iterations, rounds per inner model, row cap and seed.
        model: Booster settings shared with the main model (depth, rate, ...); defaults if None.
    """
    from fairlearn.reductions import ExponentiatedGradient  # noqa: PLC0415  (import is slow)

    if params.constraint not in REDUCTIONS_CONSTRAINTS:
        raise ConfigError(
            unsupported_constraint("reductions", params.constraint, REDUCTIONS_CONSTRAINTS)
        )
    column = target_column(params, sensitive)
    require_columns(train, [LABEL_COLUMN, column])
    sample = _sample_rows(train, params.reductions_max_rows, params.seed)
    mitigator = ExponentiatedGradient(
        _inner_estimator(model or ModelParams(), params),
        _moment(params.constraint),
        eps=params.reductions_eps,
        max_iter=params.reductions_max_iter,
    )
    mitigator.fit(
        typed_features(sample, features),
        binary_labels(sample[LABEL_COLUMN]),
        sensitive_features=group_keys(sample[column]),
    )
    fitted = ReductionsModel(mitigator, features, column, params.constraint, len(sample))
    logger.info("reductions fitted: %s", fitted.summary())
    return fitted


def _sample_rows(frame: pd.DataFrame, max_rows: int, seed: int) -> pd.DataFrame:
    """At most ``max_rows`` rows, drawn with the seed and kept in their original order."""
    if len(frame) <= max_rows:
        return frame.reset_index(drop=True)
    picked = np.sort(np.random.default_rng(seed).choice(len(frame), max_rows, replace=False))
    logger.info("reductions: sampled %d of %d training rows", max_rows, len(frame))
    return frame.iloc[picked].reset_index(drop=True)


def _inner_estimator(model: ModelParams, params: MitigationParams) -> Any:
    import xgboost as xgb  # noqa: PLC0415

    return xgb.XGBClassifier(
        n_estimators=params.reductions_n_estimators,
        n_jobs=params.reductions_threads,
        enable_categorical=True,
        device="cpu",
        random_state=model.seed,
        **tree_settings(model),
    )


def _moment(constraint: str) -> Any:
    from fairlearn import reductions  # noqa: PLC0415

    moments = {
        "demographic_parity": reductions.DemographicParity,
        "equalized_odds": reductions.EqualizedOdds,
        "true_positive_rate_parity": reductions.TruePositiveRateParity,
        "false_positive_rate_parity": reductions.FalsePositiveRateParity,
        "error_rate_parity": reductions.ErrorRateParity,
    }
    return moments[constraint]()
