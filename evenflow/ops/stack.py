"""The server stack as local processes, for a machine without Docker.

The same services as ``infra/docker-compose.yml``: an MLflow tracking server with basic
authentication (backend and auth stores on PostgreSQL, artifacts proxied by the server, so clients
need no direct artifact access), a Prefect server on PostgreSQL, a Dask scheduler and worker
processes. Each runs detached in its own process group, with a log file and a pid file under
``.evenflow/stack/``. ``up`` waits until each one is healthy and writes ``env``: the settings a
client needs (``source .evenflow/stack/env``); nothing else changes between the embedded default
and server mode.

Prefect-free: the Prefect server is only spawned as a subprocess (``python -m prefect server start``).
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from base64 import b64encode
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path

import psutil  # type: ignore[import-untyped]
from distributed import Client
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from evenflow.config.settings import EvenflowSettings
from evenflow.errors import ConfigError, PortBusy, PostgresUnreachable, ServiceUnhealthy, StackError

logger = logging.getLogger(__name__)

#: Service names, shared with ``infra/docker-compose.yml`` (PostgreSQL is external here).
SERVICES = ("postgres", "mlflow", "prefect", "dask-scheduler", "dask-worker")
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432"
ENV_FILE = "env"
CONFIG_FILE = "stack.json"
SECRETS_FILE = "secrets.json"
AUTH_CONFIG_FILE = "mlflow-auth.ini"
ARTIFACTS_DIR = "mlartifacts"
#: Experiments' artifacts go through the tracking server (``--serve-artifacts``).
PROXIED_ARTIFACT_ROOT = "mlflow-artifacts:/"
_LOG_TAIL_LINES = 25
_PASSWORD_KEYS = ("MLFLOW_TRACKING_PASSWORD",)


class StackConfig(BaseModel):
    """Where the stack keeps its state, which PostgreSQL backs it and which ports it listens on."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    state_dir: Path = Field(description="Logs, pid files, env and artifacts (.evenflow/stack).")
    postgres_url: str = Field(
        default=DEFAULT_POSTGRES_URL,
        description="PostgreSQL server (its database part, if any, is used for maintenance).",
    )
    database_prefix: str = Field(
        default="evenflow",
        pattern=r"^[a-z_][a-z0-9_]*$",
        max_length=40,
        description="Databases PREFIX_mlflow, PREFIX_mlflow_auth and PREFIX_prefect.",
    )
    host: str = Field(default="127.0.0.1", description="Interface the services bind to.")
    mlflow_port: int = Field(default=5000, ge=1, le=65535, description="MLflow tracking server.")
    prefect_port: int = Field(default=4200, ge=1, le=65535, description="Prefect server API.")
    dask_port: int = Field(default=8786, ge=1, le=65535, description="Dask scheduler.")
    dask_http_port: int = Field(
        default=8787, ge=1, le=65535, description="Dask scheduler's HTTP server (/health, metrics)."
    )
    worker_port: int = Field(
        default=8790, ge=1, le=65535, description="First Dask worker; worker i uses this + i - 1."
    )
    n_workers: int = Field(default=2, ge=1, le=64, description="Dask worker processes.")
    threads_per_worker: int = Field(default=1, ge=1, le=256, description="Threads per worker.")
    health_timeout_s: float = Field(
        default=180.0, gt=0, le=3600, description="How long to wait for every service."
    )

    @property
    def databases(self) -> dict[str, str]:
        """The databases the stack uses, by role."""
        return {
            role: f"{self.database_prefix}_{role}" for role in ("mlflow", "mlflow_auth", "prefect")
        }

    @property
    def client_host(self) -> str:
        """The address a client on this machine connects to."""
        return "127.0.0.1" if self.host in {"0.0.0.0", "", "::"} else self.host


@dataclass(frozen=True)
class ProcessSpec:
    """One process of the stack: its name, its compose service, its port and its health check."""

    name: str
    service: str
    port: int
    health_path: str | None  # HTTP path answering 200 when healthy; None: the port accepts


