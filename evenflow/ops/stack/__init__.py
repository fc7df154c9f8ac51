"""The server stack as local processes, for a machine without Docker.

The same services as ``infra/docker-compose.yml``: an MLflow tracking server with basic
authentication (backend and auth stores on PostgreSQL, artifacts proxied by the server, so clients
need no direct artifact access), a Prefect server on PostgreSQL, a Dask scheduler and worker
processes. Each runs detached in its own process group, with a log file and a pid file under
``.evenflow/stack/``. ``up`` waits until each one is healthy and writes ``env``: the settings a
client needs (``source .evenflow/stack/env``); nothing else changes between the embedded default
and server mode.

Prefect-free: the Prefect server is only spawned as a subprocess (``python -m prefect server start``).
The modules: ``config`` (what the stack is), ``postgres`` (its databases), ``credentials``
(secrets and a client's settings), ``detached`` (starting, finding and stopping its processes),
``health`` (ports and health checks) and ``supervisor`` (up, down, status). This package's names
are its public API.
"""

from evenflow.ops.stack.config import (
    ARTIFACTS_DIR,
    AUTH_CONFIG_FILE,
    CONFIG_FILE,
    DEFAULT_POSTGRES_URL,
    ENV_FILE,
    PROXIED_ARTIFACT_ROOT,
    SECRETS_FILE,
    SERVICES,
    ProcessSpec,
    ServiceStatus,
    StackConfig,
    load_config,
    ports,
    processes,
    stack_dir,
)
from evenflow.ops.stack.credentials import auth_config_text, client_env, render_env_file
from evenflow.ops.stack.health import port_in_use
from evenflow.ops.stack.postgres import (
    database_url,
    drop_databases,
    ensure_databases,
    existing_databases,
)
from evenflow.ops.stack.supervisor import down, status, up

__all__ = [
    "ARTIFACTS_DIR",
    "AUTH_CONFIG_FILE",
    "CONFIG_FILE",
    "DEFAULT_POSTGRES_URL",
    "ENV_FILE",
    "PROXIED_ARTIFACT_ROOT",
    "SECRETS_FILE",
    "SERVICES",
    "ProcessSpec",
    "ServiceStatus",
    "StackConfig",
    "auth_config_text",
    "client_env",
    "database_url",
    "down",
    "drop_databases",
    "ensure_databases",
    "existing_databases",
    "load_config",
    "port_in_use",
    "ports",
    "processes",
    "render_env_file",
    "stack_dir",
    "status",
    "up",
]
