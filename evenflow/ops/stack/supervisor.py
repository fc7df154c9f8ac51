"""Start, stop and look at the whole stack."""

from __future__ import annotations

import logging
from pathlib import Path

from evenflow.errors import StackError
from evenflow.ops.stack.config import (
    AUTH_CONFIG_FILE,
    ENV_FILE,
    ServiceStatus,
    StackConfig,
    known_processes,
    load_config,
    processes,
    save_config,
)
from evenflow.ops.stack.credentials import (
    auth_config_text,
    client_env,
    credentials,
    render_env_file,
    write_private,
)
from evenflow.ops.stack.detached import read_pid, running, spawn, stop_groups
from evenflow.ops.stack.health import (
    check_credentials,
    check_ports,
    healthy,
    port_accepts,
    wait_for_workers,
    wait_healthy,
)
from evenflow.ops.stack.postgres import ensure_databases, postgres_url

logger = logging.getLogger(__name__)


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
    already = [spec.name for spec in known_processes(state_dir) if running(state_dir, spec)]
    if already:
        raise StackError(
            f"the stack in {state_dir} is already running ({', '.join(already)}): "
            "see `evenflow stack status`, or stop it with `evenflow stack down`"
        )
    postgres_url(config.postgres_url)  # a malformed URL is named before any port is probed
    specs = processes(config)
    check_ports(config, specs)
    ensure_databases(config.postgres_url, config.databases.values())
    admin = credentials(state_dir)
    write_private(state_dir / AUTH_CONFIG_FILE, auth_config_text(config))
    save_config(config)
    (state_dir / ENV_FILE).unlink(missing_ok=True)
    try:
        pids = {spec.name: spawn(spec, config, admin) for spec in specs}
        wait_healthy(config, specs, pids)
        check_credentials(config, admin)
        wait_for_workers(config)
    except BaseException:
        down(state_dir)
        raise
    env = client_env(config, admin)
    write_private(state_dir / ENV_FILE, render_env_file(env))
    logger.info("stack up in %s", state_dir)
    return env


def down(state_dir: Path, timeout_s: float = 20.0) -> list[tuple[str, int, str]]:
    """Stop every service (SIGTERM to its process group, SIGKILL after ``timeout_s``).

    Returns ``(name, pid, how)`` for each process that was running: ``stopped`` or ``killed``.
    Pid files are removed, stale ones too.
    """
    targets = {
        spec.name: pid
        for spec in known_processes(state_dir)
        if (pid := running(state_dir, spec)) is not None
    }
    stopped = stop_groups(targets, timeout_s)
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
    postgres = postgres_url(config.postgres_url)
    reachable = port_accepts(postgres.host or "127.0.0.1", postgres.port or 5432)
    return [
        ServiceStatus("postgres", None, postgres.port or 5432, reachable, reachable),
        *_process_statuses(state_dir, config),
    ]


def _process_statuses(state_dir: Path, config: StackConfig) -> list[ServiceStatus]:
    statuses = []
    for spec in processes(config):
        is_running = running(state_dir, spec) is not None
        statuses.append(
            ServiceStatus(
                name=spec.name,
                pid=read_pid(state_dir, spec.name),
                port=spec.port,
                running=is_running,
                healthy=is_running and healthy(config.client_host, spec),
            )
        )
    return statuses
