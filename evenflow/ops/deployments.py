"""Schedules as code: the deployments file ``infra/prefect.yaml``, read and checked without Prefect.

The file is in Prefect 3's ``prefect.yaml`` format. This module turns it into records and checks
what can be checked from the file alone: its keys, names, entrypoints (``flows/score.py:score_batch``
names the module ``flows.score``), cron schedules (through a checker the caller passes: the cron
grammar is Prefect's own) and a deployment's parameters against a flow's signature. Loading the
flows and serving them needs Prefect: see ``flows/serve.py``.

Serving reads the deployments only. ``work_pool``, the build/push/pull steps and the
``definitions`` (YAML anchors) are for ``prefect deploy`` with a worker: they are checked for
shape here and ignored when served.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import ConfigDict, Field, ValidationError

from evenflow.config.fields import Name
from evenflow.config.loading import read_yaml
from evenflow.errors import ConfigError
from evenflow.records import Record

CODE_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_FILE = CODE_ROOT / "infra" / "prefect.yaml"

#: Checks one cron schedule (cron string, IANA time zone or None); raises ValueError, saying why.
ScheduleCheck = Callable[[str, str | None], None]


class ScheduleSpec(Record):
    """One cron schedule of a deployment (Prefect 3's ``schedules:`` entry)."""

    cron: str = Field(description="Cron string, e.g. '0 3 * * 1' (Mondays at 03:00).")
    timezone: str | None = Field(default=None, description="IANA time zone (default: UTC).")
    day_or: bool = Field(default=True, description="Day-of-month OR day-of-week, as cron.")
    active: bool = Field(default=True, description="Whether the schedule creates runs.")


class WorkPoolSpec(Record):
    """The work pool ``prefect deploy`` puts a deployment on (its workers run it)."""

    name: Name = Field(description="Work pool name, e.g. evenflow-process.")
    work_queue_name: str | None = Field(default=None, description="Queue in the pool.")
    job_variables: dict[str, Any] = Field(
        default_factory=dict, description="Overrides of the pool's job template (env, ...)."
    )


class DeploymentSpec(Record):
    """One entry of ``deployments:`` as serving reads it."""

    name: Name = Field(description="Deployment name.")
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
    work_pool: WorkPoolSpec | None = Field(
        default=None, description="For prefect deploy with a worker; ignored when served."
    )

    @property
    def module(self) -> str:
        """``flows/score.py:score_batch`` → ``flows.score``."""
        return split_entrypoint(self.entrypoint)[0]

    @property
    def function(self) -> str:
        """``flows/score.py:score_batch`` → ``score_batch``."""
        return split_entrypoint(self.entrypoint)[1]


class ProjectFile(Record):
    """The ``prefect.yaml`` file: project name, Prefect version, steps and deployments."""

    model_config = ConfigDict(populate_by_name=True)

    name: str
    prefect_version: str | None = Field(default=None, alias="prefect-version")
    build: Any = None
    push: Any = None
    pull: Any = None
    definitions: dict[str, Any] | None = Field(
        default=None, description="YAML anchors shared by deployments (e.g. the work pool)."
    )
    deployments: tuple[DeploymentSpec, ...] = ()


def read_project(path: Path, check_schedule: ScheduleCheck | None = None) -> ProjectFile:
    """Read and check the deployments file (keys, names, cron strings), not yet the flows.

    Raises:
        ConfigError: the file is missing, not YAML, or an entry is invalid; the message names
            the file, the deployment and the key.
    """
    raw = read_yaml(path, "deployments file")
    try:
        project = ProjectFile.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{path}: invalid deployments file: {_describe(exc, raw)}") from None
    problems = schedule_problems(project, check_schedule) if check_schedule else []
    if problems:
        raise ConfigError(f"{path}: invalid deployments file: {'; '.join(problems)}")
    names = [d.name for d in project.deployments]
    if not names:
        raise ConfigError(f"{path}: no deployments in the file")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"{path}: deployment names must be unique; repeated: {duplicates}")
    return project


def schedule_problems(project: ProjectFile, check: ScheduleCheck) -> list[str]:
    """Each invalid cron string or time zone, located as ``deployment 'NAME'.schedules.I.KEY``."""
    problems = []
    for deployment in project.deployments:
        for index, schedule in enumerate(deployment.schedules):
            where = f"deployment {deployment.name!r}.schedules.{index}"
            fields: list[tuple[str, str, str | None]] = [("cron", schedule.cron, None)]
            if schedule.timezone is not None:
                fields.append(("timezone", "* * * * *", schedule.timezone))
            for key, cron, timezone in fields:
                try:
                    check(cron, timezone)
                except ValueError as exc:
                    problems.append(f"{where}.{key}: {one_line(exc)}")
    return problems


def select(project: ProjectFile, only: Sequence[str], *, source: Path) -> list[DeploymentSpec]:
    """The deployments named in ``only`` (all of them when empty), in file order.

    Raises:
        ConfigError: a name in ``only`` is not in the file.
    """
    known = [d.name for d in project.deployments]
    unknown = [name for name in only if name not in known]
    if unknown:
        raise ConfigError(f"{source}: no deployment named {unknown}; the file has {known}")
    return [d for d in project.deployments if not only or d.name in only]


def entrypoint_module(spec: DeploymentSpec, *, source: Path) -> tuple[str, str]:
    """The module and function an entrypoint names, once its file is known to exist.

    Raises:
        ConfigError: the entrypoint is malformed or its file is not in the checkout.
    """
    try:
        module, function = spec.module, spec.function
    except ValueError as exc:
        raise ConfigError(f"{entrypoint_place(spec, source)}: {exc}") from None
    if not (CODE_ROOT / spec.entrypoint.rsplit(":", 1)[0]).is_file():
        raise ConfigError(f"{entrypoint_place(spec, source)}: no such file under {CODE_ROOT}")
    return module, function


def entrypoint_place(spec: DeploymentSpec, source: Path) -> str:
    """Where an entrypoint is written, for error messages."""
    return f"{source}: deployment {spec.name!r}: entrypoint {spec.entrypoint!r}"


def parameters_place(spec: DeploymentSpec, source: Path) -> str:
    """Where a deployment's parameters are written, for error messages."""
    return f"{source}: deployment {spec.name!r} ({spec.entrypoint})"


def check_signature(signature: inspect.Signature, spec: DeploymentSpec, *, source: Path) -> None:
    """The deployment's parameters must be the flow's: none unknown, none required missing.

    Raises:
        ConfigError: naming the unknown or missing parameter.
    """
    where = parameters_place(spec, source)
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


def split_entrypoint(entrypoint: str) -> tuple[str, str]:
    """``flows/score.py:score_batch`` → ``("flows.score", "score_batch")``.

    Raises:
        ValueError: not ``path/to/file.py:function``, or a path outside the checkout.
    """
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
            problems.append(f"{key}: {one_line(error['msg'])}")
    return "; ".join(problems)


def one_line(value: object) -> str:
    """A message on one line (validation errors span several)."""
    return " ".join(str(value).split())
