"""The one error handler: our errors in plain words, everything else in one line and a log file."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
import typer
import xgboost as xgb
from typer.testing import CliRunner

from evenflow.cli.handling import VERBOSE_ENV, handled
from evenflow.cli.main import app
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


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


#: A server variable → the address it is pointed at (a closed port) and how the error names it.
SERVERS = {
    "EVENFLOW_TRACKING_URI": ("http://127.0.0.1:{port}", "the MLflow tracking server"),
    "PREFECT_API_URL": ("http://127.0.0.1:{port}/api", "the Prefect API"),
    "EVENFLOW_DASK_ADDRESS": ("tcp://127.0.0.1:{port}", "the Dask scheduler"),
}


@pytest.mark.parametrize("variable", sorted(SERVERS))
def test_a_server_that_does_not_answer_is_named_in_seconds(
    variable: str, project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    value, named = SERVERS[variable]
    data = tmp_path / "t.csv"
    data.write_text("x,y,s\n" + "".join(f"{i},{i % 2},{'ab'[i % 4 // 2]}\n" for i in range(40)))
    monkeypatch.setenv(variable, value.format(port=closed_port()))
    flags = ["--target", "y", "--positive-label", "1", "--sensitive", "s"]
    started = time.perf_counter()
    result = RUNNER.invoke(app, ["run", "--data", str(data), *flags])
    assert result.exit_code == 3, result.output
    [line] = errors(result.output)
    assert named in line and variable in line
    assert time.perf_counter() - started < 10
    assert not (project / "mlruns").exists()
