"""The one error handler of the command line: our errors as plain words and an exit code.

Every command is registered :func:`handled`, so a command never catches
:class:`~evenflow.errors.EvenflowError` itself: the first line of the message follows
``error:``, further lines are listed below it, and the process exits 2 (bad input: a file, a
column, a model, a configuration), 1 where the check ran and the data failed it, or 3 where the
platform itself failed (retry). Anything else is a bug or a fault we did not foresee: one line
names it and the log file that holds its traceback; ``--verbose`` prints the traceback too.
"""

from __future__ import annotations

import errno
import functools
import os
import shutil
import sys
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import ParamSpec

import typer

from evenflow.config.settings import EvenflowSettings
from evenflow.errors import EvenflowError, InfrastructureError

#: Errors that report a failed check rather than bad input, by module and class name. Looked up
#: in the modules already imported: a module that was never imported raised none of its errors
#: (and importing it only to compare would cost seconds on every error).
CHECK_FAILED = {"evenflow.usecases.monitor": "DriftDetected"}
BAD_INPUT_EXIT = 2
CHECK_FAILED_EXIT = 1
PLATFORM_FAILED_EXIT = 3
_FIRST_LINE = 300  # characters of an unexpected error's message on the console
#: Set by ``evenflow --verbose``: tracebacks are printed as well as kept.
VERBOSE_ENV = "EVENFLOW_VERBOSE"

_P = ParamSpec("_P")


def handled(command: Callable[_P, None]) -> Callable[_P, None]:
    """The command, with our errors stated in plain words and turned into its exit code."""

    @functools.wraps(command)
    def run(*args: _P.args, **kwargs: _P.kwargs) -> None:
        try:
            command(*args, **kwargs)
        except EvenflowError as exc:
            report(exc)
            if exc.__cause__ is not None:
                _keep_traceback(exc)
            raise typer.Exit(code=exit_code(exc)) from None
        except (typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except Exception as exc:  # the last line of defence: one line, and a log file
            log = _keep_traceback(exc)
            typer.echo(f"error: {_what_failed(exc)}", err=True)
            typer.echo(f"  - the traceback is in {log}; --verbose prints it here", err=True)
            raise typer.Exit(code=PLATFORM_FAILED_EXIT) from None

    return run


def _what_failed(exc: Exception) -> str:
    """Name a full disk and a failure of the cluster (retried already); the rest is unexpected."""
    from evenflow.training.failures import is_infrastructure_failure  # Dask: on failure only

    full = _disk_full(exc)
    if full is not None:
        return (
            f"no space left on device writing {full}: free some (`df -h {full.parent}`) and run "
            "again; nothing half-written was kept"
        )
    first = (str(exc).splitlines() or [""])[0][:_FIRST_LINE]
    if is_infrastructure_failure(exc):
        return (
            "the Dask cluster failed after retries (a lost worker or peer; the machine may be "
            f"overloaded: run again, or with fewer workers, --workers 1): {first}"
        )
    return f"unexpected {type(exc).__name__}: {first}"


def _disk_full(exc: BaseException) -> Path | None:
    """Where the disk filled up, if it did: ENOSPC anywhere in the chain.

    ``shutil.copytree`` gathers its failures as ``(source, destination, message)`` triples.
    """
    current: BaseException | None = exc
    while current is not None:
        if isinstance(current, shutil.Error) and f"[Errno {errno.ENOSPC}]" in str(current):
            return Path(current.args[0][0][1]).parent
        if isinstance(current, OSError) and current.errno == errno.ENOSPC:
            return Path(str(current.filename or "."))
        current = current.__cause__ or current.__context__
    return None


def report(exc: EvenflowError) -> None:
    """The error on stderr: its first line after ``error:``, further lines as a list."""
    first, *rest = str(exc).splitlines() or [type(exc).__name__]
    typer.echo(f"error: {first}", err=True)
    for line in rest:
        typer.echo(f"  - {line}", err=True)


def _keep_traceback(exc: BaseException) -> Path:
    """Write the traceback to ``.evenflow/logs`` (and to stderr under ``--verbose``)."""
    text = "".join(traceback.format_exception(exc))
    folder = EvenflowSettings().state_dir / "logs"
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = folder / f"error-{stamp}-{os.getpid()}.log"
    path.write_text(f"evenflow {' '.join(sys.argv[1:])}\n{text}", encoding="utf-8")
    if os.environ.get(VERBOSE_ENV) == "1":
        typer.echo(text, err=True)
    return path


def exit_code(exc: EvenflowError) -> int:
    """1 for a failed check (drift beyond the policy), 3 for the platform, 2 for the rest."""
    if isinstance(exc, InfrastructureError):
        return PLATFORM_FAILED_EXIT
    for module_name, class_name in CHECK_FAILED.items():
        module = sys.modules.get(module_name)
        error = getattr(module, class_name, None) if module is not None else None
        if isinstance(error, type) and isinstance(exc, error):
            return CHECK_FAILED_EXIT
    return BAD_INPUT_EXIT
