"""The local Prefect API of a command: started once per process, under a project-wide lock.

Without a server (``PREFECT_API_URL`` unset), Prefect starts an ephemeral API on first use. Two
first runs in one project would then migrate the same SQLite database at once ("duplicate column
name"), and on a loaded machine the start-up times out with a raw ``RuntimeError``. Here the API
is started before the flow, one process at a time per project, retried once with a pause, and
its pid is written down so that a killed run's server is stopped by the next command.
"""

from __future__ import annotations

import atexit
import time

from filelock import FileLock
from prefect.server.api.server import SubprocessASGIServer
from prefect.settings import PREFECT_API_URL, PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS

from evenflow.config.settings import EvenflowSettings
from evenflow.errors import InfrastructureError
from evenflow.ops.owners import claim_server, forget_server

_ATTEMPTS = 2
_PAUSE_S = 5.0


def ensure_local_api(settings: EvenflowSettings) -> str | None:
    """Start this process's local Prefect API unless a server is configured; return its URL.

    Raises:
        InfrastructureError: it did not answer within the start-up timeout, twice.
    """
    if PREFECT_API_URL.value():  # a server from the environment or the Prefect profile
        return None
    server = SubprocessASGIServer()  # Prefect's own singleton: its clients reuse this one
    if not server.running:
        server = _start(server, FileLock(settings.state_dir / "prefect" / "api-start.lock"))
    if server.server_process is not None:
        claim_server(settings, server.server_process.pid)
        atexit.register(forget_server, settings)
    return server.api_url


def _start(server: SubprocessASGIServer, lock: FileLock) -> SubprocessASGIServer:
    """Start the server under the project's lock; once more after a pause if it timed out.

    A stopped server leaves Prefect's registry of instances: the retry takes the new singleton,
    the one Prefect's clients will find.
    """
    timeout = PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS.value()
    for attempt in range(1, _ATTEMPTS + 1):
        try:
            with lock:
                server.start(timeout=timeout)
            return server
        except RuntimeError as exc:
            server.stop()
            if attempt == _ATTEMPTS:
                raise InfrastructureError(
                    f"the local Prefect API did not start within {timeout} s ({_ATTEMPTS} tries): "
                    "the machine may be overloaded. Retry, raise "
                    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS, or point PREFECT_API_URL "
                    "at a running server (`evenflow stack up`)"
                ) from exc
            time.sleep(_PAUSE_S)
            server = SubprocessASGIServer()
    raise AssertionError("unreachable: the last attempt returns or raises")
