"""The command line: flags reach the params models; a data team's validate exits 0 or 1."""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from evenflow.cli.main import app
from evenflow.config.run import RunParams
from evenflow.config.score import ScoreParams
from evenflow.config.settings import EvenflowSettings
from evenflow.data.datasets import content_md5, read_table
from evenflow.errors import ConfigError
from evenflow.records import ModelVersionRef
from evenflow.usecases.score import DATASET_PARAM, resolve_model, scoring_dataset

RUNNER = CliRunner()
BIN = Path(sys.executable).parent


def test_run_with_data_but_no_target_names_the_missing_flags(tmp_path: Path) -> None:
    data = tmp_path / "loans.csv"
    pd.DataFrame({"x": [1, 2], "y": [0, 1], "s": ["a", "b"]}).to_csv(data, index=False)
    result = RUNNER.invoke(app, ["run", "--data", str(data)])
    assert result.exit_code == 2
    assert "--target, --positive-label, --sensitive" in result.output


def test_expectations_init_then_validate_passes_and_fails(
    project: Path, adult_sample_path: Path, tmp_path: Path
) -> None:
    flags = ["--target", "income", "--positive-label", ">50K", "--sensitive", "sex,race"]
    init = RUNNER.invoke(
        app, ["expectations", "init", "--data", str(adult_sample_path), "--name", "adult", *flags]
    )
    assert init.exit_code == 0, init.output
    assert (project / "expectations" / "adult.json").is_file()
    again = RUNNER.invoke(
        app, ["expectations", "init", "--data", str(adult_sample_path), "--name", "adult", *flags]
    )
    assert again.exit_code == 2 and "--force" in again.output

    good = RUNNER.invoke(app, ["validate", str(adult_sample_path), "--name", "adult"])
    assert good.exit_code == 0, good.output
    bad_frame = pd.read_csv(adult_sample_path)
    bad_frame.loc[bad_frame.index[0], "age"] = 420
    bad = tmp_path / "bad.csv"
    bad_frame.to_csv(bad, index=False)
    failed = RUNNER.invoke(app, ["validate", str(bad), "--name", "adult"])
    assert failed.exit_code == 1
    assert "FAIL  expect_column_values_to_be_between [age]" in failed.output


def test_synth_writes_parts_that_the_loader_reads_as_one_dataset(tmp_path: Path) -> None:
    out = tmp_path / "synth"
    result = RUNNER.invoke(
        app,
        ["synth", "--rows", "3000", "--out", str(out), "--chunk-rows", "1000", "--features", "12"],
    )
    assert result.exit_code == 0, result.output
    assert len(list(out.glob("part-*.parquet"))) == 3
    frame = read_table(out)
    assert len(frame) == 3000
    assert set(frame["income"]) == {">50K", "<=50K"}
    assert len(frame.columns) == 13  # 12 model inputs and the target
    before = content_md5(out)
    (out / "part-00001.parquet").write_bytes(b"changed")
    assert content_md5(out) != before, "a folder's hash must follow its parts"


