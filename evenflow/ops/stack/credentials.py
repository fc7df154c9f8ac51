"""The stack's secrets and what a client needs: admin credentials, MLflow's auth file, ``env``.

Secrets come from the environment, else from the stack's private ``secrets.json``, else are new;
every file holding one is readable by its owner only.
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
from collections.abc import Mapping
from pathlib import Path

from evenflow.errors import ConfigError
from evenflow.ops.stack.config import PROXIED_ARTIFACT_ROOT, SECRETS_FILE, StackConfig
from evenflow.ops.stack.postgres import database_url

_MIN_PASSWORD_LENGTH = 12  # MLflow's rule for basic-auth passwords


def credentials(state_dir: Path) -> dict[str, str]:
    """The admin (MLflow and Prefect), MLflow's secret key: from the environment, else kept, else new.

    One admin for both servers: Prefect takes ``user:password`` as its basic-auth string.

    Raises:
        ConfigError: the admin's password is shorter than MLflow accepts.
    """
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
        write_private(path, json.dumps(values, indent=2) + "\n")
    return values


def client_env(config: StackConfig, credentials: Mapping[str, str]) -> dict[str, str]:
    """The settings that switch a client from the embedded default to this stack."""
    host = config.client_host
    return {
        "EVENFLOW_TRACKING_URI": f"http://{host}:{config.mlflow_port}",
        "EVENFLOW_ARTIFACT_ROOT": PROXIED_ARTIFACT_ROOT,
        "MLFLOW_TRACKING_USERNAME": credentials["username"],
        "MLFLOW_TRACKING_PASSWORD": credentials["password"],
        "PREFECT_API_URL": f"http://{host}:{config.prefect_port}/api",
        "PREFECT_API_AUTH_STRING": prefect_auth_string(credentials),
        "EVENFLOW_DASK_ADDRESS": f"tcp://{host}:{config.dask_port}",
    }


def prefect_auth_string(credentials: Mapping[str, str]) -> str:
    """Prefect's basic-auth string: the stack's admin, so one password opens both servers.

    The server reads it as ``PREFECT_SERVER_API_AUTH_STRING``, a client as ``PREFECT_API_AUTH_STRING``.
    """
    return f"{credentials['username']}:{credentials['password']}"


def render_env_file(env: Mapping[str, str]) -> str:
    """``env`` as a shell file to ``source``."""
    lines = [
        "# Written by `evenflow stack up`: the settings of the local server stack.",
        "# Use them with: source .evenflow/stack/env",
        *(f"export {key}={shlex.quote(value)}" for key, value in env.items()),
    ]
    return "\n".join(lines) + "\n"


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


def write_private(path: Path, content: str) -> None:
    """Write a file only its owner can read (it holds a password)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(content)
