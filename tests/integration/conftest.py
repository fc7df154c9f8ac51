"""The real server stack for integration tests, started once per session by ``evenflow.ops.stack``.

MLflow (basic auth) and Prefect run on uniquely named throwaway databases of the local PostgreSQL
(dropped at the end), with a Dask scheduler and two worker processes, all on free ports. Teardown
stops every process and checks that no port is left busy and no database is left behind.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from evenflow.config.settings import EvenflowSettings
from evenflow.ops import stack
from evenflow.ops.stack import StackConfig
from tests.integration import prefect_processes

# Below Linux's ephemeral range (32768+), so an outgoing connection cannot take one meanwhile.
_PORT_RANGE = (20000, 32000)


@dataclass(frozen=True)
class RunningStack:
    """A started stack: its configuration, a client's settings and the project that holds it."""

    config: StackConfig
    env: dict[str, str]
    project_root: Path

    @property
    def ports(self) -> list[int]:
        return stack.ports(self.config)


def free_stack_config(state_dir: Path, **overrides: object) -> StackConfig:
    """A stack configuration on free ports, with its own throwaway database names."""
    ports = _free_ports(6)
    fields: dict[str, object] = {
        "state_dir": state_dir,
        "database_prefix": f"evenflow_it_{uuid.uuid4().hex[:10]}",
        "mlflow_port": ports[0],
        "prefect_port": ports[1],
        "dask_port": ports[2],
        "dask_http_port": ports[3],
        "worker_port": ports[4],  # ports[5] == ports[4] + 1: the second worker
        "n_workers": 2,
        "health_timeout_s": 150,
        **overrides,
    }
    return StackConfig.model_validate(fields)


def _free_ports(count: int) -> list[int]:
    """``count`` consecutive free ports (the last two are the workers' block)."""
    for _ in range(200):
        start = random.randint(*_PORT_RANGE)
        ports = list(range(start, start + count))
        if not any(stack.port_in_use("127.0.0.1", port) for port in ports):
            return ports
    raise RuntimeError(f"no {count} consecutive free ports in {_PORT_RANGE}")


@pytest.fixture(scope="session")
def server_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    """MLflow + Prefect on PostgreSQL, a Dask scheduler and 2 workers, as local processes."""
    root = tmp_path_factory.mktemp("stack-project")
    config = free_stack_config(stack.stack_dir(EvenflowSettings(project_root=root)))
    ports = stack.ports(config)
    try:
        env = stack.up(config)
        yield RunningStack(config=config, env=env, project_root=root)
    finally:
        stack.down(config.state_dir)
        stack.drop_databases(config.postgres_url, config.databases.values())
        left = stack.existing_databases(config.postgres_url, config.databases.values())
        busy = [port for port in ports if stack.port_in_use(config.host, port)]
        assert not busy, f"ports still in use after `stack down`: {busy}"
        assert not left, f"test databases left behind: {left}"


@pytest.fixture
def prefect_api(tmp_path: Path) -> Iterator[str]:
    """A real `prefect server start` on a free port, with its own home and SQLite database.

    Its URL (``http://127.0.0.1:PORT/api``); the server and its port are gone after the test.
    """
    port = prefect_processes.free_port()
    home = tmp_path / "prefect-home"
    home.mkdir()
    env = prefect_processes.environment(
        tmp_path,
        PREFECT_API_DATABASE_CONNECTION_URL=f"sqlite+aiosqlite:///{home / 'prefect.db'}",
        PREFECT_UI_ENABLED="false",
    )
    command = [str(prefect_processes.BIN / "prefect"), "server", "start", "--host", "127.0.0.1"]
    log = tmp_path / "server.log"
    server = prefect_processes.start([*command, "--port", str(port)], env, log, tmp_path)
    url = f"http://127.0.0.1:{port}/api"
    try:
        prefect_processes.wait_healthy(server, url)
        yield url
    finally:
        prefect_processes.stop(server)
        assert server.process.poll() is not None
        assert not prefect_processes.port_in_use(port), f"port {port} still in use after stop"