def test_run_shows_cache_reasons_on_the_console_but_not_other_info(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect.logging.handlers import PrefectConsoleHandler

    import flows.train_and_register as flow_module

    calls: list[bool] = []

    def fake_flow(
        params: RunParams, compare_mitigations: bool = False, force: bool = False
    ) -> ModelVersionRef:
        calls.append(force)
        logging.getLogger("evenflow.cache").info("cache train: miss, code changed: x.py")
        logging.getLogger("evenflow.training").info("library chatter stays hidden")
        return ModelVersionRef(name="adult", version="3", run_id="r3", existing=not force)

    monkeypatch.setattr(flow_module, "train_and_register", fake_flow)
    monkeypatch.setattr(os, "environ", dict(os.environ))  # the CLI's setdefaults stay in this test
    console = [h for h in logging.getLogger().handlers if isinstance(h, PrefectConsoleHandler)]
    assert console, "Prefect's console handler is not on the root logger"
    cache_logger = logging.getLogger("evenflow.cache")
    # The handler prints through its rich console: point that console's file at a buffer.
    level, files = cache_logger.level, [h.console.file for h in console]
    shown = io.StringIO()
    try:
        for handler in console:
            handler.console.file = shown
        skipped = RUNNER.invoke(app, ["run"])
        forced = RUNNER.invoke(app, ["run", "--force"])
    finally:
        for handler, file in zip(console, files, strict=True):
            handler.console.file = file
        cache_logger.setLevel(level)

    assert "cache train: miss, code changed: x.py" in shown.getvalue()
    assert "library chatter" not in shown.getvalue()
    assert skipped.exit_code == 0, skipped.output
    assert "nothing new: adult version 3 already holds this build" in skipped.output
    assert "--force" in skipped.output
    assert forced.exit_code == 0 and "registered adult version 3" in forced.output
    assert calls == [False, True]


def _registered(settings: EvenflowSettings, name: str, dataset: str | None) -> str:
    """A version of ``name`` behind ``candidate`` whose run records ``dataset`` (or nothing).

    Not ``champion``: only the promotion ledger sets that alias.
    """
    client = MlflowClient(settings.tracking_uri, registry_uri=settings.tracking_uri)
    experiment = client.create_experiment(f"{name}-training")
    run = client.create_run(experiment)
    if dataset is not None:
        client.log_param(run.info.run_id, DATASET_PARAM, dataset)
    client.create_registered_model(name)
    version = client.create_model_version(name, f"runs:/{run.info.run_id}/model", run.info.run_id)
    client.set_registered_model_alias(name, "candidate", version.version)
    return run.info.run_id


def test_score_takes_the_contract_from_the_models_record_and_refuses_a_different_name(
    project: Path,
) -> None:
    settings = EvenflowSettings()
    _registered(settings, "adult", "adult")
    _registered(settings, "imported", None)

    assert scoring_dataset(settings, "adult@candidate", None) == "adult"
    assert scoring_dataset(settings, "adult@candidate", "adult") == "adult"
    with pytest.raises(
        ConfigError, match="trained under the contract of dataset 'adult'.*--name adult"
    ):
        scoring_dataset(settings, "adult@candidate", "new_rows")
    with pytest.raises(ConfigError, match="records no dataset name.*pass --name"):
        scoring_dataset(settings, "imported@candidate", None)
    assert scoring_dataset(settings, "imported@candidate", "adult") == "adult"

    # The flow's own look-up agrees, for callers that build the parameters themselves.
    out = project / "scores.parquet"
    by_model = ScoreParams.from_mapping(
        {"data": "new_rows.csv", "out": str(out), "model": "adult@candidate"}
    )
    assert by_model.name == "adult"
    assert resolve_model(settings, by_model).dataset == "adult"
    named = ScoreParams.from_mapping(
        {"data": "new_rows.csv", "out": str(out), "model": "adult@candidate", "name": "new_rows"}
    )
    with pytest.raises(ConfigError, match="not 'new_rows'"):
        resolve_model(settings, named)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.slow
def test_serve_model_answers_invocations_from_a_shell_without_the_venv_on_path(
    project: Path, tmp_path: Path
) -> None:
    """``evenflow serve-model`` as pasted into a fresh shell: MLflow's uvicorn is found."""
    from sklearn.linear_model import LogisticRegression

    settings = EvenflowSettings()
    mlflow.set_tracking_uri(settings.tracking_uri)
    mlflow.set_registry_uri(settings.tracking_uri)
    frame = pd.DataFrame({"age": [25.0, 40.0, 55.0, 30.0], "hours": [20.0, 40.0, 60.0, 35.0]})
    model = LogisticRegression().fit(frame, [0, 1, 1, 0])
    with mlflow.start_run():
        mlflow.sklearn.log_model(model, name="model", registered_model_name="toy")
    MlflowClient(settings.tracking_uri).set_registered_model_alias("toy", "candidate", "1")

    port = _free_port()
    log = tmp_path / "serve.log"
    fresh_shell = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "LANG": "C.UTF-8"}
    with log.open("wb") as out:
        server = subprocess.Popen(
            [str(BIN / "evenflow"), "serve-model", "toy@candidate", "--port", str(port)],
            cwd=project,
            env={**fresh_shell, "EVENFLOW_PROJECT_ROOT": str(project)},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        body = json.dumps({"dataframe_records": frame.head(2).to_dict(orient="records")})
        answer = _post_when_up(f"http://127.0.0.1:{port}/invocations", body, server, log)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    assert answer == {"predictions": model.predict(frame.head(2)).tolist()}


def _post_when_up(
    url: str, body: str, server: subprocess.Popen[bytes], log: Path, timeout_s: float = 120
) -> Any:
    request = urllib.request.Request(
        url, data=body.encode(), headers={"Content-Type": "application/json"}
    )
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert server.poll() is None, f"the server exited {server.returncode}:\n{log.read_text()}"
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return json.loads(response.read())
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.5)
    pytest.fail(f"no answer from {url} in {timeout_s:.0f}s:\n{log.read_text()[-3000:]}")
