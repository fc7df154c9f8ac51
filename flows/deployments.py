"""Schedules as code: the deployments in ``infra/prefect.yaml``, served on this machine.

The file is in Prefect 3's ``prefect.yaml`` format. ``evenflow serve`` reads it, loads each flow
from its entrypoint (``flows/score.py:score_batch`` is imported as ``flows.score``, so a served
run finds its flow from any working directory), checks its parameters against the flow's
signature and its cron strings, and serves the deployments with ``prefect.serve``: the runner
registers them with the Prefect API, creates the scheduled runs and executes each run in a
subprocess here. Relative paths in parameters are relative to the folder ``evenflow serve`` runs
in, as for every evenflow command (the project root).

Only what serving uses is read; ``work_pool`` and the build/push/pull steps are for
``prefect deploy`` with a worker and are ignored here.
"""

from __future__ import annotations

import importlib
import inspect
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from prefect import Flow
from prefect import serve as prefect_serve
from prefect.client.schemas.schedules import CronSchedule
from prefect.deployments.runner import RunnerDeployment
from prefect.exceptions import ParameterTypeError
from prefect.schedules import Cron
from prefect.settings import PREFECT_API_URL
from prefect.types.entrypoint import EntrypointType
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from evenflow.errors import ConfigError

logger = logging.getLogger(__name__)

CODE_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_FILE = CODE_ROOT / "infra" / "prefect.yaml"


class ScheduleSpec(BaseModel):
    """One cron schedule of a deployment (Prefect 3's ``schedules:`` entry)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    cron: str = Field(description="Cron string, e.g. '0 3 * * 1' (Mondays at 03:00).")
    timezone: str | None = Field(default=None, description="IANA time zone (default: UTC).")
    day_or: bool = Field(default=True, description="Day-of-month OR day-of-week, as cron.")
    active: bool = Field(default=True, description="Whether the schedule creates runs.")

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        _prefect_check(cron=value)
        return value

    @field_validator("timezone")
    @classmethod
    def _valid_timezone(cls, value: str | None) -> str | None:
        if value is not None:
            _prefect_check(cron="* * * * *", timezone=value)
        return value


def _prefect_check(**schedule: str) -> None:
    """Prefect's own check of a cron schedule (croniter, IANA zones), as one plain error."""
    try:
        CronSchedule(**schedule)
    except ValidationError as exc:
        raise ValueError("; ".join(str(e["msg"]) for e in exc.errors())) from None


class DeploymentSpec(BaseModel):
    """One entry of ``deployments:`` as serving reads it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$", description="Deployment name.")
    entrypoint: str = Field(description="path/to/file.py:flow_function, relative to the checkout.")
    description: str | None = None
    version: str | None = None
    tags: tuple[str, ...] = ()
    parameters: dict[str, Any] = Field(default_factory=dict)
    schedules: tuple[ScheduleSpec, ...] = Field(
        default=(), description="Cron schedules; none: runs on demand only."
    )
    concurrency_limit: int | None = Field(default=None, ge=1)
    enforce_parameter_schema: bool = True
    work_pool: dict[str, Any] | None = Field(
        default=None, description="For prefect deploy with a worker; ignored when served."
    )

    @property
    def module(self) -> str:
        """``flows/score.py:score_batch`` → ``flows.score``."""
        return _split_entrypoint(self.entrypoint)[0]

    @property
    def function(self) -> str:
        """``flows/score.py:score_batch`` → ``score_batch``."""
        return _split_entrypoint(self.entrypoint)[1]


class ProjectFile(BaseModel):
    """The ``prefect.yaml`` file: project name, Prefect version, steps and deployments."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    name: str
    prefect_version: str | None = Field(default=None, alias="prefect-version")
    build: Any = None
    push: Any = None
    pull: Any = None
    deployments: tuple[DeploymentSpec, ...] = ()


@dataclass(frozen=True)
class ServedDeployment:
    """A deployment ready to serve: its spec and the flow loaded from its entrypoint."""

    spec: DeploymentSpec
    flow: Flow[..., Any]

    def to_runner(self) -> RunnerDeployment:
        """The Prefect runner deployment (``flow.to_deployment``) with its cron schedules."""
        spec = self.spec
        deployment = self.flow.to_deployment(
            name=spec.name,
            schedules=[
                Cron(s.cron, timezone=s.timezone, day_or=s.day_or, active=s.active)
                for s in spec.schedules
            ],
            parameters=dict(spec.parameters),
            description=spec.description,
            tags=list(spec.tags),
            version=spec.version,
            concurrency_limit=spec.concurrency_limit,
            enforce_parameter_schema=spec.enforce_parameter_schema,
            entrypoint_type=EntrypointType.MODULE_PATH,
        )
        # to_deployment is async-dispatched: called from sync code it returns the deployment.
        assert isinstance(deployment, RunnerDeployment)
        return deployment


