"""Open and close the flow run's MLflow run."""

from __future__ import annotations

from collections.abc import Mapping

from prefect import task
from prefect.runtime import flow_run

from evenflow import layout
from evenflow.config.run import RunParams
from evenflow.config.settings import EvenflowSettings
from evenflow.govern import lineage
from evenflow.ops import owners
from evenflow.registry import store as registry


@task(name="start-tracking")
def start_tracking(params: RunParams, settings: EvenflowSettings) -> str:
    """Create the MLflow run with code lineage and parameters; return its id."""
    code = lineage.code_version(settings.code_root)
    tags = lineage.lineage_tags("pending", code, params.params_hash(), str(flow_run.get_id()))
    run_name = f"{params.dataset.name}-{str(flow_run.get_name() or 'local')}"
    run_id = open_run(settings, params.dataset.name, run_name, tags)
    registry.log_params(settings, run_id, params.recorded())
    registry.log_json(settings, run_id, params.recorded(), layout.RUN_PARAMS)
    if code.dirty:
        registry.log_json(settings, run_id, {"diff": code.diff}, layout.GIT_DIFF)
    return run_id


@task(name="finish-tracking")
def finish_tracking(settings: EvenflowSettings, run_id: str, *, failed: bool) -> None:
    """Close the MLflow run as FINISHED or FAILED."""
    registry.finish_run(settings, run_id, failed=failed)
    owners.release_run(settings, run_id)


def open_run(
    settings: EvenflowSettings, experiment: str, run_name: str, tags: Mapping[str, str]
) -> str:
    """Start an MLflow run owned by this process: if it is killed, the next command closes the run."""
    run_id = registry.start_run(settings, experiment, run_name, tags)
    owners.claim_run(settings, run_id)
    return run_id
