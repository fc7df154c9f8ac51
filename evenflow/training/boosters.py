"""The one mapping from ``ModelParams`` to XGBoost tree settings, shared by every XGBoost we fit.

``training`` (the distributed booster) and ``mitigation`` (the reductions' inner estimator) both
read it; it lives apart from both because ``training`` imports ``mitigation``.
"""

from __future__ import annotations

from typing import Any

from evenflow.config.run import ModelParams


def tree_settings(model: ModelParams) -> dict[str, Any]:
    """XGBoost's tree-growing settings for ``model`` (names valid for ``train`` and the sklearn API)."""
    return {
        "tree_method": "hist",
        "learning_rate": model.learning_rate,
        "max_depth": model.max_depth,
        "min_child_weight": model.min_child_weight,
        "subsample": model.subsample,
        "colsample_bytree": model.colsample_bytree,
        "reg_lambda": model.reg_lambda,
        "max_cat_to_onehot": model.max_cat_to_onehot,
        "max_bin": model.max_bin,
    }
