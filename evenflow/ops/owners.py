"""Who owns what a run leaves running: one small record per evenflow process.

A process killed with ``kill -9`` runs no clean-up: its MLflow run stays RUNNING and the local
Prefect API it started keeps listening. Each process therefore writes down, as it goes, what it
started (``.evenflow/owners/<pid>.json``), and the next command sweeps the records of processes
that are gone (:mod:`evenflow.ops.leftovers`). A pid alone is not an identity (pids are reused),
so a record also keeps the process's start time.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import psutil  # type: ignore[import-untyped]

from evenflow.config.settings import EvenflowSettings
from evenflow.io import write_json_atomic

OWNERS_DIR = "owners"


@dataclass(frozen=True)
class ProcessRecord:
    """What one evenflow process started: its local Prefect API and its MLflow runs."""

    pid: int
    started: float  # the process's start time (psutil), so that a reused pid is not mistaken
    prefect_server_pid: int | None = None
    mlflow_runs: tuple[str, ...] = field(default_factory=tuple)

    def alive(self) -> bool:
        """Whether the process that wrote this record still runs."""
        return process_started(self.pid) == self.started


def process_started(pid: int) -> float | None:
    """The start time of process ``pid``, or None if there is none."""
    try:
        return float(psutil.Process(pid).create_time())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def owners_dir(settings: EvenflowSettings) -> Path:
    """Where the records live: ``.evenflow/owners``."""
    return settings.state_dir / OWNERS_DIR


def own_record(settings: EvenflowSettings) -> ProcessRecord:
    """This process's record (a new, empty one if it has written none)."""
    path = owners_dir(settings) / f"{os.getpid()}.json"
    if path.exists():
        record = read_record(path)
        if record is not None and record.alive():
            return record
    pid = os.getpid()
    return ProcessRecord(pid=pid, started=process_started(pid) or 0.0)


def claim_server(settings: EvenflowSettings, server_pid: int) -> None:
    """Write down that this process started the local Prefect API ``server_pid``."""
    _save(settings, replace(own_record(settings), prefect_server_pid=server_pid))


def forget_server(settings: EvenflowSettings) -> None:
    """The local Prefect API stops with this process (Prefect's own exit hook): nothing to sweep."""
    _save(settings, replace(own_record(settings), prefect_server_pid=None))


def claim_run(settings: EvenflowSettings, run_id: str) -> None:
    """Write down that this process opened MLflow run ``run_id``."""
    record = own_record(settings)
    _save(settings, replace(record, mlflow_runs=(*record.mlflow_runs, run_id)))


def release_run(settings: EvenflowSettings, run_id: str) -> None:
    """The run was closed by its owner: nothing to sweep for it any more."""
    record = own_record(settings)
    runs = tuple(run for run in record.mlflow_runs if run != run_id)
    _save(settings, replace(record, mlflow_runs=runs))


def read_record(path: Path) -> ProcessRecord | None:
    """A record from its file; None for a file that is not one (half-written by an old version)."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return ProcessRecord(
            pid=int(raw["pid"]),
            started=float(raw["started"]),
            prefect_server_pid=raw.get("prefect_server_pid"),
            mlflow_runs=tuple(raw.get("mlflow_runs", ())),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _save(settings: EvenflowSettings, record: ProcessRecord) -> None:
    folder = owners_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{record.pid}.json"
    if record.prefect_server_pid is None and not record.mlflow_runs:
        path.unlink(missing_ok=True)
        return
    write_json_atomic(path, asdict(record))
