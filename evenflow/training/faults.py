"""Test-only fault injection: a worker that kills itself mid-training, to prove the resume works.

Read on the driver from ``KILL_WORKER_ENV``: "ROUND:MARKER" makes the rank-0 worker SIGKILL itself
after ROUND boosted rounds, once (the marker file records that it did). Not user configuration.
"""

from __future__ import annotations

import os
import signal
from typing import Any

import xgboost as xgb

KILL_WORKER_ENV = "EVENFLOW_TEST_KILL_WORKER_AT"


class _KillWorkerOnce(xgb.callback.TrainingCallback):
    """Test-only: the rank-0 worker SIGKILLs itself after ``rounds`` rounds, once per marker."""

    def __init__(self, rounds: int, marker: str) -> None:
        self.rounds = rounds
        self.marker = marker

    def after_iteration(self, model: Any, epoch: int, evals_log: dict[str, Any]) -> bool:
        if model.num_boosted_rounds() < self.rounds or xgb.collective.get_rank() != 0:
            return False
        try:
            os.close(os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return False
        os.kill(os.getpid(), signal.SIGKILL)
        return False  # pragma: no cover


def fault_callbacks() -> list[xgb.callback.TrainingCallback]:
    """The fault ``KILL_WORKER_ENV`` asks for, as a training callback; none when it is unset."""
    spec = os.environ.get(KILL_WORKER_ENV)
    if not spec:
        return []
    rounds, marker = spec.split(":", 1)
    return [_KillWorkerOnce(int(rounds), marker)]
