"""Whether the stack can start and whether it is up: free ports, health checks, Dask workers."""

from __future__ import annotations

import logging
import socket
import time
import urllib.error
import urllib.request
from base64 import b64encode
from collections.abc import Mapping
from http import HTTPStatus

from distributed import Client

from evenflow.errors import ConfigError, PortBusy, ServiceUnhealthy
from evenflow.ops.stack.config import ProcessSpec, StackConfig, processes
from evenflow.ops.stack.detached import group_alive, log_tail

logger = logging.getLogger(__name__)

_PORT_FLAGS = {
    "mlflow": "--mlflow-port",
    "prefect": "--prefect-port",
    "dask-scheduler": "--dask-port",
    "dask-worker": "--worker-port",
}


def check_ports(config: StackConfig, specs: list[ProcessSpec]) -> None:
    """Every port the stack needs must be its own and free.

    Raises:
        ConfigError: two services want one port.
        PortBusy: ports in use, each named with the flag that moves it.
    """
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


def port_accepts(host: str, port: int) -> bool:
    """Whether a connection to ``host:port`` is accepted within a second."""
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def healthy(host: str, spec: ProcessSpec) -> bool:
    """Whether a process answers its health check (HTTP 200, or an accepted connection)."""
    if spec.health_path is None:
        return port_accepts(host, spec.port)
    return _http_status(f"http://{host}:{spec.port}{spec.health_path}") == HTTPStatus.OK


def wait_healthy(config: StackConfig, specs: list[ProcessSpec], pids: Mapping[str, int]) -> None:
    """Wait until every process is healthy.

    Raises:
        ServiceUnhealthy: one exited, or some are not healthy in time (with their logs' tails).
    """
    deadline = time.monotonic() + config.health_timeout_s
    pending = list(specs)
    while True:
        for spec in list(pending):
            if not group_alive(pids[spec.name]):
                raise ServiceUnhealthy(
                    f"{spec.name} exited before it became healthy; "
                    f"{log_tail(config.state_dir, spec.name)}"
                )
            if healthy(config.client_host, spec):
                pending.remove(spec)
                logger.info("%s is healthy", spec.name)
        if not pending:
            return
        if time.monotonic() > deadline:
            tails = "\n".join(log_tail(config.state_dir, spec.name) for spec in pending)
            raise ServiceUnhealthy(
                f"{', '.join(s.name for s in pending)} not healthy after "
                f"{config.health_timeout_s:.0f}s; {tails}"
            )
        time.sleep(0.5)


def check_credentials(config: StackConfig, credentials: Mapping[str, str]) -> None:
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
            f"other databases; {log_tail(config.state_dir, 'mlflow')}"
        )


def wait_for_workers(config: StackConfig) -> None:
    """The scheduler must see every worker (a worker can be up but not yet registered)."""
    address = f"tcp://{config.client_host}:{config.dask_port}"
    try:
        with Client(address, timeout=30, set_as_default=False) as client:
            client.wait_for_workers(config.n_workers, timeout=config.health_timeout_s)
    except (OSError, TimeoutError) as exc:
        tails = "\n".join(
            log_tail(config.state_dir, spec.name)
            for spec in processes(config)
            if spec.service == "dask-worker"
        )
        raise ServiceUnhealthy(
            f"the Dask scheduler at {address} did not see {config.n_workers} workers ({exc}); "
            f"{tails}"
        ) from exc


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
