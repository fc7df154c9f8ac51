"""Schedules as code against a real Prefect server: `evenflow serve` registers and runs deployments.

A Prefect server (its own PREFECT_HOME and SQLite database under tmp_path) and `evenflow serve`
run as subprocesses. The weekly training deployment is checked for its cron schedule and run on
demand on the 3,000-row sample; its model is reviewed and promoted to champion through the ledger
and the on-demand scoring deployment scores a batch with it. Every process started here is stopped (terminate, wait, kill) and the
server's port must be free again.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import pandas as pd
import pytest
from mlflow import MlflowClient
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import FlowRun
from prefect.client.schemas.responses import DeploymentResponse
from prefect.deployments import run_deployment
from prefect.exceptions import ObjectNotFound
from prefect.settings import PREFECT_API_URL, temporary_settings

from evenflow.config.settings import EvenflowSettings
from evenflow.usecases import champion
from tests.conftest import REPO_ROOT, sample_params
from tests.integration.prefect_processes import (
    BIN,
    STARTUP_TIMEOUT_S,
    Started,
    evenflow_environment,
    start,
    stop,
)

pytestmark = pytest.mark.slow

RUN_TIMEOUT_S = 300


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    return root


@pytest.fixture
def served(prefect_api: str, project: Path, tmp_path: Path) -> Iterator[Started]:
    """`evenflow serve` for the training and scoring deployments, pointed at the server."""
    # PREFECT_RUNNER_POLL_FREQUENCY: pick a run up in 2 s, not 10.
    env = evenflow_environment(tmp_path, prefect_api, project, PREFECT_RUNNER_POLL_FREQUENCY="2")
    command = [str(BIN / "evenflow"), "serve", "--only", "train-weekly,score-on-demand"]
    serve = start(command, env, tmp_path / "serve.log", REPO_ROOT)
    try:
        yield serve
    finally:
        stop(serve)
        assert serve.process.poll() is not None


async def _registered(name: str, serve: Started) -> DeploymentResponse:
    """Wait until `evenflow serve` has registered the deployment; fail with its log if it dies."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    async with get_client() as client:
        while time.monotonic() < deadline:
            if serve.process.poll() is not None:
                pytest.fail(f"evenflow serve exited:\n{serve.tail()}")
            try:
                return await client.read_deployment_by_name(name)
            except ObjectNotFound:
                await anyio.sleep(1)
    pytest.fail(f"{name} was not registered within {STARTUP_TIMEOUT_S}s:\n{serve.tail()}")


def _run(name: str, parameters: dict[str, object], serve: Started) -> None:
    flow_run = run_deployment(
        name, parameters=parameters, timeout=RUN_TIMEOUT_S, poll_interval=2, as_subflow=False
    )
    assert isinstance(flow_run, FlowRun) and flow_run.state is not None
    assert flow_run.state.is_completed(), f"{name}: {flow_run.state}\n{serve.tail(80)}"


def test_served_deployments_keep_their_schedule_and_run_on_demand(
    prefect_api: str, served: Started, project: Path, adult_sample_path: Path, tmp_path: Path
) -> None:
    with temporary_settings({PREFECT_API_URL: prefect_api}):
        training = anyio.run(_registered, "train-and-register/train-weekly", served)
        scoring = anyio.run(_registered, "score/score-on-demand", served)
        [schedule] = training.schedules
        assert schedule.schedule.cron == "0 3 * * 1" and schedule.active  # type: ignore[union-attr]
        assert scoring.schedules == []

        params = sample_params(adult_sample_path, cluster__n_workers=1).model_dump(mode="json")
        _run("train-and-register/train-weekly", {"params": params}, served)

        settings = EvenflowSettings(project_root=project)
        client = MlflowClient(
            tracking_uri=settings.tracking_uri, registry_uri=settings.tracking_uri
        )
        candidate = client.get_model_version_by_alias("adult", "candidate")
        # Through the ledger, the one path to champion that scoring accepts.
        version = str(candidate.version)
        champion.review(settings, "adult", version)
        reason = "the 3,000-row sample may miss a gate; this test checks scoring, not the model"
        champion.promote(settings, "adult", version, "rita", "schedules", override=reason)
        batch = tmp_path / "batch.csv"
        pd.read_csv(adult_sample_path).drop(columns=["income"]).to_csv(batch, index=False)
        out = tmp_path / "scores" / "adult.parquet"
        request = {"data": str(batch), "out": str(out), "name": "adult"}
        _run("score/score-on-demand", {"params": request}, served)

    scored = pd.read_parquet(out)
    assert len(scored) == 3000
    assert (scored["model_version"] == str(candidate.version)).all()
    assert scored["score"].between(0, 1).all()