def read_project(path: Path) -> ProjectFile:
    """Read and check the deployments file (keys, names, cron strings), not yet the flows.

    Raises:
        ConfigError: the file is missing, not YAML, or an entry is invalid; the message names
            the file, the deployment and the key.
    """
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: deployments file not found") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    try:
        project = ProjectFile.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{path}: invalid deployments file: {_describe(exc, raw)}") from None
    names = [d.name for d in project.deployments]
    if not names:
        raise ConfigError(f"{path}: no deployments in the file")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"{path}: deployment names must be unique; repeated: {duplicates}")
    return project


def load_deployments(path: Path, only: Sequence[str] = ()) -> list[ServedDeployment]:
    """Read the file, load each selected flow from its entrypoint and check its parameters.

    Raises:
        ConfigError: unknown names in ``only``, an entrypoint that does not load a flow, or
            parameters that do not fit the flow's signature.
    """
    project = read_project(path)
    known = [d.name for d in project.deployments]
    unknown = [name for name in only if name not in known]
    if unknown:
        raise ConfigError(f"{path}: no deployment named {unknown}; the file has {known}")
    selected = [d for d in project.deployments if not only or d.name in only]
    served = []
    for spec in selected:
        flow = load_flow(spec, source=path)
        check_parameters(flow, spec, source=path)
        served.append(ServedDeployment(spec=spec, flow=flow))
    return served


def load_flow(spec: DeploymentSpec, *, source: Path) -> Flow[..., Any]:
    """Import the flow an entrypoint names.

    Raises:
        ConfigError: the entrypoint is malformed, its module does not import, or it names no flow.
    """
    where = f"{source}: deployment {spec.name!r}: entrypoint {spec.entrypoint!r}"
    try:
        module_name, function = spec.module, spec.function
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    if not (CODE_ROOT / spec.entrypoint.rsplit(":", 1)[0]).is_file():
        raise ConfigError(f"{where}: no such file under {CODE_ROOT}")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise ConfigError(f"{where}: cannot import {module_name}: {exc}") from None
    flow = getattr(module, function, None)
    if not isinstance(flow, Flow):
        raise ConfigError(f"{where}: {module_name}.{function} is not a Prefect flow")
    return flow


def check_parameters(flow: Flow[..., Any], spec: DeploymentSpec, *, source: Path) -> None:
    """The deployment's parameters must fit the flow's signature (names and types).

    Raises:
        ConfigError: naming the unknown or missing parameter, or the validation error.
    """
    where = f"{source}: deployment {spec.name!r} ({spec.entrypoint})"
    signature = inspect.signature(flow.fn)
    unknown = sorted(set(spec.parameters) - set(signature.parameters))
    if unknown:
        raise ConfigError(
            f"{where}: unknown parameter(s) {unknown}; the flow takes {list(signature.parameters)}"
        )
    missing = [
        name
        for name, parameter in signature.parameters.items()
        if parameter.default is inspect.Parameter.empty and name not in spec.parameters
    ]
    if missing:
        raise ConfigError(f"{where}: missing parameter(s) {missing} (a run needs them)")
    try:
        flow.validate_parameters(dict(spec.parameters))
    except ParameterTypeError as exc:
        raise ConfigError(f"{where}: parameters do not fit the flow: {_one_line(exc)}") from None


def describe(deployments: Sequence[ServedDeployment]) -> list[str]:
    """One line per deployment: name, flow and schedule."""
    lines = []
    for served in deployments:
        spec = served.spec
        when = (
            ", ".join(f"cron '{s.cron}' ({s.timezone or 'UTC'})" for s in spec.schedules)
            or "on demand (no schedule)"
        )
        lines.append(f"serving {served.flow.name}/{spec.name}: {when}")
    return lines


def api_url() -> str | None:
    """The Prefect API this process talks to, or None for Prefect's ephemeral server."""
    value = PREFECT_API_URL.value()
    return str(value) if value else None


def serve(deployments: Sequence[ServedDeployment]) -> None:
    """Register the deployments and run their scheduled and on-demand runs here (blocks)."""
    prefect_serve(*(d.to_runner() for d in deployments), print_starting_message=False)


def _split_entrypoint(entrypoint: str) -> tuple[str, str]:
    path, sep, function = entrypoint.rpartition(":")
    if not sep or not path.endswith(".py") or not function.isidentifier():
        raise ValueError("expected path/to/file.py:flow_function")
    relative = Path(path)
    if relative.is_absolute() or ".." in relative.parts:
        raise ValueError("the path must be relative to the checkout, without '..'")
    return ".".join(relative.with_suffix("").parts), function


def _describe(exc: ValidationError, raw: Any) -> str:
    problems = []
    for error in exc.errors():
        loc = list(error["loc"])
        if loc[:1] == ["deployments"] and len(loc) > 1 and isinstance(loc[1], int):
            entry = raw["deployments"][loc[1]] if isinstance(raw, dict) else {}
            name = entry.get("name", f"#{loc[1]}") if isinstance(entry, dict) else f"#{loc[1]}"
            loc = [f"deployment {name!r}", *loc[2:]]
        key = ".".join(str(part) for part in loc)
        if error["type"] == "extra_forbidden":
            problems.append(f"{key}: unknown key")
        else:
            problems.append(f"{key}: {_one_line(error['msg'])}")
    return "; ".join(problems)


def _one_line(value: object) -> str:
    return " ".join(str(value).split())
