"""The ``evenflow`` command line: the app, its command groups and the table of its commands.

Each command parses its flags into a params model and calls a flow, a use case or an ops function
(the modules beside this one, by group). What every command shares is done once, here: the
environment is prepared in the app's callback (:mod:`evenflow.cli.environment`) and every command
is registered with the one error handler (:mod:`evenflow.cli.handling`).
"""

from __future__ import annotations

import os
from collections.abc import Callable

import typer

from evenflow.cli import audit, data, models, ops, reproduce, run, ui
from evenflow.cli.environment import prepare
from evenflow.cli.handling import VERBOSE_ENV, handled
from evenflow.config.settings import EvenflowSettings

app = typer.Typer(
    help="evenflow: fair, explainable, reproducible tabular models.", no_args_is_help=True
)
expectations_app = typer.Typer(
    help="Data contracts (Great Expectations suites).", no_args_is_help=True
)
stack_app = typer.Typer(
    help="The server stack (MLflow, Prefect, Dask) as local processes.", no_args_is_help=True
)
audit_app = typer.Typer(
    cls=audit.BundleByDefault,
    help="A version's evidence as one zip an auditor can verify: "
    "`evenflow audit MODEL VERSION --out bundle.zip`, `evenflow audit verify bundle.zip`.",
    no_args_is_help=True,
)
app.add_typer(expectations_app, name="expectations")
app.add_typer(stack_app, name="stack")
app.add_typer(audit_app, name="audit")


@app.callback()
def _environment(
    verbose: bool = typer.Option(
        False,
        "--verbose",
        help="Show every library's log lines, and the traceback of an error (it is always kept "
        "in .evenflow/logs).",
    ),
) -> None:
    """Prepare the environment once, before any command runs."""
    if verbose:
        os.environ[VERBOSE_ENV] = "1"
    prepare(EvenflowSettings())


def _register(group: typer.Typer, command: Callable[..., None], name: str | None = None) -> None:
    group.command(name)(handled(command))


for _command in (
    run.run,
    data.validate,
    data.monitor,
    models.review,
    models.promote,
    models.reject,
    models.rollback,
    models.history,
    models.audit_aliases,
    reproduce.reproduce,
    data.score,
    ops.serve,
    data.synth,
    ui.ui,
):
    _register(app, _command)
_register(app, ui.serve_model, "serve-model")
_register(expectations_app, data.expectations_init, "init")
_register(stack_app, ops.stack_up, "up")
_register(stack_app, ops.stack_status, "status")
_register(stack_app, ops.stack_down, "down")
_register(audit_app, audit.bundle, "bundle")
_register(audit_app, audit.verify, "verify")