@dataclass(frozen=True)
class ServiceStatus:
    """What ``status`` sees of one service."""

    name: str
    pid: int | None
    port: int
    running: bool
    healthy: bool


def stack_dir(settings: EvenflowSettings) -> Path:
    """The stack's folder in a project: ``.evenflow/stack``."""
    return settings.state_dir / "stack"


def processes(config: StackConfig) -> list[ProcessSpec]:
    """The processes of the stack, in start order."""
    return [
        ProcessSpec("mlflow", "mlflow", config.mlflow_port, "/health"),
        ProcessSpec("prefect", "prefect", config.prefect_port, "/api/health"),
        ProcessSpec("dask-scheduler", "dask-scheduler", config.dask_port, None),
        *(
            ProcessSpec(f"dask-worker-{i}", "dask-worker", config.worker_port + i - 1, None)
            for i in range(1, config.n_workers + 1)
        ),
    ]


def ports(config: StackConfig) -> list[int]:
    """Every port the stack listens on."""
    return [*(spec.port for spec in processes(config)), config.dask_http_port]


# ---------------------------------------------------------------------------------------------
# up / down / status


def up(config: StackConfig) -> dict[str, str]:
    """Start every service, wait until each is healthy, write ``env`` and return its settings.

    Raises:
        StackError: the stack already runs in this folder.
        ConfigError: two services share a port, or the PostgreSQL URL is not one.
        PortBusy: a port is already in use (nothing is started).
        PostgresUnreachable: PostgreSQL cannot be reached or refused to create a database.
        ServiceUnhealthy: a service exited or stayed unhealthy (everything started is stopped).
    """
    state_dir = config.state_dir
    state_dir.mkdir(parents=True, exist_ok=True)
    running = [spec.name for spec in _known_processes(state_dir) if _running(state_dir, spec)]
    if running:
        raise StackError(
            f"the stack in {state_dir} is already running ({', '.join(running)}): "
            "see `evenflow stack status`, or stop it with `evenflow stack down`"
        )
    _postgres_url(config.postgres_url)  # a malformed URL is named before any port is probed
    specs = processes(config)
    _check_ports(config, specs)
    ensure_databases(config.postgres_url, config.databases.values())
    credentials = _credentials(state_dir)
    _write_private(state_dir / AUTH_CONFIG_FILE, auth_config_text(config))
    (state_dir / CONFIG_FILE).write_text(config.model_dump_json(indent=2) + "\n", encoding="utf-8")
    (state_dir / ENV_FILE).unlink(missing_ok=True)
    try:
        pids = {spec.name: _spawn(spec, config, credentials) for spec in specs}
        _wait_healthy(config, specs, pids)
        _check_credentials(config, credentials)
        _wait_for_workers(config)
    except BaseException:
        down(state_dir)
        raise
    env = client_env(config, credentials)
    _write_private(state_dir / ENV_FILE, render_env_file(env))
    logger.info("stack up in %s", state_dir)
    return env


def down(state_dir: Path, timeout_s: float = 20.0) -> list[tuple[str, int, str]]:
    """Stop every service (SIGTERM to its process group, SIGKILL after ``timeout_s``).

    Returns ``(name, pid, how)`` for each process that was running: ``stopped`` or ``killed``.
    Pid files are removed, stale ones too.
    """
    targets: dict[str, int] = {}
    for spec in _known_processes(state_dir):
        pid = _running(state_dir, spec)
        if pid is not None:
            _signal_group(pid, signal.SIGTERM)
            targets[spec.name] = pid
    deadline = time.monotonic() + timeout_s
    while any(_group_alive(pid) for pid in targets.values()) and time.monotonic() < deadline:
        time.sleep(0.2)
    stopped: list[tuple[str, int, str]] = []
    for name, pid in targets.items():
        how = "stopped"
        if _group_alive(pid):
            _signal_group(pid, signal.SIGKILL)
            how = "killed"
            kill_deadline = time.monotonic() + 5
            while _group_alive(pid) and time.monotonic() < kill_deadline:
                time.sleep(0.1)
        stopped.append((name, pid, how))
        logger.info("%s (pid %d) %s", name, pid, how)
    for pid_file in state_dir.glob("*.pid"):
        pid_file.unlink(missing_ok=True)
    (state_dir / ENV_FILE).unlink(missing_ok=True)
    return stopped


