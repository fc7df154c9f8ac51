"""The server stack's configuration and its refusals, without starting a server.

The stack itself runs in tests/integration; here: the compose file matches the local stack, the
auth configuration reads back through MLflow's own parser, and bad input stops before anything
starts.
"""

from __future__ import annotations

import configparser
import random
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from evenflow.cli.main import app
from evenflow.config.settings import EvenflowSettings
from evenflow.errors import ConfigError, PortBusy, PostgresUnreachable, StackError
from evenflow.ops import stack
from evenflow.ops.stack import StackConfig
from evenflow.registry.store import artifact_location
from evenflow.reports.stack import render_env
from tests.conftest import REPO_ROOT

INFRA = REPO_ROOT / "infra"


@pytest.fixture
def listening() -> Iterator[int]:
    """A port something listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


@pytest.fixture
def closed_port() -> int:
    """A port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _free_block(count: int) -> int:
    """The first of ``count`` consecutive free ports, far from the defaults a developer runs."""
    for base in range(20000 + random.randrange(0, 10000, count), 40000, count):
        if not any(stack.port_in_use("127.0.0.1", port) for port in range(base, base + count)):
            return base
    raise RuntimeError(f"no {count} consecutive free ports between 20000 and 40000")


def _config(tmp_path: Path, **overrides: object) -> StackConfig:
    base = _free_block(5)
    fields: dict[str, object] = {
        "state_dir": tmp_path / "stack",
        "mlflow_port": base,
        "prefect_port": base + 1,
        "dask_port": base + 2,
        "dask_http_port": base + 3,
        "worker_port": base + 4,
        **overrides,
    }
    return StackConfig.model_validate(fields)


def test_compose_file_runs_the_services_of_the_local_stack(tmp_path: Path) -> None:
    compose = yaml.safe_load((INFRA / "docker-compose.yml").read_text())
    services = compose["services"]
    config = StackConfig(state_dir=tmp_path)

    local = {"postgres"} | {spec.service for spec in stack.processes(config)}
    assert set(services) == local == set(stack.SERVICES)
    assert services["dask-worker"]["deploy"]["replicas"] == config.n_workers
    assert services["postgres"]["image"] == "postgres:15"
    mlflow_command = " ".join(services["mlflow"]["command"])
    assert "--app-name basic-auth" in mlflow_command
    assert "--serve-artifacts --artifacts-destination" in mlflow_command
    assert services["mlflow"]["environment"]["MLFLOW_AUTH_CONFIG_PATH"] == "/tmp/mlflow-auth.ini"
    prefect_db = services["prefect"]["environment"]["PREFECT_API_DATABASE_CONNECTION_URL"]
    assert prefect_db.startswith("postgresql+asyncpg://")
    assert "dask-scheduler:8786" in services["dask-worker"]["command"][2]
    init_sql = (INFRA / "postgres-init.sql").read_text()
    urls = (INFRA / "docker-compose.yml").read_text() + (INFRA / "mlflow-auth.ini").read_text()
    for database in config.databases.values():
        assert f"CREATE DATABASE {database};" in init_sql
        assert f"@postgres:5432/{database}\n" in urls


def test_compose_images_use_the_locked_versions() -> None:
    dockerfile = (INFRA / "Dockerfile").read_text()
    makefile = (REPO_ROOT / "Makefile").read_text()
    assert "uv sync --frozen --no-dev" in dockerfile
    uv_version = makefile.split('"uv==')[1].split('"')[0]
    assert f"ghcr.io/astral-sh/uv:{uv_version} " in dockerfile
    compose = yaml.safe_load((INFRA / "docker-compose.yml").read_text())
    project = (REPO_ROOT / "pyproject.toml").read_text().split('version = "')[1].split('"')[0]
    for name in ("mlflow", "prefect", "dask-scheduler", "dask-worker"):
        assert compose["services"][name]["image"] == f"evenflow:{project}"


