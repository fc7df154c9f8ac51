"""The monitoring flow end to end: a champion trained on the sample, then two new batches."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml
from mlflow import MlflowClient
from typer.testing import CliRunner

from evenflow.cli.main import app
from evenflow.config.monitor import MonitorParams
from evenflow.config.settings import EvenflowSettings
from evenflow.contracts import suite as contracts
from evenflow.records import ModelVersionRef
from flows.monitor import monitor_batch
from flows.train_and_register import train_and_register
from tests.conftest import make_champion, sample_params
from tests.monitoring_inputs import plant_adult_drift

pytestmark = pytest.mark.slow

BATCH_ROWS = 4_000


def _client(project: Path) -> MlflowClient:
    uri = EvenflowSettings(project_root=project).tracking_uri
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _champion(
    client: MlflowClient, sample_path: Path, adult_frame: pd.DataFrame
) -> tuple[ModelVersionRef, str]:
    """Train on the sample under the contract of all of Adult; make the version champion."""
    settings = EvenflowSettings()
    params = sample_params(sample_path)
    suite = contracts.infer_suite(adult_frame, params.dataset)
    for expectation in suite["expectations"]:
        if expectation["type"] == "expect_table_row_count_to_be_between":
            expectation["kwargs"]["min_value"] = 1_000
    contracts.write_suite(suite, settings.expectations_dir / "adult.json")
    champion = train_and_register(params)
    make_champion(settings, "adult", champion.version)
    return champion, client.get_run(champion.run_id).data.tags["evenflow.data_md5"]


def _new_rows(adult_frame: pd.DataFrame, sample_path: Path) -> pd.DataFrame:
    """Test-split rows the champion never saw (neither trained nor evaluated on)."""
    seen = pd.read_csv(sample_path)
    test = adult_frame[adult_frame["split"] == "test"]
    unseen = test.merge(seen, how="left", indicator=True).query("_merge == 'left_only'")
    return unseen.drop(columns="_merge").sample(n=BATCH_ROWS, random_state=5)


def test_monitoring_passes_a_clean_batch_and_fails_a_drifted_one(
    project: Path, adult_sample_path: Path, adult_frame: pd.DataFrame, tmp_path: Path
) -> None:
    client = _client(project)
    champion, data_md5 = _champion(client, adult_sample_path, adult_frame)
    rows = _new_rows(adult_frame, adult_sample_path)

    # (a) an undrifted batch without labels (nor the split column) passes.
    clean = tmp_path / "clean.parquet"
    rows.drop(columns=["income", "split"]).to_parquet(clean, index=False)
    report = monitor_batch(MonitorParams(dataset="adult", data=clean))

    assert report.passed, report.breaches
    assert report.drift.drifted_columns == ()
    assert not report.labelled and report.performance is None
    assert any("income" in line for line in report.skipped_expectations)
    assert report.validation is not None and report.validation.success
    experiment = client.get_experiment_by_name("adult-monitoring")
    assert experiment is not None
    [run] = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED"
    assert run.data.tags["evenflow.reference_data_md5"] == data_md5
    assert run.data.tags["evenflow.model_version"] == champion.version
    assert run.data.tags["evenflow.batch_md5"] == report.batch.md5
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "monitoring")}
    assert {"monitoring/monitoring.html", "monitoring/monitoring.json"} <= artifacts
    assert "monitoring/drift.html" in artifacts
    assert run.data.metrics["drift.share"] == 0.0

    # (b) a labelled batch with two planted shifts fails, through the CLI, with exit code 1.
    path = tmp_path / "drifted.csv"
    plant_adult_drift(rows).to_csv(path, index=False)

    result = CliRunner().invoke(app, ["monitor", "--data", str(path), "--name", "adult"])

    assert result.exit_code == 1, result.output
    assert "age: wasserstein" in result.output and "workclass: psi" in result.output
    runs = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time DESC"])
    failed = runs[0]
    assert failed.info.status == "FAILED"
    assert failed.data.tags["evenflow.drifted_columns"] == "age,workclass"
    local = client.download_artifacts(
        failed.info.run_id, "monitoring/monitoring.json", str(tmp_path / "dl")
    )
    logged = json.loads(Path(local).read_text())
    assert logged["passed"] is False and logged["labelled"] is True
    checks = {c["column"]: c for c in logged["drift"]["columns"]}
    assert checks["age"]["statistic"] == "wasserstein" and checks["age"]["drifted"]
    assert checks["workclass"]["statistic"] == "psi" and checks["workclass"]["drifted"]
    auc = {m["name"]: m for m in logged["performance"]["metrics"]}["roc_auc"]
    logged_auc = client.get_run(champion.run_id).data.metrics["test_roc_auc"]
    assert auc["champion"] == pytest.approx(logged_auc)
    assert auc["difference"] == pytest.approx(auc["value"] - auc["champion"])
    groups = {(g["column"], g["group"]) for g in logged["performance"]["groups"]}
    assert {("sex", "Female"), ("sex", "Male")} <= groups
    assert any(s["champion"] is not None for s in logged["performance"]["fairness"])
    fairness = client.list_artifacts(failed.info.run_id, "monitoring/fairness")
    assert "monitoring/fairness/fairness.html" in {a.path for a in fairness}

    _drift_retrains_before_failing(client, adult_sample_path, path, champion, tmp_path)


def _drift_retrains_before_failing(
    client: MlflowClient,
    sample_path: Path,
    drifted: Path,
    champion: ModelVersionRef,
    tmp_path: Path,
) -> None:
    """(c) With a training config, drift trains a new candidate first; the failure names it."""
    config = tmp_path / "retrain.yaml"
    # Another seed: the same data, parameters and clean commit would be the champion's own build,
    # which a re-run does not register twice. Per-group non-regression against that champion would
    # then compare two seeds on ~600 test rows (noise), so this retrain checks the other gates only.
    retrain = sample_params(sample_path, model__seed=7, gates__non_regression_metrics=[])
    config.write_text(yaml.safe_dump(retrain.model_dump(mode="json")))

    retrained = CliRunner().invoke(
        app, ["monitor", "--data", str(drifted), "--name", "adult", "--retrain-config", str(config)]
    )

    assert retrained.exit_code == 1, retrained.output
    assert "retraining triggered: adult version 2" in retrained.output
    candidate = client.get_model_version_by_alias("adult", "candidate")
    assert str(candidate.version) == "2"
    assert str(client.get_model_version_by_alias("adult", "champion").version) == champion.version