def status(state_dir: Path) -> list[ServiceStatus]:
    """Each service with its pid, port and health; PostgreSQL (external) first.

    Raises:
        StackError: no stack was ever started in ``state_dir``.
    """
    config = load_config(state_dir)
    postgres = _postgres_url(config.postgres_url)
    reachable = _port_accepts(postgres.host or "127.0.0.1", postgres.port or 5432)
    return [
        ServiceStatus("postgres", None, postgres.port or 5432, reachable, reachable),
        *_process_statuses(state_dir, processes(config)),
    ]


def load_config(state_dir: Path) -> StackConfig:
    """The configuration the stack in ``state_dir`` was started with."""
    path = state_dir / CONFIG_FILE
    if not path.exists():
        raise StackError(f"no stack in {state_dir}: start one with `evenflow stack up`")
    return StackConfig.model_validate_json(path.read_text(encoding="utf-8"))


# ---------------------------------------------------------------------------------------------
# What a client needs


def client_env(config: StackConfig, credentials: Mapping[str, str]) -> dict[str, str]:
    """The settings that switch a client from the embedded default to this stack."""
    host = config.client_host
    return {
        "EVENFLOW_TRACKING_URI": f"http://{host}:{config.mlflow_port}",
        "EVENFLOW_ARTIFACT_ROOT": PROXIED_ARTIFACT_ROOT,
        "MLFLOW_TRACKING_USERNAME": credentials["username"],
        "MLFLOW_TRACKING_PASSWORD": credentials["password"],
        "PREFECT_API_URL": f"http://{host}:{config.prefect_port}/api",
        "EVENFLOW_DASK_ADDRESS": f"tcp://{host}:{config.dask_port}",
    }


def render_env_file(env: Mapping[str, str]) -> str:
    """``env`` as a shell file to ``source``."""
    lines = [
        "# Written by `evenflow stack up`: the settings of the local server stack.",
        "# Use them with: source .evenflow/stack/env",
        *(f"export {key}={shlex.quote(value)}" for key, value in env.items()),
    ]
    return "\n".join(lines) + "\n"


def render_env(env: Mapping[str, str]) -> str:
    """``env`` for a terminal, passwords masked."""
    return "\n".join(
        f"{key}={'********' if key in _PASSWORD_KEYS else value}" for key, value in env.items()
    )


def render_status(statuses: Iterable[ServiceStatus]) -> str:
    """A table: service, pid, port, health."""
    rows = [("service", "pid", "port", "health")]
    for item in statuses:
        health = "healthy" if item.healthy else ("unhealthy" if item.running else "stopped")
        if item.name == "postgres":
            health = "reachable (external)" if item.healthy else "unreachable (external)"
        rows.append((item.name, str(item.pid or "-"), str(item.port), health))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True))
        + f"  {row[3]}"
        for row in rows
    )


