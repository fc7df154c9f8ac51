"""The command line: flags reach the params models; a data team's validate exits 0 or 1."""

from __future__ import annotations

import io
import logging
import os
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from evenflow.cli.main import app
from evenflow.config.run import RunParams
from evenflow.data.datasets import content_md5, read_table
from evenflow.records import ModelVersionRef

RUNNER = CliRunner()


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
