"""Serve the deployments of ``infra/prefect.yaml`` on this machine, with their schedules.

``evenflow serve`` reads the file (``evenflow.ops.deployments``: records and checks without
Prefect), loads each flow from its entrypoint (``flows/score.py:score_batch`` is imported as
``flows.score``, so a served run finds its flow from any working directory), checks its parameters
against the flow and serves the deployments with ``prefect.serve``: the runner registers them with
the Prefect API, creates the scheduled runs and executes each run in a subprocess here. Relative
paths in parameters are relative to the folder ``evenflow serve`` runs in, as for every evenflow
command (the project root).
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefect import Flow
from prefect import serve as prefect_serve
from prefect.client.schemas.schedules import CronSchedule
from prefect.deployments.runner import RunnerDeployment
from prefect.exceptions import ParameterTypeError
from prefect.schedules import Cron
from prefect.settings import PREFECT_API_URL
from prefect.types.entrypoint import EntrypointType
from pydantic import ValidationError

from evenflow.errors import ConfigError
from evenflow.ops.deployments import (
    DEFAULT_FILE,
    DeploymentSpec,
    check_signature,
    entrypoint_module,
    entrypoint_place,
    one_line,
    parameters_place,
    read_project,
    select,
)

__all__ = [
    "DEFAULT_FILE",
    "ServedDeployment",
    "api_url",
    "check_parameters",
    "check_schedule",
    "load_deployments",
    "load_flow",
    "serve",
]


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


def check_schedule(cron: str, timezone: str | None) -> None:
    """Prefect's own check of a cron schedule (croniter, IANA zones), as one plain error."""
    try:
        CronSchedule(cron=cron, timezone=timezone)
    except ValidationError as exc:
        raise ValueError("; ".join(str(e["msg"]) for e in exc.errors())) from None


def load_deployments(path: Path, only: Sequence[str] = ()) -> list[ServedDeployment]:
    """Read the file, load each selected flow from its entrypoint and check its parameters.

    Raises:
        ConfigError: an invalid file, unknown names in ``only``, an entrypoint that does not load
            a flow, or parameters that do not fit the flow's signature.
    """
    project = read_project(path, check_schedule)
    served = []
    for spec in select(project, only, source=path):
        flow = load_flow(spec, source=path)
        check_parameters(flow, spec, source=path)
        served.append(ServedDeployment(spec=spec, flow=flow))
    return served


def load_flow(spec: DeploymentSpec, *, source: Path) -> Flow[..., Any]:
    """Import the flow an entrypoint names.

    Raises:
        ConfigError: the entrypoint is malformed, its module does not import, or it names no flow.
    """
    module_name, function = entrypoint_module(spec, source=source)
    where = entrypoint_place(spec, source)
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
    check_signature(inspect.signature(flow.fn), spec, source=source)
    try:
        flow.validate_parameters(dict(spec.parameters))
    except ParameterTypeError as exc:
        raise ConfigError(
            f"{parameters_place(spec, source)}: parameters do not fit the flow: {one_line(exc)}"
        ) from None


def api_url() -> str | None:
    """The Prefect API this process talks to, or None for Prefect's ephemeral server."""
    value = PREFECT_API_URL.value()
    return str(value) if value else None


def serve(deployments: Sequence[ServedDeployment]) -> None:
    """Register the deployments and run their scheduled and on-demand runs here (blocks)."""
    prefect_serve(*(d.to_runner() for d in deployments), print_starting_message=False)
