"""One training run, read back as a reviewer in the MLflow UI reads it (through MlflowClient)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow import MlflowClient

from evenflow.config.settings import EvenflowSettings
from flows.train_and_register import train_and_register
from tests.conftest import sample_params

pytestmark = pytest.mark.slow


class _Recorder(logging.Handler):
    """Keeps every message MLflow logs (its loggers do not propagate to pytest's)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def mlflow_log() -> Iterator[_Recorder]:
    recorder = _Recorder()
    logger = logging.getLogger("mlflow")
    logger.addHandler(recorder)
    yield recorder
    logger.removeHandler(recorder)


def test_a_training_run_is_reviewable_in_the_mlflow_ui(
    project: Path,
    adult_sample_path: Path,
    mlflow_log: _Recorder,
    recwarn: pytest.WarningsRecorder,
) -> None:
    version = train_and_register(sample_params(adult_sample_path))

    uri = EvenflowSettings(project_root=project).tracking_uri
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    run = client.get_run(version.run_id)
    manifest_file = client.download_artifacts(version.run_id, "data/manifest.json", str(project))
    manifest = json.loads(Path(manifest_file).read_text(encoding="utf-8"))

    # The data as a dataset input: the DVC md5 is its digest, the batch its source.
    (dataset,) = run.inputs.dataset_inputs
    assert dataset.dataset.digest == manifest["data_md5"]
    assert str(adult_sample_path) in dataset.dataset.source
    assert all(f'"{f["name"]}"' in dataset.dataset.schema for f in manifest["features"])

    # Fairness figures as metrics with bounds, for every slice.
    metrics = run.data.metrics
    for slice_name in ("sex", "race", "sex_x_race"):
        assert f"fairness.{slice_name}.groups_left_out" in metrics
    eo = "fairness.sex.equalized_odds_difference"
    assert metrics[f"{eo}.low"] <= metrics[eo] <= metrics[f"{eo}.high"]
    bounded = [k.removesuffix(".low") for k in metrics if k.endswith(".low")]
    assert len(bounded) > 20
    assert all(metrics[f"{k}.low"] <= metrics[k] <= metrics[f"{k}.high"] for k in bounded)

    # The gate outcome as a tag and a Markdown description of the run.
    tags = run.data.tags
    assert tags["evenflow.gate"] == "passed"
    note = tags["mlflow.note.content"]
    assert note.startswith("**Gate passed**")
    assert "|---|" in note and manifest["data_md5"] in note

    # The experiment opens on its runs, not on the GenAI overview.
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"

    # The version page: verdict first, tables, and a card link the UI follows.
    description = client.get_model_version("adult", version.version).description
    assert description.startswith("**Gate passed**")
    assert "| metric | value | interval |\n|---|---|---|" in description
    card = f"#/experiments/{run.info.experiment_id}/runs/{version.run_id}/artifacts"
    assert f"({card}/model_card/model_card.html?workflowType=machine_learning)" in description
    assert len(description) <= 5000

    # The model was logged as code: MLflow pickled nothing and said so nowhere.
    said = mlflow_log.messages + [str(w.message) for w in recwarn]
    assert not [m for m in said if "cloudpickle" in m.lower()], said
    model = client.download_artifacts(version.run_id, "model/MLmodel", str(project / "m"))
    assert "evenflow_model.py" in Path(model).read_text(encoding="utf-8")
