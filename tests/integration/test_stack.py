"""The training flow against the real server stack: changing settings is all server mode takes.

MLflow with basic authentication and Prefect, both on PostgreSQL, a Dask scheduler with two worker
processes: the run, the registered version and the flow run are checked through the servers' APIs
and directly in their PostgreSQL tables.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from distributed import Client
from mlflow import MlflowClient
from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool
from typer.testing import CliRunner

from evenflow.cli.main import app
from evenflow.errors import PortBusy, ServiceUnhealthy, StackError
from evenflow.ops import stack
from flows.train_and_register import train_and_register
from tests.conftest import assert_lineage_tags, sample_params
from tests.integration.conftest import RunningStack, free_stack_config

pytestmark = pytest.mark.slow


def _query(
    running: RunningStack, role: str, sql: str, **params: object
) -> list[tuple[object, ...]]:
    """Rows of ``sql`` run directly on one of the stack's PostgreSQL databases."""
    driver = "postgresql+psycopg2"
    url = stack.database_url(running.config.postgres_url, running.config.databases[role], driver)
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return [tuple(row) for row in conn.execute(text(sql), params)]
    finally:
        engine.dispose()


def test_flow_runs_against_the_server_stack(
    server_stack: RunningStack,
    project: Path,
    adult_sample_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = server_stack.env
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    # One local worker if the external cluster were ignored; the stack has two.
    params = sample_params(adult_sample_path, cluster__n_workers=1)

    prefect_api = {
        PREFECT_API_URL: env["PREFECT_API_URL"],
        PREFECT_API_AUTH_STRING: env["PREFECT_API_AUTH_STRING"],
    }
    with temporary_settings(updates=prefect_api):
        version = train_and_register(params)

    # Through the authenticated MLflow server (artifacts proxied by it)
    client = MlflowClient(tracking_uri=env["EVENFLOW_TRACKING_URI"])
    model_version = client.get_model_version_by_alias("adult", "candidate")
    assert str(model_version.version) == version.version
    run = client.get_run(version.run_id)
    assert run.info.status == "FINISHED"
    assert run.info.artifact_uri == f"mlflow-artifacts:/adult/{version.run_id}/artifacts"
    manifest_file = client.download_artifacts(version.run_id, "data/manifest.json", str(project))
    data_md5 = json.loads(Path(manifest_file).read_text())["data_md5"]
    assert_lineage_tags(params, data_md5, run.data.tags, model_version.tags)
    assert 0.8 < run.data.metrics["test_roc_auc"] <= 1.0
    stored = server_stack.config.state_dir / stack.ARTIFACTS_DIR / "adult" / version.run_id
    assert (stored / "artifacts" / "data" / "manifest.json").is_file()
    assert not (project / "mlruns").exists(), "the embedded SQLite store was used"

    # Trained on the stack's two Dask workers, not on a local cluster
    assert run.data.tags["evenflow.n_workers"] == "2"
    with Client(env["EVENFLOW_DASK_ADDRESS"], set_as_default=False) as dask:
        prefixes = dask.run_on_scheduler(lambda dask_scheduler: list(dask_scheduler.task_prefixes))
    assert prefixes, "the stack's Dask scheduler ran no task"

    # Directly in MLflow's PostgreSQL tables
    [(status, artifact_uri)] = _query(
        server_stack,
        "mlflow",
        "SELECT status, artifact_uri FROM runs WHERE run_uuid = :run_id",
        run_id=version.run_id,
    )
    assert (status, artifact_uri) == ("FINISHED", run.info.artifact_uri)
    rows = _query(
        server_stack,
        "mlflow",
        "SELECT v.version, v.run_id, t.value FROM model_versions v JOIN model_version_tags t"
        " ON t.name = v.name AND t.version = v.version"
        " WHERE v.name = 'adult' AND t.key = 'evenflow.data_md5'",
    )
    assert rows == [(int(version.version), version.run_id, data_md5)]
    aliases = _query(server_stack, "mlflow", "SELECT alias, version FROM registered_model_aliases")
    assert aliases == [("candidate", int(version.version))]

    # The flow run lives in the Prefect server, on PostgreSQL
    flow_run_id = run.data.tags["evenflow.flow_run_id"]
    user, password = env["PREFECT_API_AUTH_STRING"].split(":", 1)
    admin = (user, password)
    response = httpx.get(
        f"{env['PREFECT_API_URL']}/flow_runs/{flow_run_id}", auth=admin, timeout=10
    )
    assert response.status_code == 200, response.text
    assert response.json()["state_type"] == "COMPLETED"
    flow = httpx.get(
        f"{env['PREFECT_API_URL']}/flows/{response.json()['flow_id']}", auth=admin, timeout=10
    )
    assert flow.json()["name"] == "train-and-register"
    [(state_type,)] = _query(
        server_stack,
        "prefect",
        "SELECT state_type::text FROM flow_run WHERE id = CAST(:id AS uuid)",
        id=flow_run_id,
    )
    assert state_type == "COMPLETED"


def test_anonymous_requests_are_refused(server_stack: RunningStack) -> None:
    base = server_stack.env["EVENFLOW_TRACKING_URI"]
    admin = (
        server_stack.env["MLFLOW_TRACKING_USERNAME"],
        server_stack.env["MLFLOW_TRACKING_PASSWORD"],
    )
    create = f"{base}/api/2.0/mlflow/experiments/create"
    search = f"{base}/api/2.0/mlflow/experiments/search?max_results=5"

    with httpx.Client(timeout=10) as http:
        assert http.post(create, json={"name": "anonymous"}).status_code == 401
        assert (
            http.post(
                create, json={"name": "guess"}, auth=("admin", "not-the-password")
            ).status_code
            == 401
        )
        assert http.get(search).status_code == 401
        assert http.get(f"{base}/api/2.0/mlflow-artifacts/artifacts").status_code == 401
        assert http.get(f"{base}/health").status_code == 200
        assert http.get(search, auth=admin).status_code == 200

    names = _query(server_stack, "mlflow", "SELECT name FROM experiments")
    assert ("anonymous",) not in names and ("guess",) not in names
    assert _query(server_stack, "mlflow_auth", "SELECT username, is_admin FROM users") == [
        (admin[0], True)
    ]


def test_stack_status_reports_every_service_healthy(server_stack: RunningStack) -> None:
    result = CliRunner().invoke(
        app, ["stack", "status"], env={"EVENFLOW_PROJECT_ROOT": str(server_stack.project_root)}
    )

    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line.split() for line in result.output.splitlines()[1:]}
    expected = {"postgres", "mlflow", "prefect", "dask-scheduler", "dask-worker-1", "dask-worker-2"}
    assert set(rows) == expected
    for spec in stack.processes(server_stack.config):
        name, pid, port, health = rows[spec.name]
        pid_file = server_stack.config.state_dir / f"{name}.pid"
        assert pid == pid_file.read_text().strip()
        assert (int(port), health) == (spec.port, "healthy")
    env_file = (server_stack.config.state_dir / stack.ENV_FILE).read_text()
    assert f"export EVENFLOW_TRACKING_URI={server_stack.env['EVENFLOW_TRACKING_URI']}" in env_file


