"""Prefect server, `evenflow serve`, `prefect worker` as subprocesses of a test, and their cleanup.

Shared by the schedule tests and the browser tests' servers: each process gets its own PREFECT_HOME under the test's tmp_path
and no inherited ``PREFECT_*`` setting, runs in its own session (so stopping it ends the runs it
started) and logs to a file whose tail is shown when something fails.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.error import URLError

import pytest

from tests.conftest import REPO_ROOT

BIN = Path(sys.executable).parent
STARTUP_TIMEOUT_S = 150


@dataclass
class Started:
    """A subprocess started by a test, its log, and how to say what it printed."""

    process: subprocess.Popen[bytes]
    log: Path

    def tail(self, lines: int = 40) -> str:
        text = self.log.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def environment(tmp_path: Path, **extra: str) -> dict[str, str]:
    """This process's environment without Prefect settings, with a home under ``tmp_path``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        PREFECT_HOME=str(tmp_path / "prefect-home"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_LOGGING_EXTRA_LOGGERS="evenflow",
        MLFLOW_DISABLE_TELEMETRY="true",
        DO_NOT_TRACK="1",
        DVC_NO_ANALYTICS="1",
        **extra,
    )
    return env


def evenflow_environment(
    tmp_path: Path, api_url: str, project: Path, **extra: str
) -> dict[str, str]:
    """``environment`` for evenflow against the Prefect API at ``api_url``: its project, this
    checkout's code and a DVC remote under ``tmp_path``, as an operator's shell would set them."""
    return environment(
        tmp_path,
        PREFECT_API_URL=api_url,
        EVENFLOW_PROJECT_ROOT=str(project),
        EVENFLOW_CODE_ROOT=str(REPO_ROOT),
        EVENFLOW_DVC_REMOTE=str(tmp_path / "dvc-remote"),
        **extra,
    )


def run_to_end(command: list[str], env: dict[str, str], cwd: Path, timeout_s: float) -> str:
    """Run a command to its end; what it printed (stdout, then stderr), failing unless it exits 0.

    The failure names the command as typed (no venv path) and ends with its output's last 4,000
    characters: enough for a traceback, short enough to read in a CI log.
    """
    done = subprocess.run(
        command,
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    output = done.stdout + done.stderr
    typed = shlex.join([Path(command[0]).name, *command[1:]])
    assert done.returncode == 0, f"`{typed}` exited {done.returncode}:\n{output[-4000:]}"
    return output


def start(command: list[str], env: dict[str, str], log: Path, cwd: Path) -> Started:
    handle = log.open("wb")
    process = subprocess.Popen(
        command, env=env, cwd=cwd, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
    )
    handle.close()
    return Started(process, log)


def stop(started: Started, timeout_s: float = 30) -> None:
    """Terminate, wait, kill on timeout; then end anything left in the process group it leads."""
    process = started.process
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=timeout_s)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # the session it leads: runs and server workers


def wait_healthy(server: Started, url: str) -> None:
    """Wait for the API's health check; fail with the server's log if it exits or stays down."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(f"prefect server exited ({server.process.returncode}):\n{server.tail()}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=5) as reply:
                if reply.status == 200:
                    return
        except (URLError, OSError):
            pass
        time.sleep(1)
    pytest.fail(f"prefect server not healthy after {STARTUP_TIMEOUT_S}s:\n{server.tail()}")
