"""A run killed with SIGKILL mid-training is closed by the next command: no RUNNING run, no server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil  # type: ignore[import-untyped]
import pytest
from mlflow import MlflowClient

from evenflow.config.settings import EvenflowSettings
from evenflow.ops import owners
from evenflow.ops.leftovers import END_REASON_TAG
from tests.flows.conftest import run_config

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
STARTUP_TIMEOUT_S = 240
#: Training that would run for minutes: the run is still training when it is killed.
ENDLESS_TRAINING = {
    "model__num_boost_round": 10000,
    "model__early_stopping_rounds": 10000,
    "model__learning_rate": 0.001,
}


def _wait_for(predicate: object, log: Path, what: str) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if callable(predicate) and predicate():
            return
        time.sleep(0.5)
    pytest.fail(f"{what} did not happen in {STARTUP_TIMEOUT_S}s:\n{log.read_text()[-3000:]}")


def test_a_run_killed_mid_training_is_closed_by_the_next_command(
    project: Path, adult_sample_path: Path, tmp_path: Path
) -> None:
    config = run_config(tmp_path, adult_sample_path, **ENDLESS_TRAINING)
    log = tmp_path / "run.log"
    settings = EvenflowSettings()
    with log.open("wb") as out:
        run = subprocess.Popen(
            [str(BIN / "evenflow"), "run", "--config", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=os.environ.copy(),
        )
    record_file = owners.owners_dir(settings) / f"{run.pid}.json"

    def training() -> bool:
        assert run.poll() is None, log.read_text()
        return "✔ shard" in log.read_text(errors="replace") and record_file.exists()

    _wait_for(training, log, "training")
    time.sleep(3)
    record = json.loads(record_file.read_text(encoding="utf-8"))
    [run_id] = record["mlflow_runs"]
    server_pid = record["prefect_server_pid"]
    client = MlflowClient(settings.tracking_uri)
    assert client.get_run(run_id).info.status == "RUNNING"
    assert psutil.pid_exists(server_pid)

    run.send_signal(signal.SIGKILL)
    run.wait()

    after = subprocess.run(
        [str(BIN / "evenflow"), "history", "adult"],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        timeout=120,
        check=False,
    )
    assert f"marked MLflow run {run_id} KILLED: its process {run.pid} is gone" in after.stderr
    assert f"stopped the local Prefect API (pid {server_pid})" in after.stderr
    killed = client.get_run(run_id)
    assert killed.info.status == "KILLED"
    assert "ended without closing this run" in killed.data.tags[END_REASON_TAG]
    assert not psutil.pid_exists(server_pid) or psutil.Process(server_pid).status() == "zombie"
    assert not record_file.exists()
