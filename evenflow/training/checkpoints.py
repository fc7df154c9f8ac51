"""Checkpoints that let a retry after a lost worker resume XGBoost training where it stopped."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import xgboost as xgb
from pydantic import Field

from evenflow.config.run import ModelParams
from evenflow.records import Record

logger = logging.getLogger(__name__)

CHECKPOINT_FILE = "checkpoint.ubj"
_CHECKPOINT_ATTR = "evenflow_checkpoint"


def checkpoint_fingerprint(params: Mapping[str, Any], *parts: object) -> str:
    """Hash of what makes a checkpoint reusable: booster params, data, placement, stopping."""
    payload = json.dumps([dict(params), *parts], sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


class Checkpoint(Record):
    """What a checkpoint records beside the booster: where training was and how it judged."""

    fingerprint: str = Field(description="Hash of the training it belongs to (a resume checks it).")
    rounds: int = Field(description="Rounds boosted when it was saved.")
    best_iteration: int = Field(description="Early stopping's best round so far (0-based).")
    best_score: float = Field(description="Valid AUC at that round.")
    valid_auc: tuple[float, ...] = Field(description="Valid AUC after every round, first to last.")


def load_checkpoint(path: Path, fingerprint: str) -> tuple[xgb.Booster, Checkpoint] | None:
    """The booster saved at ``path`` and its record, when it belongs to this training."""
    if not path.is_file():
        return None
    try:
        booster = xgb.Booster(model_file=str(path))
        record = Checkpoint.model_validate_json(booster.attr(_CHECKPOINT_ATTR) or "")
    except (xgb.core.XGBoostError, ValueError) as exc:
        logger.warning("ignoring unreadable checkpoint %s: %s", path, exc)
        return None
    if record.fingerprint != fingerprint or booster.num_boosted_rounds() != record.rounds:
        logger.info("ignoring checkpoint %s: it was made by another training", path)
        return None
    booster.set_attr(**{_CHECKPOINT_ATTR: None})
    return booster, record


class SaveCheckpoint(xgb.callback.TrainingCallback):
    """Every ``every`` rounds rank 0 saves the booster with its record (temp file, then rename)."""

    def __init__(self, path: str, every: int, fingerprint: str, history: Sequence[float]) -> None:
        self.path = path
        self.every = every
        self.fingerprint = fingerprint
        self.history = list(history)  # valid AUC of the rounds before this attempt

    def after_iteration(self, model: Any, epoch: int, evals_log: dict[str, Any]) -> bool:
        """Save on every ``every``-th round, from rank 0 only; never stop training."""
        rounds = model.num_boosted_rounds()
        if rounds % self.every or xgb.collective.get_rank() != 0:
            return False
        aucs = [*self.history, *evals_log.get("valid", {}).get("auc", [])]
        record = Checkpoint(
            fingerprint=self.fingerprint,
            rounds=rounds,
            best_iteration=int(model.attr("best_iteration") or rounds - 1),
            best_score=float(model.attr("best_score") or aucs[-1]),
            valid_auc=tuple(float(a) for a in aucs),
        )
        copy = model.copy()
        copy.set_attr(**{_CHECKPOINT_ATTR: record.model_dump_json()})
        tmp = f"{self.path}.{os.getpid()}.tmp.ubj"
        copy.save_model(tmp)
        os.replace(tmp, self.path)
        return False


class ResumedEarlyStopping(xgb.callback.EarlyStopping):
    """Early stopping on valid AUC that, on a resumed attempt, remembers the best so far."""

    def __init__(self, rounds: int, resumed: Checkpoint | None) -> None:
        super().__init__(rounds=rounds, metric_name="auc", data_name="valid", maximize=True)
        self.resumed = resumed

    def before_training(self, model: Any) -> Any:
        """Start from the resumed checkpoint's best score and patience instead of from nothing."""
        model = super().before_training(model)
        if self.resumed is not None:
            best = self.resumed.best_score
            self.stopping_history = {"valid": {"auc": [best]}}
            self.best_scores = {"valid": {"auc": [best]}}
            self.current_rounds = self.resumed.rounds - 1 - self.resumed.best_iteration
        return model


def finished(record: Checkpoint, model: ModelParams) -> bool:
    """The checkpoint already holds every round, or early stopping had already fired."""
    return (
        record.rounds >= model.num_boost_round
        or record.rounds - 1 - record.best_iteration >= model.early_stopping_rounds
    )