def auth_config_text(config: StackConfig) -> str:
    """MLflow's basic-auth configuration (``MLFLOW_AUTH_CONFIG_PATH``).

    Anonymous requests are always answered 401; ``NO_PERMISSIONS`` also gives users other than
    the admin nothing until granted. The admin's name and password come from the environment
    (``MLFLOW_AUTH_ADMIN_USERNAME``, ``MLFLOW_AUTH_ADMIN_PASSWORD``), never from this file.
    """
    auth_db = database_url(config.postgres_url, config.databases["mlflow_auth"])
    return (
        "# Written by `evenflow stack up`; the admin comes from MLFLOW_AUTH_ADMIN_* variables.\n"
        "[mlflow]\n"
        "default_permission = NO_PERMISSIONS\n"
        f"database_uri = {auth_db.replace('%', '%%')}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
        "grant_default_workspace_access = false\n"
        "# One server worker: a checked password is cached, not re-hashed (PBKDF2) per request.\n"
        "auth_cache_ttl_seconds = 60\n"
    )


# ---------------------------------------------------------------------------------------------
# PostgreSQL


def database_url(postgres_url: str, database: str, driver: str = "postgresql") -> str:
    """The URL of ``database`` on the server of ``postgres_url``."""
    url = _postgres_url(postgres_url).set(drivername=driver, database=database)
    return url.render_as_string(hide_password=False)


def ensure_databases(postgres_url: str, names: Iterable[str]) -> list[str]:
    """Create the databases that are missing; return the names created."""
    created: list[str] = []
    with _maintenance(postgres_url) as conn:
        for name in names:
            found = conn.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}
            ).first()
            if found is None:
                _execute(conn, f"CREATE DATABASE {_quote(conn, name)}")
                created.append(name)
                logger.info("created database %s", name)
    return created


def drop_databases(postgres_url: str, names: Iterable[str]) -> None:
    """Drop the databases (closing their connections); missing ones are skipped."""
    with _maintenance(postgres_url) as conn:
        for name in names:
            _execute(conn, f"DROP DATABASE IF EXISTS {_quote(conn, name)} WITH (FORCE)")


def existing_databases(postgres_url: str, names: Iterable[str]) -> list[str]:
    """Which of ``names`` exist on the server."""
    wanted = list(names)
    with _maintenance(postgres_url) as conn:
        rows = conn.execute(
            text("SELECT datname FROM pg_database WHERE datname = ANY(:names)"), {"names": wanted}
        )
        return sorted(str(row[0]) for row in rows)


@contextmanager
def _maintenance(postgres_url: str) -> Iterator[Connection]:
    """An autocommit connection to the server's maintenance database."""
    url = _postgres_url(postgres_url)
    engine = create_engine(
        url.set(drivername="postgresql+psycopg2", database=url.database or "postgres"),
        isolation_level="AUTOCOMMIT",
        poolclass=NullPool,
        connect_args={"connect_timeout": 5},
    )
    try:
        try:
            conn = engine.connect()
        except SQLAlchemyError as exc:
            raise PostgresUnreachable(
                f"cannot reach PostgreSQL at {_shown(url)}: {_reason(exc)}. Start it, or name "
                "another server with --postgres-url postgresql://USER:PASSWORD@HOST:PORT"
            ) from exc
        with conn:
            yield conn
    finally:
        engine.dispose()


def _execute(conn: Connection, statement: str) -> None:
    try:
        conn.execute(text(statement))
    except SQLAlchemyError as exc:
        raise PostgresUnreachable(
            f"PostgreSQL at {_shown(conn.engine.url)} refused `{statement}`: {_reason(exc)}"
        ) from exc


def _quote(conn: Connection, name: str) -> str:
    return conn.dialect.identifier_preparer.quote(name)


def _shown(url: URL) -> str:
    return url.set(database=None).render_as_string(hide_password=True)


def _reason(exc: SQLAlchemyError) -> str:
    lines = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _postgres_url(postgres_url: str) -> URL:
    try:
        url = make_url(postgres_url)
    except ArgumentError as exc:
        raise ConfigError(f"not a PostgreSQL URL: {postgres_url!r}") from exc
    if url.get_backend_name() != "postgresql":
        raise ConfigError(
            f"not a PostgreSQL URL: {url.render_as_string(hide_password=True)} "
            "(expected postgresql://USER[:PASSWORD]@HOST:PORT)"
        )
    return url


