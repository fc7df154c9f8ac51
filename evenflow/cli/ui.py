"""``evenflow ui`` and ``evenflow serve-model``: MLflow's servers on this project's store.

They work from a fresh shell, and so do the commands a run suggests next (:func:`next_commands`).

MLflow's model server runs ``uvicorn`` by name, so ``.venv/bin/mlflow models serve`` outside an
activated environment exits 127. Both commands run MLflow from this interpreter's ``bin`` folder
with that folder first on ``PATH``, point it at the configured tracking store (not MLflow's own
default, ``./mlflow.db``) and bind 127.0.0.1 only: neither server asks who is calling.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer

from evenflow import layout
from evenflow.cli.environment import settings
from evenflow.config.settings import EvenflowSettings, is_tracking_server

#: The only address the servers listen on: the MLflow UI and the scoring server have no login.
HOST = "127.0.0.1"
UI_PORT = 5000
SERVE_PORT = 5001
#: Settings that decide which store a command opens: a suggested command repeats those set here.
STORE_VARIABLES = ("EVENFLOW_TRACKING_URI", "EVENFLOW_ARTIFACT_ROOT")

PortOption = Annotated[int, typer.Option("--port", min=1, max=65535, help="Port on 127.0.0.1.")]


def ui(port: PortOption = UI_PORT) -> None:
    """Start the MLflow UI on this project's tracking store (blocks; Ctrl-C stops it)."""
    current = settings()
    if is_tracking_server(current.tracking_uri):
        typer.echo(f"the MLflow UI is the tracking server itself: open {current.tracking_uri}")
        return
    typer.echo(
        f"MLflow UI on http://{HOST}:{port} over {current.tracking_uri} (Ctrl-C stops it)",
        err=True,
    )
    _become(ui_command(current, port), server_env(current))


def serve_model(
    model: Annotated[
        str, typer.Argument(help="MODEL@ALIAS to serve (MODEL alone: MODEL@champion).")
    ],
    port: PortOption = SERVE_PORT,
) -> None:
    """Serve a registered model over HTTP: POST rows to /invocations (blocks; Ctrl-C stops it)."""
    from evenflow.usecases import score

    current = settings()
    uri = score.served_model_uri(current, model)
    typer.echo(
        f"serving {uri} on http://{HOST}:{port}/invocations (Ctrl-C stops it); try:\n"
        f"  curl -s http://{HOST}:{port}/invocations -H 'Content-Type: application/json' "
        """-d '{"dataframe_records": [...]}'""",
        err=True,
    )
    _become(serve_command(uri, port), server_env(current))


def ui_command(current: EvenflowSettings, port: int) -> list[str]:
    """``mlflow ui`` over the project's store, new experiments' artifacts where runs put theirs."""
    command = [*_mlflow(), "ui", "--backend-store-uri", current.tracking_uri]
    if current.artifact_root:
        command += ["--default-artifact-root", current.artifact_root]
    return [*command, "--host", HOST, "--port", str(port)]


def serve_command(model_uri: str, port: int) -> list[str]:
    """``mlflow models serve`` in this environment (``--env-manager local``: no conda, no venv)."""
    return [
        *_mlflow(),
        "models",
        "serve",
        "-m",
        model_uri,
        "--env-manager",
        "local",
        "--host",
        HOST,
        "--port",
        str(port),
    ]


def server_env(current: EvenflowSettings) -> dict[str, str]:
    """This environment, with the interpreter's ``bin`` first on PATH and MLflow on our store."""
    path = os.environ.get("PATH", "")
    return {
        **os.environ,
        "PATH": os.pathsep.join([str(_bin_dir()), path]) if path else str(_bin_dir()),
        "MLFLOW_TRACKING_URI": current.tracking_uri,
        "MLFLOW_REGISTRY_URI": current.tracking_uri,
    }


def _mlflow() -> list[str]:
    script = _bin_dir() / "mlflow"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "mlflow"]


def _bin_dir() -> Path:
    """The folder of this interpreter, not resolved: a venv's python is a link to the system's."""
    return Path(sys.executable).absolute().parent


def _become(command: Sequence[str], env: dict[str, str]) -> None:
    """Replace this process with the server: Ctrl-C and ``kill PID`` reach it directly."""
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(command[0], list(command), env)


def evenflow_command(current: EvenflowSettings) -> str:
    """How to call evenflow again from the project root in a fresh shell.

    The executable this process was started as, relative to the project root when it lies inside
    it (``.venv/bin/evenflow``), else absolute; the settings that chose the store are repeated
    when they came from this shell's environment, which a fresh shell does not have.
    """
    executable = _evenflow_executable()
    root = current.project_root
    shown = (
        str(executable.relative_to(root)) if executable.is_relative_to(root) else str(executable)
    )
    prefix = [
        f"{name}={shlex.quote(os.environ[name])}"
        for name in STORE_VARIABLES
        if os.environ.get(name)
    ]
    if root != Path.cwd().resolve():
        prefix.insert(0, f"EVENFLOW_PROJECT_ROOT={shlex.quote(str(root))}")
    return " ".join([*prefix, shlex.quote(shown)])


def _evenflow_executable() -> Path:
    """The ``evenflow`` script this process runs as, or the one beside this interpreter."""
    started_as = Path(sys.argv[0]) if sys.argv else Path()
    if started_as.name == "evenflow" and started_as.is_file():
        return started_as.absolute()
    beside = _bin_dir() / "evenflow"
    if beside.is_file():
        return beside
    found = shutil.which("evenflow")
    return Path(found) if found else beside


def next_commands(
    current: EvenflowSettings, model: str, alias: str | None, version: str | None = None
) -> list[tuple[str, str]]:
    """The commands a reviewer runs next, each with what it does: pasted as shown, they work.

    With ``version``, the UI line names that version's page (the Markdown verdict and its
    evidence). A version without an alias is not offered for serving (the server takes
    ``MODEL@ALIAS``).
    """
    evenflow = evenflow_command(current)
    base = (
        current.tracking_uri.rstrip("/")
        if is_tracking_server(current.tracking_uri)
        else f"http://{HOST}:{UI_PORT}"
    )
    where = base if version is None else f"{base}/{layout.version_page(model, version)}"
    commands = [
        (f"{evenflow} ui", f"the MLflow UI on this project's runs, {where}"),
        (f"{evenflow} review {shlex.quote(model)}", "the candidate beside the champion"),
    ]
    if alias:
        commands.append(
            (
                f"{evenflow} serve-model {shlex.quote(f'{model}@{alias}')}",
                f"the model over HTTP on http://{HOST}:{SERVE_PORT}/invocations",
            )
        )
    return commands


def render_next(commands: Sequence[tuple[str, str]]) -> str:
    """``next:`` and one indented command per line, its purpose after ``#``."""
    width = max(len(command) for command, _ in commands)
    lines = [f"  {command.ljust(width)}  # {purpose}" for command, purpose in commands]
    return "\n".join(["next:", *lines])
