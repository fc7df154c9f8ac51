"""The MLflow pyfunc model: raw rows in, score and decision out, typed exactly as in training.

Kept free of Dask and heavy imports so a registered model loads anywhere MLflow and XGBoost run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xgboost as xgb
from mlflow.pyfunc.model import PythonModel

from evenflow.assess.mitigation import ThresholdPolicy
from evenflow.data.features import typed_features
from evenflow.records import FeatureSpec

BOOSTER_ARTIFACT = "booster"
SCHEMA_ARTIFACT = "schema"
DECISION_SEED = 0
"""Seed of the uniform draws behind a threshold policy's randomised decisions (as in Fairlearn)."""
MODEL_CODE_FILE = "evenflow_model.py"
MODEL_CODE = '''"""evenflow's pyfunc model, logged as code (MLflow models-from-code): nothing is pickled."""

from mlflow.models import set_model

from evenflow.serving import EvenflowModel

set_model(EvenflowModel())
'''
"""The file MLflow runs to build the model when it loads it; ``evenflow`` travels in its code paths."""


def write_schema(
    features: tuple[FeatureSpec, ...],
    threshold: float,
    target: Path,
    threshold_policy: Path | None = None,
    trainer: str = "xgboost",
) -> Path:
    """Write what serving needs besides the booster: trainer, feature types, thresholds."""
    policy = json.loads(threshold_policy.read_text(encoding="utf-8")) if threshold_policy else None
    payload = {
        "features": [f.model_dump() for f in features],
        "threshold": threshold,
        "threshold_policy": policy,
        "trainer": trainer,
    }
    target.write_text(json.dumps(payload, indent=2), encoding="utf-8")
    return target


def write_model_code(folder: Path) -> Path:
    """Write the models-from-code file into ``folder``: logging a path, not an object, pickles nothing."""
    target = folder / MODEL_CODE_FILE
    target.write_text(MODEL_CODE, encoding="utf-8")
    return target


def load_booster(path: str, trainer: str) -> Any:
    """Load an XGBoost or LightGBM booster saved by training."""
    if trainer == "lightgbm":
        import lightgbm as lgb  # noqa: PLC0415  (only LightGBM models need it)

        return lgb.Booster(model_file=path)
    booster = xgb.Booster()
    booster.load_model(path)
    return booster


class EvenflowModel(PythonModel):
    """Scores raw input rows; returns ``score`` (probability) and ``prediction`` (0/1)."""

    draws: np.random.RandomState | None = None
    """Stream of a threshold policy's draws; None: a fresh ``RandomState(DECISION_SEED)`` per call.

    Draws go to rows by their position in the call, so a caller that scores one batch in several
    calls (``evenflow.usecases.score``) sets one stream for all of them and gets the whole-batch decisions.
    """

    def load_context(self, context: Any) -> None:
        """Load the booster and the feature schema logged with the model."""
        schema = json.loads(Path(context.artifacts[SCHEMA_ARTIFACT]).read_text(encoding="utf-8"))
        self.features = tuple(FeatureSpec(**f) for f in schema["features"])
        self.threshold = float(schema["threshold"])
        policy = schema.get("threshold_policy")
        self.policy = ThresholdPolicy.from_json(json.dumps(policy)) if policy else None
        self.trainer = schema.get("trainer", "xgboost")
        self.booster = load_booster(context.artifacts[BOOSTER_ARTIFACT], self.trainer)

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> pd.DataFrame:
        """Score rows given with the training data's raw columns."""
        typed = typed_features(model_input, self.features)
        if self.trainer == "lightgbm":
            score = np.asarray(self.booster.predict(typed), dtype="float64")
        else:
            matrix = xgb.DMatrix(typed, enable_categorical=True)
            score = self.booster.predict(matrix).astype("float64")
        return pd.DataFrame(
            {"score": score, "prediction": self._decide(model_input, score)},
            index=model_input.index,
        )

    def _decide(self, model_input: pd.DataFrame, score: np.ndarray) -> np.ndarray:
        """Per-group thresholds when the model has them and the input names the group."""
        if self.policy is None or self.policy.sensitive_column not in model_input.columns:
            return np.asarray(score >= self.threshold, dtype=np.int64)
        groups = model_input[self.policy.sensitive_column]
        seed = DECISION_SEED if self.draws is None else self.draws
        return np.asarray(self.policy.decide(score, groups, seed=seed), dtype=np.int64)
