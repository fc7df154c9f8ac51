"""Three runs of the same data started at once in one project: all succeed, one model is trained.

Each run works in folders of its own (keyed by its flow run); the content-addressed stages are
shared but written under a lock, so a run that finds the same work finished meanwhile reuses it,
and the registration is idempotent: one version is registered, the other runs say so.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient

from evenflow.config.settings import EvenflowSettings
from tests.flows.conftest import run_config

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
RUNS = 3


def test_three_runs_of_the_same_data_at_once(
    project: Path, adult_sample_path: Path, tmp_path: Path
) -> None:
    # Long enough (hundreds of rounds) that the three trainings overlap; checkpoints often.
    config = run_config(
        tmp_path,
        adult_sample_path,
        model__num_boost_round=600,
        model__early_stopping_rounds=600,
        model__learning_rate=0.02,
        model__checkpoint_every=5,
    )
    logs = [tmp_path / f"run-{i}.log" for i in range(RUNS)]
    runs = []
    for log in logs:
        with log.open("wb") as out:
            runs.append(
                subprocess.Popen(
                    [str(BIN / "evenflow"), "run", "--config", str(config)],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=os.environ.copy(),
                )
            )
    codes = [run.wait(timeout=900) for run in runs]
    outputs = [log.read_text(errors="replace") for log in logs]
    assert codes == [0] * RUNS, "\n\n".join(outputs)
    assert not any("resumed at round" in out for out in outputs), "a run resumed another's work"

    client = MlflowClient(EvenflowSettings().tracking_uri)
    versions = client.search_model_versions("name = 'adult'")
    assert len(versions) == 1, [v.version for v in versions]
    registered = [out for out in outputs if "registered adult version 1 as 'candidate'" in out]
    said_so = [out for out in outputs if "nothing new: adult version 1 already holds" in out]
    assert (len(registered), len(said_so)) == (1, RUNS - 1), "\n\n".join(outputs)
    experiment = client.get_experiment_by_name("adult")
    assert experiment is not None
    runs_logged = client.search_runs([experiment.experiment_id], "attributes.status = 'FINISHED'")
    assert len(runs_logged) == RUNS
    assert len({r.data.metrics["valid_auc"] for r in runs_logged}) == 1
