"""Isolated runs over a shared cache: each run works in its own folder, then publishes.

A stage's content-addressed folder (``.evenflow/stages/STAGE/KEY``) is shared by every run with the
same inputs. Two runs at once must not write into it together, and one must never resume from
another's half-done work (a checkpoint). So a stage works in a folder of its own flow run
(``.evenflow/runs/FLOW_RUN/STAGE``: its retries share it, no other run does), holds an OS file
lock on the shared folder (released by the kernel if the process dies; every cached stage holds
it while it runs, see ``tasks.caching.StageCache.task``), and publishes by one
rename, with its result record beside the outputs. A run that waited on the lock and finds the
folder published reuses that result instead of redoing the work.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from filelock import FileLock
from prefect.runtime import flow_run
from pydantic import BaseModel

from evenflow.config.settings import EvenflowSettings

logger = logging.getLogger("evenflow.cache")

#: The stage's result, written beside its outputs when they are published.
RESULT_FILE = "result.json"
_PROCESS_RUN = uuid.uuid4().hex  # outside a flow run (a task called directly): this process

_R = TypeVar("_R", bound=BaseModel)


def run_dir(settings: EvenflowSettings, run_id: str) -> Path:
    """The local folder of one run (an MLflow or a flow run id): what it writes before logging."""
    return settings.state_dir / "runs" / run_id


def run_work_dir(settings: EvenflowSettings, stage: str) -> Path:
    """This flow run's own folder for ``stage`` (its retries share it, other runs never do)."""
    return run_dir(settings, str(flow_run.get_id() or _PROCESS_RUN)) / stage


@contextmanager
def exclusive(settings: EvenflowSettings, shared: Path) -> Iterator[None]:
    """Hold the lock of a shared stage folder: one run at a time computes or publishes it.

    The lock files live in ``.evenflow/locks``, never beside the folder: a stage folder under
    ``data/`` is versioned by DVC, and a lock file there would change the data's hash.
    """
    digest = hashlib.sha256(str(shared.resolve()).encode()).hexdigest()[:16]
    with project_lock(settings, f"stage-{digest}"):
        yield


@contextmanager
def project_lock(settings: EvenflowSettings, name: str) -> Iterator[None]:
    """Hold a named lock of the project (e.g. registering one model: look up, then register)."""
    folder = settings.state_dir / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    with FileLock(folder / f"{name}.lock"):
        yield


def published(shared: Path, kind: type[_R]) -> _R | None:
    """The result a run published in ``shared``, or None if none did."""
    record = shared / RESULT_FILE
    if not record.is_file():
        return None
    return kind.model_validate_json(record.read_text(encoding="utf-8"))


def publish(work: Path, shared: Path, result: _R) -> _R:
    """Move the finished ``work`` folder to ``shared`` in one rename; return ``result`` re-pointed.

    Paths inside ``work`` held by the result now point into ``shared``. Call under
    :func:`exclusive`.
    """
    moved = _repoint(result, work, shared)
    (work / RESULT_FILE).write_text(moved.model_dump_json(indent=2), encoding="utf-8")
    if shared.exists():
        shutil.rmtree(shared)  # a stale, unpublished leftover: outputs without a result
    shared.parent.mkdir(parents=True, exist_ok=True)
    os.replace(work, shared)
    return moved


def _repoint(result: _R, work: Path, shared: Path) -> _R:
    updates = {
        name: shared / value.relative_to(work)
        for name, value in result
        if isinstance(value, Path) and value.is_relative_to(work)
    }
    return result.model_copy(update=updates)