# ---------------------------------------------------------------------------------------------
# Processes

#: Processes this interpreter started, so that their exit is reaped (no zombies while it runs).
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}
#: A client's settings, never passed on to a server process.
_CLIENT_ONLY = (
    "PREFECT_API_URL",
    "PREFECT_API_KEY",
    "PREFECT_API_DATABASE_CONNECTION_URL",
    "MLFLOW_TRACKING_URI",
    "MLFLOW_TRACKING_USERNAME",
    "MLFLOW_TRACKING_PASSWORD",
)
_COMMON_ENV = {
    "PYTHONUNBUFFERED": "1",
    "DO_NOT_TRACK": "1",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
}
_PORT_FLAGS = {
    "mlflow": "--mlflow-port",
    "prefect": "--prefect-port",
    "dask-scheduler": "--dask-port",
    "dask-worker": "--worker-port",
}
_MIN_PASSWORD_LENGTH = 12  # MLflow's rule for basic-auth passwords


def _command(
    spec: ProcessSpec, config: StackConfig, credentials: Mapping[str, str]
) -> tuple[list[str], dict[str, str]]:
    """The command line and the extra environment of one process."""
    python = [sys.executable, "-m"]
    port = str(spec.port)
    if spec.service == "mlflow":
        return [
            *(python + ["mlflow", "server", "--app-name", "basic-auth"]),
            *(
                "--serve-artifacts",
                "--artifacts-destination",
                str(config.state_dir / ARTIFACTS_DIR),
            ),
            *("--host", config.host, "--port", port, "--workers", "1"),
        ], {
            # In the environment, not on the command line: the URL may hold a password.
            "MLFLOW_BACKEND_STORE_URI": database_url(
                config.postgres_url, config.databases["mlflow"]
            ),
            "MLFLOW_AUTH_CONFIG_PATH": str(config.state_dir / AUTH_CONFIG_FILE),
            "MLFLOW_AUTH_ADMIN_USERNAME": credentials["username"],
            "MLFLOW_AUTH_ADMIN_PASSWORD": credentials["password"],
            "MLFLOW_FLASK_SERVER_SECRET_KEY": credentials["secret_key"],
            # evenflow uses no MLflow server jobs (GenAI features): seven fewer processes.
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        }
    if spec.service == "prefect":
        return [*python, "prefect", "server", "start", "--host", config.host, "--port", port], {
            "PREFECT_HOME": str(config.state_dir / "prefect-home"),
            "PREFECT_API_DATABASE_CONNECTION_URL": database_url(
                config.postgres_url, config.databases["prefect"], driver="postgresql+asyncpg"
            ),
        }
    if spec.service == "dask-scheduler":
        return [
            *(python + ["dask", "scheduler", "--host", config.host, "--port", port]),
            *("--dashboard-address", f"{config.host}:{config.dask_http_port}"),
        ], {}
    scheduler = f"tcp://{config.client_host}:{config.dask_port}"
    return [
        *(python + ["dask", "worker", scheduler, "--name", spec.name]),
        *("--host", config.client_host, "--worker-port", port, "--nworkers", "1"),
        *("--nthreads", str(config.threads_per_worker), "--no-dashboard"),
        *("--local-directory", str(config.state_dir / "dask-scratch")),
    ], {}


def _spawn(spec: ProcessSpec, config: StackConfig, credentials: Mapping[str, str]) -> int:
    """Start one process detached, in its own process group, logging to NAME.log; write NAME.pid."""
    command, extra_env = _command(spec, config, credentials)
    env = {key: value for key, value in os.environ.items() if key not in _CLIENT_ONLY}
    env.update(_COMMON_ENV)
    env.update(extra_env)
    with (config.state_dir / f"{spec.name}.log").open("wb") as log:
        log.write(f"$ {shlex.join(command)}\n".encode())
        log.flush()
        child = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=config.state_dir,
            start_new_session=True,
        )
    _CHILDREN[child.pid] = child
    (config.state_dir / f"{spec.name}.pid").write_text(f"{child.pid}\n", encoding="utf-8")
    logger.info("started %s (pid %d, port %d)", spec.name, child.pid, spec.port)
    return child.pid


