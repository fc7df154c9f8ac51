"""The one error handler: our errors in plain words, everything else in one line and a log file."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
import xgboost as xgb
from typer.testing import CliRunner

from evenflow.cli.handling import VERBOSE_ENV, handled
from evenflow.errors import DataError, InfrastructureError

RUNNER = CliRunner()


def app_raising(error: Exception) -> typer.Typer:
    app = typer.Typer()

    def fail() -> None:
        raise error

    app.command()(handled(fail))
    return app


def errors(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("error:")]


@pytest.mark.parametrize(
    ("error", "code", "said"),
    [
        (DataError("t.csv: column 'x' is empty"), 2, "error: t.csv: column 'x' is empty"),
        (InfrastructureError("the local Prefect API did not start"), 3, "did not start"),
        (RuntimeError("boom\nsecond line"), 3, "error: unexpected RuntimeError: boom"),
        (
            xgb.core.XGBoostError("[12:00:00] Ring allreduce small failed"),
            3,
            "the Dask cluster failed after retries",
        ),
    ],
)
def test_one_line_and_an_exit_code_for_each_kind(
    error: Exception, code: int, said: str, project: Path
) -> None:
    result = RUNNER.invoke(app_raising(error), [])
    assert result.exit_code == code
    [line] = errors(result.output)
    assert said in line
    assert "Traceback" not in result.output


def test_an_unexpected_error_keeps_its_traceback_in_a_log_file(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = RUNNER.invoke(app_raising(RuntimeError("boom")), [])
    [log] = (project / ".evenflow" / "logs").glob("error-*.log")
    assert str(log) in result.output
    kept = log.read_text(encoding="utf-8")
    assert "Traceback" in kept and "RuntimeError: boom" in kept
    monkeypatch.setenv(VERBOSE_ENV, "1")
    verbose = RUNNER.invoke(app_raising(RuntimeError("boom")), [])
    assert "Traceback" in verbose.output and "RuntimeError: boom" in verbose.output
