"""The one environment set-up of the command line, done once before any command runs.

Prefect's state stays in the project and every library's telemetry is off: these are environment
variables, so they must be set before Prefect, MLflow or DVC is first imported. A command reads
the settings made here with :func:`settings`.
"""

from __future__ import annotations

import logging
import os
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


def run_flow(flow: Callable[_P, _R], *args: _P.args, **kwargs: _P.kwargs) -> _R:
    """Run a flow with the engine's failure reports cut to one line: the CLI states the error.

    The local Prefect API is started first, one process at a time per project. Prefect configures
    logging when it is imported, that is once the command imports its flow; the filter goes on the
    handlers it installed. The whole traceback goes to the log file the CLI names.
    """
    from evenflow.cli.local_api import ensure_local_api

    ensure_local_api(settings())
    if os.environ.get(VERBOSE_ENV) != "1":
        for handler in logging.getLogger().handlers:
            handler.addFilter(_OneLineFailures())
    return flow(*args, **kwargs)


def _show_cache_reasons() -> None:
    """Cache lines (``cache train: miss, code changed: ...``) at INFO on the console.

    The root logger (Prefect's console handler) shows warnings only, so library noise stays hidden;
    the cache logger alone is lowered to INFO and its records propagate to that handler. Prefect's
    configuration leaves this level alone (it only resets its own loggers' children).
    """
    logging.getLogger(CACHE_LOGGER).setLevel(logging.INFO)


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
