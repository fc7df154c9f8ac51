"""What an operator sees in the Prefect UI: each stage's artifacts and the cache reasons in the logs.

Read back through Prefect's own client from the session's test server, and checked against what
the run recorded in MLflow (not against numbers written here).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any
from uuid import UUID

import pandas as pd
import pytest
from mlflow import MlflowClient
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    LogFilter,
    LogFilterFlowRunId,
)
from prefect.logging.handlers import APILogWorker
from prefect.states import State

from evenflow import layout
from evenflow.assess.fairness import FairnessReport
from evenflow.config.settings import EvenflowSettings
from evenflow.contracts import suite as contracts
from evenflow.records import ModelVersionRef
from evenflow.reports import prefect_tables as tables
from evenflow.reports.render import num
from flows.train_and_register import train_and_register
from tasks import artifacts
from tests.conftest import sample_params

pytestmark = pytest.mark.slow

STAGES = (
    artifacts.VALIDATION,
    artifacts.SHARDS,
    artifacts.METRICS,
    artifacts.FAIRNESS,
    artifacts.GATE,
    artifacts.MODEL_VERSION,
)
REUSED = "cache train: data, parameters and code unchanged, reusing the last result"


def _run(params: Any) -> tuple[UUID, ModelVersionRef]:
    state: State[ModelVersionRef] = train_and_register(params, return_state=True)
    version = state.result()
    assert isinstance(version, ModelVersionRef)
    return state.state_details.flow_run_id, version  # type: ignore[return-value]


def _artifacts(flow_run_id: UUID) -> dict[str, Any]:
    """The flow run's artifacts by key."""
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
    return {a.key: a for a in found if a.key}


def _log_lines(flow_run_id: UUID) -> list[str]:
    """The flow run's log messages as the Prefect UI lists them (queued lines sent first)."""
    APILogWorker.drain_all(timeout=30)
    with get_client(sync_client=True) as client:
        logs = client.read_logs(
            log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])), limit=200
        )
    return [log.message for log in logs]


def test_each_stage_publishes_its_artifact_and_the_cache_reasons_reach_the_run_logs(
    project: Path, adult_sample_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    params = sample_params(adult_sample_path)

    flow_run_id, version = _run(params)

    published = _artifacts(flow_run_id)
    assert {artifacts.key("adult", stage) for stage in STAGES} <= set(published)
    uri = EvenflowSettings(project_root=project).tracking_uri
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    run = client.get_run(version.run_id)

    # Metrics: every test metric of the MLflow run, as the card writes it, with its interval.
    metric_rows = json.loads(published["adult-metrics"].data)
    shown = {row["metric"]: row for row in metric_rows}
    logged = {
        k.removeprefix("test_"): v for k, v in run.data.metrics.items() if k.startswith("test_")
    }
    assert shown["roc_auc"]["value"] == num(logged["roc_auc"])
    assert (
        shown["roc_auc"]["interval"]
        == f"[{num(logged['roc_auc_low'])}, {num(logged['roc_auc_high'])}]"
    )
    for name, row in shown.items():
        assert row["value"] == num(logged[name]), name

    # Fairness: every group of every slice of the run's own fairness report, n and rates.
    folder = client.download_artifacts(version.run_id, layout.FAIRNESS, str(project / "dl"))
    fairness = FairnessReport.model_validate_json(Path(folder).read_text(encoding="utf-8"))
    fairness_rows = json.loads(published["adult-fairness"].data)
    assert fairness_rows == tables.fairness_rows(fairness)
    sex = [row for row in fairness_rows if row["slice"] == "sex"]
    assert sum(int(row["n"].replace(",", "")) for row in sex) == fairness.n_rows
    male = fairness.slice("sex").groups[
        [g.name for g in fairness.slice("sex").groups].index("Male")
    ]
    assert male.selection_rate is not None
    [male_row] = [row for row in sex if row["group"] == "Male"]
    assert male_row["selection rate"].startswith(num(male.selection_rate.value))

    # Gate, data and validation: the verdict the run's tag records, its DVC md5, the suite.
    registered = client.get_model_version("adult", version.version)
    gate = published["adult-gate"].data
    assert gate.startswith("### Gate: PASSED") == (registered.tags[layout.GATE_TAG] == "passed")
    assert "| min_auc |" in gate
    assert run.data.tags[layout.DATA_MD5_TAG] in published["adult-shards"].data
    validation = {
        row["item"]: row["value"] for row in json.loads(published["adult-validation"].data)
    }
    assert validation["outcome"] == "passed"

    # The link opens the version this run registered, in the UI `evenflow ui` serves.
    link = published["adult-model-version"]
    page = f"{layout.LOCAL_UI}/{layout.version_page('adult', version.version)}"
    assert link.data.endswith(f"({page})"), link.data
    assert registered.run_id == version.run_id
    assert "evenflow ui" in link.description

    caplog.clear()
    rerun_id, rerun = _run(params)

    # The second run reuses the cached stages: the reason is in its logs in the Prefect UI, once,
    # and once on the console.
    lines = _log_lines(rerun_id)
    assert lines.count(REUSED) == 1, [line for line in lines if line.startswith("cache ")]
    assert sum(REUSED in record.getMessage() for record in caplog.records) == 1
    again = _artifacts(rerun_id)
    assert json.loads(again["adult-metrics"].data) == metric_rows
    assert layout.version_page("adult", rerun.version) in again["adult-model-version"].data


def test_a_batch_that_breaks_its_contract_shows_why_on_the_artifacts_tab(
    project: Path, adult_sample_path: Path, tmp_path: Path
) -> None:
    suite = contracts.infer_suite(
        pd.read_csv(adult_sample_path), sample_params(adult_sample_path).dataset
    )
    contracts.write_suite(suite, EvenflowSettings().expectations_dir / "adult.json")
    frame = pd.read_csv(adult_sample_path)
    frame.loc[frame.index[3], "age"] = 420
    bad = tmp_path / "bad.csv"
    frame.to_csv(bad, index=False)

    state = train_and_register(sample_params(bad), return_state=True)

    assert state.is_failed()
    published = _artifacts(state.state_details.flow_run_id)  # type: ignore[arg-type]
    assert artifacts.key("adult", artifacts.SHARDS) not in published, "sharded a failed batch"
    validation = published[artifacts.key("adult", artifacts.VALIDATION)]
    rows = {row["item"]: row["value"] for row in json.loads(validation.data)}
    assert rows["outcome"] == "FAILED" and rows["expectations failed"] == "1"
    assert rows["expectations run"] == str(len(suite["expectations"]))
    [failure] = [item for item in rows if item.startswith("failed: ")]
    assert failure == "failed: expect_column_values_to_be_between [age]"
    assert "420" in rows[failure]