def test_up_refuses_a_running_stack_and_busy_ports(
    server_stack: RunningStack, tmp_path: Path
) -> None:
    with pytest.raises(StackError, match="already running"):
        stack.up(server_stack.config)

    other = server_stack.config.model_copy(update={"state_dir": tmp_path / "stack"})
    with pytest.raises(PortBusy) as busy:
        stack.up(other)

    message = str(busy.value)
    assert f"port {server_stack.config.mlflow_port} (mlflow) is busy" in message
    assert "--mlflow-port" in message
    assert not list((tmp_path / "stack").glob("*.pid")), "started something despite busy ports"


def test_a_service_that_does_not_become_healthy_is_named_with_its_log(tmp_path: Path) -> None:
    config = free_stack_config(tmp_path / "stack", n_workers=1, health_timeout_s=1)
    try:
        with pytest.raises(ServiceUnhealthy) as failure:
            stack.up(config)
    finally:
        stack.drop_databases(config.postgres_url, config.databases.values())

    message = str(failure.value)
    assert "not healthy after 1s" in message and "mlflow" in message
    assert f"last lines of {config.state_dir / 'mlflow.log'}" in message
    assert not list(config.state_dir.glob("*.pid"))
    assert not [port for port in stack.ports(config) if stack.port_in_use(config.host, port)]
