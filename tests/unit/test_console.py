"""The console says only what matters, and the commands it suggests work when pasted.

The filter is the one the CLI puts on Prefect's console handler; the commands are built for a
project whose code lives elsewhere (as in every test) and for one holding its own ``.venv``.
"""

from __future__ import annotations

import logging
import os
import shlex
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from evenflow.cli import environment, ui
from evenflow.cli.main import app
from evenflow.config.settings import EvenflowSettings

RUNNER = CliRunner()


def _record(name: str, level: int, message: str) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, message, None, None)


def test_the_quiet_console_keeps_stage_cache_and_warning_lines_and_each_warning_once() -> None:
    quiet = environment._QuietConsole()
    task = "prefect.task_runs"
    shown = {
        "▶ train: xgboost on local cluster of 2 workers, device cpu": logging.INFO,
        "✔ train: best iteration 15, valid AUC 0.8692 on cpu (6.5s)": logging.INFO,
        "✖ train failed after 1.0s: worker lost": logging.ERROR,
        "cache train: miss, code changed: evenflow/training/boosters.py": logging.INFO,
        "no expectation suite for 'adult': inferred a starter suite": logging.WARNING,
    }
    hidden = {
        "Finished in state Completed()": logging.INFO,
        "Beginning flow run 'straight-labrador' for flow 'train-and-register'": logging.INFO,
        "Starting temporary server on http://127.0.0.1:8039": logging.INFO,
        "round 0: valid AUC 0.8515": logging.INFO,
        "a cache of sorts was warmed": logging.INFO,
    }
    for message, level in shown.items():
        assert quiet.filter(_record(task, level, message)), message
    for message, level in hidden.items():
        assert not quiet.filter(_record(task, level, message)), message

    repeated = "/x/_stats_py.py:7192: RuntimeWarning: divide by zero\n  return a / b"
    assert quiet.filter(_record("py.warnings", logging.WARNING, repeated))
    assert not quiet.filter(_record("py.warnings", logging.WARNING, repeated))
    assert quiet.filter(_record("other.library", logging.WARNING, repeated)), "per logger"


def test_suggested_commands_name_the_venv_from_the_project_root_and_the_root_from_elsewhere(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    venv_bin = project / ".venv" / "bin"
    venv_bin.mkdir(parents=True)
    script = venv_bin / "evenflow"
    script.write_text("#!/bin/sh\n", encoding="utf-8")
    monkeypatch.setattr(sys, "argv", [str(script), "run"])
    monkeypatch.delenv("EVENFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("EVENFLOW_ARTIFACT_ROOT", raising=False)
    monkeypatch.chdir(project)
    settings = EvenflowSettings()

    commands = [command for command, _ in ui.next_commands(settings, "adult", "candidate")]
    assert commands == [
        ".venv/bin/evenflow ui",
        ".venv/bin/evenflow review adult",
        ".venv/bin/evenflow serve-model adult@candidate",
    ]
    assert [c for c, _ in ui.next_commands(settings, "adult", None)] == commands[:2]
    text = ui.render_next(ui.next_commands(settings, "adult", "candidate"))
    assert text.splitlines()[0] == "next:"
    assert "  .venv/bin/evenflow ui" in text and "# the MLflow UI" in text

    monkeypatch.chdir(project.parent)
    monkeypatch.setenv("EVENFLOW_TRACKING_URI", "sqlite:////elsewhere/my store.db")
    elsewhere = ui.evenflow_command(EvenflowSettings())
    assert shlex.split(elsewhere) == [
        f"EVENFLOW_PROJECT_ROOT={project}",
        "EVENFLOW_TRACKING_URI=sqlite:////elsewhere/my store.db",
        ".venv/bin/evenflow",
    ]


def test_the_ui_runs_mlflow_on_the_projects_store_on_localhost_with_the_venv_on_path(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    settings = EvenflowSettings()
    command = ui.ui_command(settings, 5123)
    assert Path(command[0]).is_file() or command[1:3] == ["-m", "mlflow"]
    assert command[command.index("--backend-store-uri") + 1] == settings.tracking_uri
    assert settings.artifact_root and settings.artifact_root in command
    assert command[-4:] == ["--host", "127.0.0.1", "--port", "5123"]
    env = ui.server_env(settings)
    first = env["PATH"].split(os.pathsep)[0]
    assert (Path(first) / "python").exists() and first == str(Path(sys.executable).parent)
    assert env["MLFLOW_TRACKING_URI"] == settings.tracking_uri

    serve = ui.serve_command("models:/adult@champion", 5124)
    assert serve[serve.index("--env-manager") + 1] == "local"
    assert serve[serve.index("-m") + 1] == "models:/adult@champion"


def test_the_ui_of_a_tracking_server_is_the_server_itself(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EVENFLOW_TRACKING_URI", "http://mlflow.internal:5000")
    monkeypatch.setattr(os, "environ", dict(os.environ))  # the CLI's setdefaults stay here
    result = RUNNER.invoke(app, ["ui"])
    assert result.exit_code == 0, result.output
    assert "open http://mlflow.internal:5000" in result.output


def test_dask_warnings_while_closing_are_hidden_after_success_and_shown_after_a_failure(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from evenflow.training.cluster import closing_quietly_when_clean

    nanny = logging.getLogger("distributed.nanny")
    nanny.setLevel(logging.WARNING)  # as LocalCluster(silence_logs=WARNING) leaves it

    # Each block logs its own lines: the console's each-warning-once filter, which a CLI test in
    # this process may have left on pytest's handlers, must not hide the second block's.
    def close(block: str) -> None:
        nanny.warning("Worker process still alive after 4.0 seconds, killing (%s)", block)
        nanny.error("a worker failed while closing (%s)", block)

    with caplog.at_level(logging.WARNING), closing_quietly_when_clean() as resources:
        resources.callback(close, "clean")
    assert [r.levelno for r in caplog.records if r.name == "distributed.nanny"] == [logging.ERROR]
    assert nanny.level == logging.WARNING, "the level is restored after the close"

    caplog.clear()
    with (
        pytest.raises(RuntimeError),
        caplog.at_level(logging.WARNING),
        closing_quietly_when_clean() as resources,
    ):
        resources.callback(close, "failed")
        raise RuntimeError("worker lost")
    assert [r.levelno for r in caplog.records if r.name == "distributed.nanny"] == [
        logging.WARNING,
        logging.ERROR,
    ]