def _wait_healthy(config: StackConfig, specs: list[ProcessSpec], pids: Mapping[str, int]) -> None:
    deadline = time.monotonic() + config.health_timeout_s
    pending = list(specs)
    while True:
        for spec in list(pending):
            if not _group_alive(pids[spec.name]):
                raise ServiceUnhealthy(
                    f"{spec.name} exited before it became healthy; "
                    f"{_log_tail(config.state_dir, spec.name)}"
                )
            if _healthy(config.client_host, spec):
                pending.remove(spec)
                logger.info("%s is healthy", spec.name)
        if not pending:
            return
        if time.monotonic() > deadline:
            tails = "\n".join(_log_tail(config.state_dir, spec.name) for spec in pending)
            raise ServiceUnhealthy(
                f"{', '.join(s.name for s in pending)} not healthy after "
                f"{config.health_timeout_s:.0f}s; {tails}"
            )
        time.sleep(0.5)


def _check_credentials(config: StackConfig, credentials: Mapping[str, str]) -> None:
    """MLflow must accept the admin's credentials that the env file will hand to clients."""
    url = (
        f"http://{config.client_host}:{config.mlflow_port}"
        "/api/2.0/mlflow/experiments/search?max_results=1"
    )
    code = _http_status(url, (credentials["username"], credentials["password"]))
    if code != HTTPStatus.OK:
        raise ServiceUnhealthy(
            f"MLflow answered {code} to the admin's credentials: the auth database "
            f"{config.databases['mlflow_auth']} already holds user '{credentials['username']}' "
            "with another password. Set MLFLOW_AUTH_ADMIN_PASSWORD to that password, or use "
            f"other databases; {_log_tail(config.state_dir, 'mlflow')}"
        )


def _wait_for_workers(config: StackConfig) -> None:
    address = f"tcp://{config.client_host}:{config.dask_port}"
    try:
        with Client(address, timeout=30, set_as_default=False) as client:
            client.wait_for_workers(config.n_workers, timeout=config.health_timeout_s)
    except (OSError, TimeoutError) as exc:
        tails = "\n".join(
            _log_tail(config.state_dir, spec.name)
            for spec in processes(config)
            if spec.service == "dask-worker"
        )
        raise ServiceUnhealthy(
            f"the Dask scheduler at {address} did not see {config.n_workers} workers ({exc}); "
            f"{tails}"
        ) from exc


def _check_ports(config: StackConfig, specs: list[ProcessSpec]) -> None:
    wanted = [(spec.port, spec.name, _PORT_FLAGS[spec.service]) for spec in specs]
    wanted.append((config.dask_http_port, "dask-scheduler http", "--dask-http-port"))
    owners: dict[int, str] = {}
    for port, name, _ in wanted:
        if port in owners:
            raise ConfigError(f"{name} and {owners[port]} both want port {port}")
        owners[port] = name
    busy = [item for item in wanted if port_in_use(config.host, item[0])]
    if busy:
        raise PortBusy(
            "\n".join(
                [
                    f"{len(busy)} port(s) the stack needs are already in use; nothing was started",
                    *(
                        f"port {port} ({name}) is busy: stop what listens there, or pass {flag}"
                        for port, name, flag in busy
                    ),
                ]
            )
        )


