"""Clean ends: what a killed process left running is closed by the next command, and only that."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from mlflow import MlflowClient
from typer.testing import CliRunner

from evenflow.cli.main import app
from evenflow.config.settings import EvenflowSettings
from evenflow.ops import leftovers, owners
from evenflow.registry import store

RUNNER = CliRunner()
#: A stand-in for the local Prefect API: a process whose command line says it is one.
SERVER_ARGV = [
    sys.executable,
    "-c",
    "import time; time.sleep(120)",
    "prefect.server.api.server:create_app",
]


def dead_pid() -> int:
    """The pid of a process that has exited."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def write_record(settings: EvenflowSettings, record: dict[str, object]) -> Path:
    folder = owners.owners_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{record['pid']}.json"
    path.write_text(json.dumps(record), encoding="utf-8")
    return path


def test_a_dead_process_has_its_run_killed_and_its_server_stopped(project: Path) -> None:
    settings = EvenflowSettings()
    run_id = store.start_run(settings, "t", "orphan", {})
    closed_id = store.start_run(settings, "t", "closed", {})
    store.finish_run(settings, closed_id, failed=False)
    server = subprocess.Popen(SERVER_ARGV)
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        pid = dead_pid()
        record = {"pid": pid, "started": 1.0, "prefect_server_pid": server.pid}
        path = write_record(settings, {**record, "mlflow_runs": [run_id, closed_id]})
        # A record that names a process which is not a Prefect server: that process is spared.
        other = write_record(
            settings, {"pid": pid + 100000, "started": 1.0, "prefect_server_pid": bystander.pid}
        )

        result = RUNNER.invoke(app, ["history", "t"])  # any command sweeps first

        assert f"marked MLflow run {run_id} KILLED: its process {pid} is gone" in result.output
        assert f"stopped the local Prefect API (pid {server.pid})" in result.output
        assert server.wait(timeout=15) is not None
        assert bystander.poll() is None
        assert not path.exists() and not other.exists()
        client = MlflowClient(settings.tracking_uri)
        orphan = client.get_run(run_id)
        assert orphan.info.status == "KILLED"
        assert (
            f"evenflow process {pid} ended without closing this run"
            in (orphan.data.tags[leftovers.END_REASON_TAG])
        )
        assert client.get_run(closed_id).info.status == "FINISHED"
        assert leftovers.END_REASON_TAG not in client.get_run(closed_id).data.tags
    finally:
        for child in (server, bystander):
            child.kill()
            child.wait()


def test_a_live_process_keeps_its_runs_and_a_reused_pid_does_not_fool_the_sweep(
    project: Path,
) -> None:
    settings = EvenflowSettings()
    run_id = store.start_run(settings, "t", "mine", {})
    owners.claim_run(settings, run_id)
    assert leftovers.sweep(settings) == []
    assert MlflowClient(settings.tracking_uri).get_run(run_id).info.status == "RUNNING"
    # The same pid with another start time is another process: the record's owner is gone.
    mine = owners.owners_dir(settings) / f"{os.getpid()}.json"
    stale = json.loads(mine.read_text(encoding="utf-8"))
    mine.write_text(json.dumps({**stale, "started": stale["started"] - 60}), encoding="utf-8")
    assert leftovers.sweep(settings) == [
        f"marked MLflow run {run_id} KILLED: its process {os.getpid()} is gone"
    ]
    assert not mine.exists()


def test_a_closed_run_is_released(project: Path) -> None:
    settings = EvenflowSettings()
    run_id = store.start_run(settings, "t", "mine", {})
    owners.claim_run(settings, run_id)
    owners.release_run(settings, run_id)
    assert not (owners.owners_dir(settings) / f"{os.getpid()}.json").exists()
