"""Environment settings (``EVENFLOW_*`` variables): where things live and which servers to use.

Embedded defaults need nothing running: MLflow on SQLite under ``mlruns/``, a local Dask cluster,
DVC's cache plus a local remote. Server mode changes only these settings.
"""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Any

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def _login_name() -> str:
    """The login name, or "unknown" where the system has none (a container without a passwd entry)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


class EvenflowSettings(BaseSettings):
    """Where evenflow reads and writes; built in the entry point and passed down, never global.

    Empty values are filled from ``project_root`` before validation.
    """

    model_config = SettingsConfigDict(env_prefix="EVENFLOW_", frozen=True, extra="forbid")

    project_root: Path = Field(
        default_factory=Path.cwd,
        description="Folder holding data/, data.dvc, .dvc/, mlruns/ and expectations/.",
    )
    code_root: Path = Field(
        default=Path(),
        description="Git checkout whose commit is the run's code (default: project).",
    )
    tracking_uri: str = Field(
        default="",
        description="MLflow tracking URI (default: sqlite:///<project>/mlruns/mlflow.db).",
    )
    artifact_root: str = Field(
        default="",
        description=(
            "Artifact location for new experiments (default: mlruns/artifacts; with an http "
            "tracking server, the server's own, e.g. mlflow-artifacts:/ when it serves them)."
        ),
    )
    data_root: Path = Field(default=Path(), description="DVC-tracked data (default: data/).")
    expectations_dir: Path = Field(
        default=Path(), description="Great Expectations suites as JSON (default: expectations/)."
    )
    dvc_remote: str = Field(
        default="", description="DVC remote URL or path (default: .evenflow/dvc-remote)."
    )
    dask_address: str | None = Field(
        default=None, description="Existing Dask scheduler, e.g. tcp://host:8786 (default: local)."
    )
    user: str = Field(
        default_factory=_login_name,
        description=(
            "Who launches runs, recorded as MLflow's mlflow.user tag (default: the login name); "
            "a reviewer of that name may not approve the run's model."
        ),
    )

    @model_validator(mode="before")
    @classmethod
    def _fill_defaults(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        root = Path(data.get("project_root") or Path.cwd()).resolve()
        data["project_root"] = root
        data["code_root"] = Path(data.get("code_root") or root).resolve()
        if not data.get("tracking_uri"):
            data["tracking_uri"] = f"sqlite:///{root / 'mlruns' / 'mlflow.db'}"
        if not data.get("artifact_root") and not is_tracking_server(data["tracking_uri"]):
            data["artifact_root"] = (root / "mlruns" / "artifacts").as_uri()
        data["data_root"] = Path(data.get("data_root") or root / "data").resolve()
        data["expectations_dir"] = Path(data.get("expectations_dir") or root / "expectations")
        if not data.get("dvc_remote"):
            data["dvc_remote"] = str(root / ".evenflow" / "dvc-remote")
        return data

    @property
    def state_dir(self) -> Path:
        """Git-ignored working folder for Prefect's home and run scratch space."""
        return self.project_root / ".evenflow"


def is_tracking_server(tracking_uri: str) -> bool:
    """Whether MLflow is a tracking server (http[s]), which decides where artifacts go."""
    return tracking_uri.startswith(("http://", "https://"))