def port_in_use(host: str, port: int) -> bool:
    """Whether something listens on ``port`` of ``host`` (a bind attempt, as a server makes)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host or "0.0.0.0", port))
        except OSError:
            return True
    return False


def _port_accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def _http_status(url: str, auth: tuple[str, str] | None = None) -> int | None:
    request = urllib.request.Request(url)
    if auth is not None:
        token = b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=3) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (OSError, ValueError):
        return None


def _healthy(host: str, spec: ProcessSpec) -> bool:
    if spec.health_path is None:
        return _port_accepts(host, spec.port)
    return _http_status(f"http://{host}:{spec.port}{spec.health_path}") == HTTPStatus.OK


def _known_processes(state_dir: Path) -> list[ProcessSpec]:
    return processes(load_config(state_dir)) if (state_dir / CONFIG_FILE).exists() else []


def _process_statuses(state_dir: Path, specs: list[ProcessSpec]) -> list[ServiceStatus]:
    host = load_config(state_dir).client_host if (state_dir / CONFIG_FILE).exists() else ""
    statuses = []
    for spec in specs:
        pid = _running(state_dir, spec)
        healthy = pid is not None and _healthy(host, spec)
        statuses.append(
            ServiceStatus(
                spec.name, _read_pid(state_dir, spec.name), spec.port, pid is not None, healthy
            )
        )
    return statuses


def _running(state_dir: Path, spec: ProcessSpec) -> int | None:
    """The pid of the stack's process ``spec`` if it runs, from its pid file."""
    pid = _read_pid(state_dir, spec.name)
    return pid if pid is not None and _is_ours(pid, spec) else None


def _read_pid(state_dir: Path, name: str) -> int | None:
    try:
        return int((state_dir / f"{name}.pid").read_text(encoding="utf-8").strip())
    except (OSError, ValueError):
        return None


def _is_ours(pid: int, spec: ProcessSpec) -> bool:
    """Whether ``pid`` still is the stack's process (not a stale pid reused by another one)."""
    if pid in _CHILDREN:
        _CHILDREN[pid].poll()
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        cmdline = process.cmdline()
    except psutil.Error:
        return False
    module = spec.service if spec.service in {"mlflow", "prefect"} else "dask"
    return module in cmdline and str(spec.port) in cmdline


def _group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes of the process group ``pgid``."""
    if pgid in _CHILDREN:
        _CHILDREN[pgid].poll()
    members = []
    for process in psutil.process_iter():
        try:
            if os.getpgid(process.pid) == pgid and process.status() != psutil.STATUS_ZOMBIE:
                members.append(process.pid)
        except (OSError, psutil.Error):
            continue
    return members


def _group_alive(pgid: int) -> bool:
    return bool(_group_members(pgid))


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def _log_tail(state_dir: Path, name: str) -> str:
    path = state_dir / f"{name}.log"
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return f"no log at {path}"
    tail = "\n".join(f"    {line}" for line in lines[-_LOG_TAIL_LINES:])
    return f"last lines of {path}:\n{tail}"


def _credentials(state_dir: Path) -> dict[str, str]:
    """The MLflow admin and the server's secret key: from the environment, else kept, else new."""
    path = state_dir / SECRETS_FILE
    stored: dict[str, str] = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    values = {
        "username": os.environ.get("MLFLOW_AUTH_ADMIN_USERNAME")
        or stored.get("username")
        or "admin",
        "password": os.environ.get("MLFLOW_AUTH_ADMIN_PASSWORD")
        or stored.get("password")
        or secrets.token_urlsafe(24),
        "secret_key": os.environ.get("MLFLOW_FLASK_SERVER_SECRET_KEY")
        or stored.get("secret_key")
        or secrets.token_hex(32),
    }
    if len(values["password"]) < _MIN_PASSWORD_LENGTH:
        raise ConfigError(
            f"MLFLOW_AUTH_ADMIN_PASSWORD needs at least {_MIN_PASSWORD_LENGTH} characters "
            "(MLflow's rule for basic-auth passwords)"
        )
    if values != stored:
        _write_private(path, json.dumps(values, indent=2) + "\n")
    return values


def _write_private(path: Path, content: str) -> None:
    """Write a file only its owner can read (it holds a password)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(content)
