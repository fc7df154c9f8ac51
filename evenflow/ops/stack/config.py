"""What the stack is: its configuration, its processes and ports, and the files it keeps."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from pydantic import Field

from evenflow.config.fields import Parallelism
from evenflow.config.settings import EvenflowSettings
from evenflow.errors import StackError
from evenflow.records import Record

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

Port = Annotated[int, Field(ge=1, le=65535)]


class StackConfig(Record):
    """Where the stack keeps its state, which PostgreSQL backs it and which ports it listens on."""

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
    mlflow_port: Port = Field(default=5000, description="MLflow tracking server.")
    prefect_port: Port = Field(default=4200, description="Prefect server API.")
    dask_port: Port = Field(default=8786, description="Dask scheduler.")
    dask_http_port: Port = Field(
        default=8787, description="Dask scheduler's HTTP server (/health, metrics)."
    )
    worker_port: Port = Field(
        default=8790, description="First Dask worker; worker i uses this + i - 1."
    )
    n_workers: int = Field(default=2, ge=1, le=64, description="Dask worker processes.")
    threads_per_worker: Parallelism = Field(default=1, description="Threads per worker.")
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


def load_config(state_dir: Path) -> StackConfig:
    """The configuration the stack in ``state_dir`` was started with.

    Raises:
        StackError: no stack was ever started in ``state_dir``.
    """
    path = state_dir / CONFIG_FILE
    if not path.exists():
        raise StackError(f"no stack in {state_dir}: start one with `evenflow stack up`")
    return StackConfig.model_validate_json(path.read_text(encoding="utf-8"))


def known_processes(state_dir: Path) -> list[ProcessSpec]:
    """The processes of the stack last started in ``state_dir`` (none if it never was)."""
    return processes(load_config(state_dir)) if (state_dir / CONFIG_FILE).exists() else []


def save_config(config: StackConfig) -> None:
    """Keep the configuration beside the stack, for ``status`` and ``down``."""
    path = config.state_dir / CONFIG_FILE
    path.write_text(config.model_dump_json(indent=2) + "\n", encoding="utf-8")