@pytest.mark.filterwarnings("ignore:starlette.middleware.wsgi is deprecated")
def test_auth_configs_read_back_through_mlflow(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow.server.auth.config import read_auth_config

    monkeypatch.delenv("MLFLOW_AUTH_ADMIN_USERNAME", raising=False)
    monkeypatch.delenv("MLFLOW_AUTH_ADMIN_PASSWORD", raising=False)
    config = _config(tmp_path, postgres_url="postgresql://ops:p%40ss@db.internal:6543")
    generated = tmp_path / "auth.ini"
    generated.write_text(stack.auth_config_text(config))
    monkeypatch.setenv("MLFLOW_AUTH_CONFIG_PATH", str(generated))

    auth = read_auth_config()

    assert auth.default_permission == "NO_PERMISSIONS"
    assert (
        auth.database_uri
        == f"postgresql://ops:p%40ss@db.internal:6543/{config.database_prefix}_mlflow_auth"
    )
    assert (auth.admin_username, auth.admin_password) == (None, None)  # from the environment
    assert auth.auth_cache_ttl_seconds == 60
    shipped = configparser.ConfigParser(interpolation=None)
    shipped.read(INFRA / "mlflow-auth.ini")
    ours = configparser.ConfigParser(interpolation=None)
    ours.read(generated)
    assert set(shipped["mlflow"]) == set(ours["mlflow"])
    assert shipped["mlflow"]["default_permission"] == "NO_PERMISSIONS"
    assert "admin_password" not in shipped["mlflow"]


def test_up_refuses_a_busy_port_before_anything_else(
    tmp_path: Path, listening: int, closed_port: int
) -> None:
    # PostgreSQL is unreachable too: the busy port must be reported first, and nothing started.
    config = _config(
        tmp_path, prefect_port=listening, postgres_url=f"postgresql://x@127.0.0.1:{closed_port}"
    )

    with pytest.raises(PortBusy) as busy:
        stack.up(config)

    assert f"port {listening} (prefect) is busy" in str(busy.value)
    assert "--prefect-port" in str(busy.value)
    assert not list(config.state_dir.glob("*.pid"))


def test_up_names_an_unreachable_postgres_and_hides_its_password(
    tmp_path: Path, closed_port: int
) -> None:
    config = _config(tmp_path, postgres_url=f"postgresql://ops:s3cret@127.0.0.1:{closed_port}")

    with pytest.raises(PostgresUnreachable) as failure:
        stack.up(config)

    message = str(failure.value)
    assert f"127.0.0.1:{closed_port}" in message and "--postgres-url" in message
    assert "s3cret" not in message
    assert not list(config.state_dir.glob("*.pid"))


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"postgres_url": "mysql://root@127.0.0.1/x"}, "not a PostgreSQL URL"),
        ({"postgres_url": "not a url"}, "not a PostgreSQL URL"),
        ({"prefect_port": 47000, "mlflow_port": 47000}, "both want port 47000"),
    ],
)
def test_bad_configuration_is_refused(
    tmp_path: Path, overrides: dict[str, object], match: str
) -> None:
    with pytest.raises(ConfigError, match=match):
        stack.up(_config(tmp_path, **overrides))


def test_status_and_down_without_a_stack(tmp_path: Path) -> None:
    with pytest.raises(StackError, match="no stack in"):
        stack.status(tmp_path)
    assert stack.down(tmp_path) == []

    runner = CliRunner()
    result = runner.invoke(app, ["stack", "status"], env={"EVENFLOW_PROJECT_ROOT": str(tmp_path)})
    assert result.exit_code == 2
    assert "evenflow stack up" in result.output
    result = runner.invoke(app, ["stack", "down"], env={"EVENFLOW_PROJECT_ROOT": str(tmp_path)})
    assert (result.exit_code, result.output.strip()) == (0, "nothing was running")


def test_env_file_can_be_sourced_and_the_password_is_not_printed(tmp_path: Path) -> None:
    config = _config(tmp_path, mlflow_port=5001)
    credentials = {"username": "admin", "password": "it's a $ecret pass", "secret_key": "k"}
    env = stack.client_env(config, credentials)
    env_file = tmp_path / "env"
    env_file.write_text(stack.render_env_file(env))

    sourced = subprocess.run(
        ["bash", "-c", f"source {env_file} && env"], capture_output=True, text=True, check=True
    ).stdout.splitlines()

    assert "MLFLOW_TRACKING_PASSWORD=it's a $ecret pass" in sourced
    assert "EVENFLOW_TRACKING_URI=http://127.0.0.1:5001" in sourced
    assert f"EVENFLOW_DASK_ADDRESS=tcp://127.0.0.1:{config.dask_port}" in sourced
    shown = render_env(env)
    assert "$ecret" not in shown and "MLFLOW_TRACKING_PASSWORD=********" in shown
    assert "PREFECT_API_AUTH_STRING=********" in shown


def test_server_mode_leaves_artifact_locations_to_the_server(tmp_path: Path) -> None:
    embedded = EvenflowSettings(project_root=tmp_path)
    server = EvenflowSettings(project_root=tmp_path, tracking_uri="http://127.0.0.1:5000")
    proxied = EvenflowSettings(
        project_root=tmp_path,
        tracking_uri="http://127.0.0.1:5000",
        artifact_root=stack.PROXIED_ARTIFACT_ROOT,
    )

    assert embedded.artifact_root == (tmp_path / "mlruns" / "artifacts").resolve().as_uri()
    assert artifact_location(embedded.artifact_root, "adult") == f"{embedded.artifact_root}/adult"
    assert server.artifact_root == ""
    assert artifact_location(server.artifact_root, "adult") is None
    assert artifact_location(proxied.artifact_root, "adult") == "mlflow-artifacts:/adult"
