"""The training flow end to end on a small real sample, and bad batches that must stop it early."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
from pathlib import Path

import mlflow.pyfunc
import pandas as pd
import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from evenflow.assess.mitigation import ThresholdPolicy
from evenflow.cli.main import app
from evenflow.config.settings import EvenflowSettings
from evenflow.contracts import suite as contracts
from evenflow.errors import GateFailed, ValidationFailed, VersioningError
from evenflow.govern import lineage
from evenflow.usecases.reproduce import reproduce
from flows.train_and_register import train_and_register
from tasks import caching
from tests.conftest import REPO_ROOT, assert_lineage_tags, sample_params

pytestmark = pytest.mark.slow


def _client(project: Path) -> MlflowClient:
    uri = EvenflowSettings(project_root=project).tracking_uri
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def test_flow_registers_a_candidate_with_lineage(project: Path, adult_sample_path: Path) -> None:
    params = sample_params(adult_sample_path)

    version = train_and_register(params)

    client = _client(project)
    model_version = client.get_model_version_by_alias("adult", "candidate")
    assert str(model_version.version) == version.version
    run = client.get_run(version.run_id)
    manifest = client.download_artifacts(version.run_id, "data/manifest.json", str(project / "dl"))
    data_md5 = pd.read_json(manifest, typ="series")["data_md5"]
    assert_lineage_tags(params, data_md5, run.data.tags, model_version.tags)
    for tags in (run.data.tags, model_version.tags):
        assert tags["evenflow.git_dirty"] in {"true", "false"}
        assert tags["evenflow.flow_run_id"]
    assert data_md5.endswith(".dir")
    assert run.info.status == "FINISHED"
    assert 0.8 < run.data.metrics["test_roc_auc"] <= 1.0
    assert "champion" not in client.get_registered_model("adult").aliases
    artifacts = {a.path for a in client.list_artifacts(version.run_id)}
    assert {"validation", "data", "reports", "predictions", "training", "explanations"} <= artifacts
    assert {"gate", "model_card"} <= artifacts
    card = [a.path for a in client.list_artifacts(version.run_id, "model_card")]
    assert {"model_card/model_card.html", "model_card/model_card.md"} <= set(card)
    assert "model_card/model_card.html" in model_version.description
    assert model_version.tags["evenflow.gate"] == "passed"

    predictions = pd.read_parquet(
        client.download_artifacts(version.run_id, "predictions", str(project / "p"))
    )
    assert {"_row_id", "label", "score", "sex", "race"} <= set(predictions.columns)
    model = mlflow.pyfunc.load_model("models:/adult@candidate")
    raw = pd.read_csv(adult_sample_path)
    scored = model.predict(raw.drop(columns=["income", "split"]).head(20))
    assert list(scored.columns) == ["score", "prediction"]
    assert scored["score"].between(0, 1).all()
    # The model carries code, never data: the built-in example stays out of its code/ folder.
    code = Path(client.download_artifacts(version.run_id, "model/code", str(project / "code")))
    shipped = [f for f in code.rglob("*") if f.is_file()]
    assert shipped and all(f.suffix == ".py" for f in shipped), sorted(map(str, shipped))[:5]


def _corrupt(path: Path, out: Path, how: str) -> Path:
    frame = pd.read_csv(path)
    if how == "missing column":
        frame = frame.drop(columns=["hours-per-week"])
    elif how == "wrong type":
        frame["age"] = frame["age"].astype(str) + " years"
    elif how == "out of range":
        frame.loc[frame.index[3], "age"] = 420
    elif how == "unknown label":
        frame.loc[frame.index[5], "income"] = "maybe"
    frame.to_csv(out, index=False)
    return out


@pytest.mark.parametrize(
    ("how", "expectation", "column"),
    [
        ("missing column", "expect_column_to_exist", "hours-per-week"),
        ("wrong type", "expect_column_values_to_be_in_type_list", "age"),
        ("out of range", "expect_column_values_to_be_between", "age"),
        ("unknown label", "expect_column_values_to_be_in_set", "income"),
    ],
)
def test_bad_batch_stops_before_training_and_registers_nothing(
    project: Path, adult_sample_path: Path, tmp_path: Path, how: str, expectation: str, column: str
) -> None:
    settings = EvenflowSettings()
    clean = sample_params(adult_sample_path)
    suite = contracts.infer_suite(pd.read_csv(adult_sample_path), clean.dataset)
    contracts.write_suite(suite, settings.expectations_dir / "adult.json")
    bad_path = _corrupt(adult_sample_path, tmp_path / "bad.csv", how)
    before = bad_path.read_bytes()

    with pytest.raises(ValidationFailed) as failure:
        train_and_register(sample_params(bad_path))

    message = str(failure.value)
    assert any(expectation in line and f"'{column}'" in line for line in failure.value.failures), (
        message
    )
    assert bad_path.read_bytes() == before
    assert not list(settings.data_root.glob("adult/*/shards-*")), (
        "sharded despite failed validation"
    )
    client = _client(project)
    assert client.search_registered_models() == []
    runs = client.search_runs([client.get_experiment_by_name("adult").experiment_id])
    assert [r.info.status for r in runs] == ["FAILED"]
    assert "validation" in {a.path for a in client.list_artifacts(runs[0].info.run_id)}


def test_model_failing_its_gates_is_registered_without_candidate(
    project: Path, adult_sample_path: Path
) -> None:
    params = sample_params(adult_sample_path, gates__min_auc=0.99)

    with pytest.raises(GateFailed) as failure:
        train_and_register(params)

    assert any(line.startswith("min_auc:") and "0.99" in line for line in failure.value.failures)
    client = _client(project)
    [version] = client.search_model_versions("name='adult'")
    assert version.tags["evenflow.gate"] == "failed"
    assert version.tags["evenflow.gate_failed"] == "min_auc"
    assert "candidate" not in client.get_registered_model("adult").aliases
    assert "FAILED its gates" in version.description
    assert client.get_run(version.run_id).info.status == "FAILED"


@pytest.mark.parametrize("sensitive_as_features", [True, False])
def test_threshold_mitigation_is_applied_by_the_registered_model(
    project: Path, adult_sample_path: Path, sensitive_as_features: bool
) -> None:
    params = sample_params(
        adult_sample_path,
        mitigation__method="threshold",
        mitigation__sensitive_column="sex",
        dataset__sensitive_as_features=sensitive_as_features,
    )

    version = train_and_register(params)

    client = _client(project)
    policy_file = client.download_artifacts(
        version.run_id, "reports/threshold_policy.json", str(project / "dl")
    )
    policy = ThresholdPolicy.from_json(Path(policy_file).read_text())
    model = mlflow.pyfunc.load_model(f"models:/adult/{version.version}")
    rows = pd.read_csv(adult_sample_path).drop(columns=["income", "split"]).head(200)
    with_group = model.predict(rows)
    expected = policy.decide(with_group["score"].to_numpy(), rows["sex"], seed=0)
    assert (with_group["prediction"].to_numpy() == expected).all()
    plain = (with_group["score"] >= 0.5).astype(int).to_numpy()
    without_group = model.predict(rows.drop(columns=["sex"]).assign(sex=None))
    assert set(policy.groups) == {"Female", "Male"}
    assert (with_group["prediction"].to_numpy() != plain).any() or policy.groups[
        "Female"
    ] == policy.groups["Male"]
    assert len(without_group) == len(rows)


def test_compare_mitigations_tables_every_method_with_intervals(
    project: Path, adult_sample_path: Path
) -> None:
    params = sample_params(
        adult_sample_path,
        mitigation__reductions_max_rows=800,
        mitigation__reductions_n_estimators=20,
        mitigation__reductions_max_iter=10,
    )

    version = train_and_register(params, compare_mitigations=True)

    client = _client(project)
    table_file = client.download_artifacts(
        version.run_id, "mitigations/mitigations.json", str(project / "dl")
    )
    rows = {row["method"]: row for row in json.loads(Path(table_file).read_text())["rows"]}
    assert list(rows) == ["none", "reweighing", "threshold", "reductions"]
    for row in rows.values():
        assert 0.5 < row["accuracy"] <= 1.0
        assert row["dpd_low[sex]"] <= row["dpd[sex]"] <= row["dpd_high[sex]"]
        assert row["eod_low[sex]"] <= row["eod[sex]"] <= row["eod_high[sex]"]
    assert rows["none"]["auc"] > 0.8 and rows["threshold"]["auc"] is None
    card = client.download_artifacts(version.run_id, "model_card/model_card.md", str(project / "c"))
    text = Path(card).read_text()
    assert "reweighing" in text and "reductions" in text


def test_reproduce_rebuilds_identical_predictions_then_refuses_without_data(
    project: Path, adult_sample_path: Path, tmp_path: Path
) -> None:
    version = train_and_register(sample_params(adult_sample_path))
    settings = EvenflowSettings()

    result = reproduce(settings, version.run_id)

    assert result.identical, result
    assert result.n_rows == len(pd.read_csv(adult_sample_path).query("split == 'test'"))
    cli = CliRunner()
    assert cli.invoke(app, ["reproduce", version.run_id]).exit_code == 0
    refused = cli.invoke(
        app, ["promote", "adult", version.version, "--reviewer", "r", "--note", "n"]
    )
    assert refused.exit_code == 2 and "review" in refused.output
    assert cli.invoke(app, ["review", "adult"]).exit_code == 0
    promoted = cli.invoke(
        app, ["promote", "adult", version.version, "--reviewer", "r", "--note", "ok"]
    )
    assert promoted.exit_code == 0, promoted.output
    assert _client(project).get_model_version_by_alias("adult", "champion").version == int(
        version.version
    )
    assert "promote" in cli.invoke(app, ["history", "adult"]).output
    assert cli.invoke(app, ["rollback", "adult", "--reviewer", "r", "--note", "n"]).exit_code == 2
    shutil.rmtree(project / ".dvc" / "cache")
    shutil.rmtree(tmp_path / "dvc-remote")
    with pytest.raises(VersioningError, match="neither the DVC cache nor the remote"):
        reproduce(settings, version.run_id)


def test_rerun_reuses_unchanged_stages_and_reruns_what_a_change_affects(
    project: Path, adult_sample_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="evenflow.cache")
    params = sample_params(adult_sample_path)
    first = train_and_register(params)
    caplog.clear()

    # force: register again even if the checkout is clean, so the second run has its own metrics.
    second = train_and_register(params, force=True)

    client = _client(project)
    seconds = [client.get_run(v.run_id).data.metrics["train_seconds"] for v in (first, second)]
    assert seconds[0] == seconds[1], "training ran again although nothing changed"
    for stage_name in ("validate", "shard", "train", "evaluate", "explain"):
        assert f"cache {stage_name}: data, parameters and code unchanged" in caplog.text
    assert {"reports", "explanations", "validation"} <= {
        a.path for a in client.list_artifacts(second.run_id)
    }
    caplog.clear()

    deeper = sample_params(adult_sample_path, model__max_depth=3)
    third = train_and_register(deeper)

    assert "cache shard: data, parameters and code unchanged" in caplog.text
    assert "cache train: miss, changed since last run: outputs, params" in caplog.text
    assert client.get_run(third.run_id).data.metrics["train_seconds"] != seconds[0]


def test_lightgbm_trainer_registers_a_serving_model_that_can_be_rebuilt(
    project: Path, adult_sample_path: Path
) -> None:
    params = sample_params(adult_sample_path, model__trainer="lightgbm")

    version = train_and_register(params)

    client = _client(project)
    run = client.get_run(version.run_id)
    assert 0.8 < run.data.metrics["test_roc_auc"] <= 1.0
    assert run.data.metrics["best_iteration"] < params.model.num_boost_round
    model = mlflow.pyfunc.load_model(f"models:/adult/{version.version}")
    rows = pd.read_csv(adult_sample_path).drop(columns=["income", "split"]).head(50)
    assert model.predict(rows)["score"].between(0, 1).all()
    # The rebuild runs in another process (another hash seed): LightGBM's machine ranks and the
    # best round must not depend on it, so every test score is bit-identical.
    rebuilt = reproduce(EvenflowSettings(), version.run_id)
    assert rebuilt.n_rows == len(pd.read_csv(adult_sample_path).query("split == 'test'"))
    assert rebuilt.identical, rebuilt
    assert rebuilt.max_abs_difference == 0.0


@pytest.fixture
def clean_code_root(project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A git checkout with nothing uncommitted as the runs' code (``evenflow.git_dirty`` false)."""
    root = tmp_path / "code"
    root.mkdir()
    git = ["git", "-c", "user.name=evenflow", "-c", "user.email=evenflow@example.com"]
    (root / "README").write_text("the code of these runs\n")
    for args in (["init", "-q"], ["add", "README"], ["commit", "-q", "-m", "code"]):
        subprocess.run([*git, *args], cwd=root, check=True, capture_output=True)
    monkeypatch.setenv("EVENFLOW_CODE_ROOT", str(root))
    assert not lineage.code_version(root).dirty
    return root


