"""The one error handler of the command line: our errors as plain words and an exit code.

Every command is registered :func:`handled`, so a command never catches
:class:`~evenflow.errors.EvenflowError` itself: the first line of the message follows
``error:``, further lines are listed below it, and the process exits 2 (bad input: a file, a
column, a model, a configuration) or 1 where the check ran and the data failed it.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import ParamSpec

import typer

from evenflow.errors import EvenflowError

#: Errors that report a failed check rather than bad input, by module and class name. Looked up
#: in the modules already imported: a module that was never imported raised none of its errors
#: (and importing it only to compare would cost seconds on every error).
CHECK_FAILED = {"evenflow.usecases.monitor": "DriftDetected"}
BAD_INPUT_EXIT = 2
CHECK_FAILED_EXIT = 1

_P = ParamSpec("_P")


def handled(command: Callable[_P, None]) -> Callable[_P, None]:
    """The command, with our errors stated in plain words and turned into its exit code."""

    @functools.wraps(command)
    def run(*args: _P.args, **kwargs: _P.kwargs) -> None:
        try:
            command(*args, **kwargs)
        except EvenflowError as exc:
            report(exc)
            raise typer.Exit(code=exit_code(exc)) from None

    return run


def report(exc: EvenflowError) -> None:
    """The error on stderr: its first line after ``error:``, further lines as a list."""
    first, *rest = str(exc).splitlines() or [type(exc).__name__]
    typer.echo(f"error: {first}", err=True)
    for line in rest:
        typer.echo(f"  - {line}", err=True)


def exit_code(exc: EvenflowError) -> int:
    """1 for a failed check (drift beyond the policy), 2 for everything else."""
    for module_name, class_name in CHECK_FAILED.items():
        module = sys.modules.get(module_name)
        error = getattr(module, class_name, None) if module is not None else None
        if isinstance(error, type) and isinstance(exc, error):
            return CHECK_FAILED_EXIT
    return BAD_INPUT_EXIT
