"""The command line: flags reach the params models; a data team's validate exits 0 or 1."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from evenflow.cli import app
from evenflow.datasets import content_md5, read_table

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
