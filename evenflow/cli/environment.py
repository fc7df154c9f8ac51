"""The one environment set-up of the command line, done once before any command runs.

Prefect's state stays in the project and every library's telemetry is off: these are environment
variables, so they must be set before Prefect, MLflow or DVC is first imported. A command reads
the settings made here with :func:`settings`.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import ParamSpec, TypeVar

import typer

from evenflow.cli.handling import VERBOSE_ENV
from evenflow.config.settings import EvenflowSettings
from evenflow.errors import EvenflowError
from evenflow.ops.leftovers import sweep
from evenflow.ops.servers import check_servers

#: The logger of the cache policy (tasks/caching.py): one line per cached stage saying why it re-ran.
CACHE_LOGGER = "evenflow.cache"

_P = ParamSpec("_P")
_R = TypeVar("_R")


def prepare(settings: EvenflowSettings) -> None:
    """Keep Prefect's state in the project and every library's telemetry off, before Prefect loads.

    Then close what killed evenflow processes left running (:mod:`evenflow.ops.leftovers`).

    Variables already set win: a user or a test can point any of them elsewhere.
    """
    defaults = {
        "PREFECT_HOME": str(settings.state_dir / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
        "PREFECT_LOGGING_EXTRA_LOGGERS": "evenflow",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
        "DASK_DISTRIBUTED__LOGGING__DISTRIBUTED": "warning",
        "DVC_NO_ANALYTICS": "1",
        "DO_NOT_TRACK": "1",
    }
    for key, value in defaults.items():
        os.environ.setdefault(key, value)
    Path(os.environ["PREFECT_HOME"]).mkdir(parents=True, exist_ok=True)
    _show_cache_reasons()
    for line in sweep(settings):
        typer.echo(f"note: {line}", err=True)


def settings() -> EvenflowSettings:
    """The settings a command runs with: from the environment prepared by :func:`prepare`."""
    return EvenflowSettings()


def servers_answer() -> None:
    """The servers named in the settings answer: asked before a flow is imported (seconds).

    Importing a flow loads the whole stack (tens of seconds on a busy machine); a server that is
    down should be named before that, not after minutes of its client's retries.
    """
    check_servers(settings())


def verbose() -> bool:
    """Whether ``--verbose`` (or ``EVENFLOW_VERBOSE=1``) asked for every line."""
    return os.environ.get(VERBOSE_ENV) == "1"


def run_flow(flow: Callable[_P, _R], *args: _P.args, **kwargs: _P.kwargs) -> _R:
    """Run a flow with a console that says only what matters (all of it under ``--verbose``).

    Prefect configures logging when it is imported, that is once the command imports its flow;
    the filters go on the console handler it installed, before the local Prefect API is started
    (one process at a time per project). Prefect's API handler is left alone: the flow run's logs
    in the Prefect UI keep every line. The engine's failure reports are cut to one line: the CLI
    states the error, and the whole traceback goes to the log file it names.
    """
    from evenflow.cli.local_api import ensure_local_api

    if not verbose():
        quiet_console()
    ensure_local_api(settings())
    return flow(*args, **kwargs)


def quiet_console() -> None:
    """Stage lines, cache lines and each warning once on the console; MLflow's chatter off.

    MLflow prints some lines itself ("Successfully registered model", "Created version") through
    its own stream, beside its own handler: the stream is switched off and MLflow's loggers sent
    to the console handler instead, so its warnings are still shown, in the same shape as ours.
    """
    import mlflow.utils.logging_utils as mlflow_logging  # configures MLflow's loggers once

    mlflow_logging.disable_logging()
    for name in _MLFLOW_LOGGERS:
        library = logging.getLogger(name)
        library.handlers = []
        library.propagate = True
    if "MLFLOW_LOGGING_LEVEL" not in os.environ:  # a level the user chose stays theirs
        logging.getLogger("mlflow").setLevel(logging.WARNING)
    for handler in logging.getLogger().handlers:
        if not any(isinstance(found, _QuietConsole) for found in handler.filters):
            handler.addFilter(_QuietConsole())
            handler.addFilter(_OneLineFailures())


def _show_cache_reasons() -> None:
    """Cache lines (``cache train: miss, code changed: ...``) at INFO on the console.

    The root logger (Prefect's console handler) shows warnings only, so library noise stays hidden;
    the cache logger alone is lowered to INFO and its records propagate to that handler. Prefect's
    configuration leaves this level alone (it only resets its own loggers' children).
    """
    logging.getLogger(CACHE_LOGGER).setLevel(logging.INFO)


class _QuietConsole(logging.Filter):
    """What a person at the console needs: stage and cache lines, and each warning once.

    Everything else (Prefect's task-state lines, library INFO) stays in the flow run's logs in
    the Prefect UI and on the console under ``--verbose``. A warning repeated with the same first
    line (one library warning per group of a fairness table) is shown the first time only.
    """

    def __init__(self) -> None:
        super().__init__()
        self._warned: set[tuple[str, str]] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.levelno >= logging.WARNING:
            first = (message.splitlines() or [""])[0]
            if (record.name, first) in self._warned:
                return False
            self._warned.add((record.name, first))
            return True
        return message.startswith(STAGE_MARKS) or bool(_CACHE_LINE.match(message))


class _OneLineFailures(logging.Filter):
    """The engine's failure records without tracebacks, each cut to its first line.

    Our own errors are dropped (the CLI states them in plain words); any other failure keeps one
    line on the console, the CLI's error line names the log file with the whole traceback.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], EvenflowError):
            return False
        record.exc_info, record.exc_text = None, None
        message = record.getMessage()
        first = message.splitlines()[0] if message else message
        if len(first) > _LINE_LIMIT or first != message:
            record.msg, record.args = first[:_LINE_LIMIT] + " …", None
        return True


#: A console line of a failure, at most (an exception's text can run to pages).
_LINE_LIMIT = 200
#: How a stage line starts (tasks/progress.py): started, done, failed.
STAGE_MARKS = ("▶ ", "✔ ", "✖ ")
#: A cache line (tasks/caching.py): ``cache train: miss, ...``.
_CACHE_LINE = re.compile(r"^cache [\w-]+: ")
#: The loggers MLflow gives its own handler (mlflow.utils.logging_utils).
_MLFLOW_LOGGERS = ("mlflow", "alembic", "huey", "sqlalchemy.engine")
