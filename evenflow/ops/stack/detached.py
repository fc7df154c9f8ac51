"""The stack's detached processes: their command lines, starting them, finding and stopping them.

Each process runs in its own process group with a log file and a pid file under the stack's
folder; a pid file is trusted only while its process still is the stack's (a reused pid is not).
"""

from __future__ import annotations

import logging
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from contextlib import suppress
from pathlib import Path

import psutil  # type: ignore[import-untyped]

from evenflow.ops.stack.config import (
    ARTIFACTS_DIR,
    AUTH_CONFIG_FILE,
    ProcessSpec,
    StackConfig,
)
from evenflow.ops.stack.credentials import prefect_auth_string
from evenflow.ops.stack.postgres import database_url

logger = logging.getLogger(__name__)

_LOG_TAIL_LINES = 25
#: Processes this interpreter started, so that their exit is reaped (no zombies while it runs).
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}
#: A client's settings, never passed on to a server process.
_CLIENT_ONLY = (
    "PREFECT_API_URL",
    "PREFECT_API_KEY",
    "PREFECT_API_AUTH_STRING",
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
_PYTHON = (sys.executable, "-m")

Command = tuple[list[str], dict[str, str]]


def command(spec: ProcessSpec, config: StackConfig, credentials: Mapping[str, str]) -> Command:
    """The command line and the extra environment of one process."""
    if spec.service == "mlflow":
        return _mlflow_command(spec, config, credentials)
    if spec.service == "prefect":
        return _prefect_command(spec, config, credentials)
    if spec.service == "dask-scheduler":
        return [
            *(_PYTHON + ("dask", "scheduler", "--host", config.host, "--port", str(spec.port))),
            *("--dashboard-address", f"{config.host}:{config.dask_http_port}"),
        ], {}
    scheduler = f"tcp://{config.client_host}:{config.dask_port}"
    return [
        *(_PYTHON + ("dask", "worker", scheduler, "--name", spec.name)),
        *("--host", config.client_host, "--worker-port", str(spec.port), "--nworkers", "1"),
        *("--nthreads", str(config.threads_per_worker), "--no-dashboard"),
        # Without the dashboard a worker still serves /health on an HTTP port: on 0.0.0.0 unless told.
        *("--dashboard-address", f"{config.client_host}:0"),
        *("--local-directory", str(config.state_dir / "dask-scratch")),
    ], {}


def _mlflow_command(
    spec: ProcessSpec, config: StackConfig, credentials: Mapping[str, str]
) -> Command:
    return [
        *(_PYTHON + ("mlflow", "server", "--app-name", "basic-auth")),
        *("--serve-artifacts", "--artifacts-destination", str(config.state_dir / ARTIFACTS_DIR)),
        *("--host", config.host, "--port", str(spec.port), "--workers", "1"),
    ], {
        # In the environment, not on the command line: the URL may hold a password.
        "MLFLOW_BACKEND_STORE_URI": database_url(config.postgres_url, config.databases["mlflow"]),
        "MLFLOW_AUTH_CONFIG_PATH": str(config.state_dir / AUTH_CONFIG_FILE),
        "MLFLOW_AUTH_ADMIN_USERNAME": credentials["username"],
        "MLFLOW_AUTH_ADMIN_PASSWORD": credentials["password"],
        "MLFLOW_FLASK_SERVER_SECRET_KEY": credentials["secret_key"],
        # evenflow uses no MLflow server jobs (GenAI features): seven fewer processes.
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
    }


def _prefect_command(
    spec: ProcessSpec, config: StackConfig, credentials: Mapping[str, str]
) -> Command:
    start = ("prefect", "server", "start", "--host", config.host, "--port", str(spec.port))
    return [*_PYTHON, *start], {
        "PREFECT_HOME": str(config.state_dir / "prefect-home"),
        # Anonymous requests are answered 401 (health checks excepted), as MLflow's are.
        "PREFECT_SERVER_API_AUTH_STRING": prefect_auth_string(credentials),
        "PREFECT_API_AUTH_STRING": prefect_auth_string(credentials),
        "PREFECT_API_DATABASE_CONNECTION_URL": database_url(
            config.postgres_url, config.databases["prefect"], driver="postgresql+asyncpg"
        ),
    }


def spawn(spec: ProcessSpec, config: StackConfig, credentials: Mapping[str, str]) -> int:
    """Start one process detached, in its own process group, logging to NAME.log; write NAME.pid."""
    argv, extra_env = command(spec, config, credentials)
    env = {key: value for key, value in os.environ.items() if key not in _CLIENT_ONLY}
    env.update(_COMMON_ENV)
    env.update(extra_env)
    with (config.state_dir / f"{spec.name}.log").open("wb") as log:
        log.write(f"$ {shlex.join(argv)}\n".encode())
        log.flush()
        child = subprocess.Popen(
            argv,
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


def running(state_dir: Path, spec: ProcessSpec) -> int | None:
    """The pid of the stack's process ``spec`` if it runs, from its pid file."""
    pid = read_pid(state_dir, spec.name)
    return pid if pid is not None and _is_ours(pid, spec) else None


def read_pid(state_dir: Path, name: str) -> int | None:
    """The pid in ``NAME.pid``, or None when there is none."""
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


def group_alive(pgid: int) -> bool:
    """Whether any live (not zombie) process is left in the process group ``pgid``."""
    if pgid in _CHILDREN:
        _CHILDREN[pgid].poll()
    for process in psutil.process_iter():
        try:
            if os.getpgid(process.pid) == pgid and process.status() != psutil.STATUS_ZOMBIE:
                return True
        except (OSError, psutil.Error):
            continue
    return False


def stop_groups(targets: Mapping[str, int], timeout_s: float) -> list[tuple[str, int, str]]:
    """SIGTERM each process group, SIGKILL those left after ``timeout_s``.

    Returns ``(name, pid, how)`` for each: ``stopped`` or ``killed``.
    """
    for pid in targets.values():
        _signal_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while any(group_alive(pid) for pid in targets.values()) and time.monotonic() < deadline:
        time.sleep(0.2)
    stopped: list[tuple[str, int, str]] = []
    for name, pid in targets.items():
        how = "stopped"
        if group_alive(pid):
            _signal_group(pid, signal.SIGKILL)
            how = "killed"
            kill_deadline = time.monotonic() + 5
            while group_alive(pid) and time.monotonic() < kill_deadline:
                time.sleep(0.1)
        stopped.append((name, pid, how))
        logger.info("%s (pid %d) %s", name, pid, how)
    return stopped


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def log_tail(state_dir: Path, name: str) -> str:
    """The last lines of a process's log, indented, to quote in an error."""
    path = state_dir / f"{name}.log"
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return f"no log at {path}"
    tail = "\n".join(f"    {line}" for line in lines[-_LOG_TAIL_LINES:])
    return f"last lines of {path}:\n{tail}"