def _register_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if "register:" in line]


def test_rerun_with_nothing_changed_registers_nothing_until_forced(
    project: Path,
    clean_code_root: Path,
    adult_sample_path: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.INFO, logger="evenflow.cache")
    params = sample_params(adult_sample_path)
    first = train_and_register(params)
    caplog.clear()

    second = train_and_register(params)

    client = _client(project)
    assert [v.version for v in client.search_model_versions("name='adult'")] == [int(first.version)]
    assert (second.version, second.run_id, second.existing) == (first.version, first.run_id, True)
    assert "candidate" in second.aliases
    assert (
        f"✔ register: nothing new: adult version {first.version} already holds this data, "
        "parameters, code and environment (use --force to register anyway)"
    ) in caplog.text, _register_lines(caplog.text)
    experiment = client.get_experiment_by_name("adult").experiment_id
    [pointing] = client.search_runs(
        [experiment], f"tags.`evenflow.existing_version` = 'models:/adult/{first.version}'"
    )
    assert pointing.info.run_id != first.run_id and pointing.info.status == "FINISHED"
    assert pointing.data.tags["evenflow.git_dirty"] == "false"

    # A code edit the stage reaches only indirectly (evenflow.pipeline → training → boosters), seen
    # through a copy of the package the cache reads, re-runs training and names the module.
    copy = tmp_path / "src"
    shutil.copytree(
        REPO_ROOT / "evenflow", copy / "evenflow", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(REPO_ROOT / "uv.lock", copy / "uv.lock")
    boosters = copy / "evenflow" / "training" / "boosters.py"
    boosters.write_text(boosters.read_text() + "\n# edited: same behaviour, other bytes\n")
    monkeypatch.setattr(caching, "_source_root", lambda entry: copy)
    caplog.clear()

    forced = train_and_register(params, force=True)

    [train_line] = [line for line in caplog.text.splitlines() if "cache train:" in line]
    assert "cache train: miss, code changed: " in train_line
    assert "evenflow/training/boosters.py" in train_line
    assert not forced.existing and int(forced.version) == int(first.version) + 1
    assert len(client.search_model_versions("name='adult'")) == 2

    # A build whose version failed its gates fails again, the same way, and adds no version.
    strict = sample_params(adult_sample_path, gates__min_auc=0.99)
    with pytest.raises(GateFailed):
        train_and_register(strict)
    failed_version = len(client.search_model_versions("name='adult'"))
    with pytest.raises(GateFailed) as again:
        train_and_register(strict)
    assert f"adult version {failed_version} failed its gates" in str(again.value)
    assert any(line.startswith("min_auc:") for line in again.value.failures)
    assert len(client.search_model_versions("name='adult'")) == failed_version == 3
