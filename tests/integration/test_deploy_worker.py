"""Schedules the Prefect way: `prefect deploy` onto a process work pool, and a worker runs one.

Against a real Prefect server (the ``prefect_api`` fixture), as the docs tell an operator: create
the pool with ``prefect work-pool create``, run ``prefect deploy --prefect-file infra/prefect.yaml
--name train-weekly`` from the project root (one deployment: ``--all`` loads every flow, which
the unit tests check without a server), start ``prefect worker start --pool … --run-once`` from
another folder. The project root is a scratch checkout (a copy of ``infra/prefect.yaml`` beside links to
the code), so whatever deploy writes lands there, not in the repository; it must write nothing.
The weekly training deployment is run on the 3,000-row sample and must complete and register a
candidate.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from uuid import UUID

import anyio
import pytest
from mlflow import MlflowClient
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import FlowRun
from prefect.client.schemas.responses import DeploymentResponse
from prefect.deployments import run_deployment
from prefect.settings import PREFECT_API_URL, temporary_settings
from prefect.utilities.schema_tools import validate

from evenflow.config.run import RunParams
from evenflow.config.settings import EvenflowSettings
from evenflow.ops.deployments import DEFAULT_FILE, read_project
from tests.conftest import REPO_ROOT, sample_params
from tests.integration.prefect_processes import (
    BIN,
    evenflow_environment,
    run_to_end,
    start,
    stop,
)

pytestmark = pytest.mark.slow

COMMAND_TIMEOUT_S = 120
RUN_TIMEOUT_S = 300
TRAINING = "train-and-register/train-weekly"
PULL_STEP = "prefect.deployments.steps.set_working_directory"


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A project root to deploy from: a copy of the deployments file beside links to the code."""
    root = tmp_path / "checkout"
    (root / "infra").mkdir(parents=True)
    shutil.copy2(DEFAULT_FILE, root / "infra" / "prefect.yaml")
    for package in ("evenflow", "flows", "tasks"):
        (root / package).symlink_to(REPO_ROOT / package, target_is_directory=True)
    return root


def _tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` with its bytes, not following the links to the code."""
    files = {}
    for folder, _, names in os.walk(root, followlinks=False):
        for name in names:
            path = Path(folder, name)
            files[str(path.relative_to(root))] = b"" if path.is_symlink() else path.read_bytes()
    return files


def _prefect(args: list[str], env: dict[str, str], cwd: Path) -> str:
    """Run the prefect CLI; its output, once it has exited 0."""
    return run_to_end([str(BIN / "prefect"), *args], env, cwd, COMMAND_TIMEOUT_S)


async def _deployment(name: str) -> DeploymentResponse:
    async with get_client() as client:
        return await client.read_deployment_by_name(name)


async def _flow_run(flow_run_id: UUID) -> FlowRun:
    async with get_client() as client:
        return await client.read_flow_run(flow_run_id)


def test_prefect_deploy_puts_the_deployments_on_a_process_pool_and_a_worker_runs_one(
    prefect_api: str, checkout: Path, adult_sample_path: Path, tmp_path: Path
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    pool = read_project(DEFAULT_FILE).deployments[0].work_pool
    assert pool is not None
    env = evenflow_environment(tmp_path, prefect_api, project)
    _prefect(["work-pool", "create", pool.name, "--type", "process"], env, checkout)
    before = _tree(checkout)

    deploy = ["deploy", "--prefect-file", "infra/prefect.yaml", "--name", "train-weekly"]
    output = _prefect(deploy, env, checkout)

    assert not re.search(r"error|warn|traceback|skipping", output, re.IGNORECASE), output
    assert f"Deployment '{TRAINING}' successfully created" in output, output
    assert _tree(checkout) == before, "prefect deploy wrote into the project"
    with temporary_settings({PREFECT_API_URL: prefect_api}):
        deployment = anyio.run(_deployment, TRAINING)
        assert deployment.work_pool_name == pool.name
        assert deployment.work_queue_name == pool.work_queue_name
        assert deployment.pull_steps == [{PULL_STEP: {"directory": str(checkout)}}]
        assert [s.schedule.cron for s in deployment.schedules] == ["0 3 * * 1"]  # type: ignore[union-attr]
        # The parameters as registered: valid for the server (the flow's schema) and for evenflow.
        assert deployment.parameter_openapi_schema is not None
        validate(deployment.parameters, deployment.parameter_openapi_schema, raise_on_error=True)
        assert RunParams.model_validate(deployment.parameters["params"]).dataset.name == "adult"

        params = sample_params(adult_sample_path, cluster__n_workers=1).model_dump(mode="json")
        scheduled = run_deployment(TRAINING, parameters={"params": params}, timeout=0)
        assert isinstance(scheduled, FlowRun)
        # From another folder: the deployment's pull step moves the run into the checkout.
        command = [str(BIN / "prefect"), "worker", "start", "--pool", pool.name, "--run-once"]
        worker = start(command, env, tmp_path / "worker.log", tmp_path)
        try:
            worker.process.wait(timeout=RUN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the worker did not finish in {RUN_TIMEOUT_S}s:\n{worker.tail(80)}")
        finally:
            stop(worker)
        finished = anyio.run(_flow_run, scheduled.id)

    assert finished.state is not None and finished.state.is_completed(), (
        f"{finished.state}\n{worker.tail(80)}"
    )
    assert worker.process.returncode == 0, worker.tail(80)
    uri = EvenflowSettings(project_root=project).tracking_uri
    candidate = MlflowClient(uri, uri).get_model_version_by_alias("adult", "candidate")
    assert candidate.run_id, "the run registered no candidate"
    assert _tree(checkout) == before, "the run wrote into the project's code folder"
