"""``evenflow reproduce``: rebuild a run from its commit and data hash, compare its predictions."""

from __future__ import annotations

from typing import Annotated

import typer

from evenflow import layout
from evenflow.cli.environment import settings


def reproduce(
    run_id: Annotated[str, typer.Argument(help="MLflow run id of a training run.")],
) -> None:
    """Rebuild a run from its commit and data hash; exit 0 only if predictions are identical."""
    from evenflow.usecases.reproduce import reproduce as rebuild

    result = rebuild(settings(), run_id)
    origin = f"commit {result.git_commit[:12]}, data {result.data_md5}"
    if result.git_dirty:
        typer.echo(f"note: run {run_id} was made from a dirty tree (diff: {layout.GIT_DIFF})")
    if result.identical:
        typer.echo(
            f"identical: all {result.n_rows:,} test predictions match bit for bit ({origin})"
        )
        return
    typer.echo(
        f"DIFFERENT: {result.n_different:,} of {result.n_rows:,} test predictions differ, "
        f"max |score difference| {result.max_abs_difference:.3g} ({origin})",
        err=True,
    )
    raise typer.Exit(code=1)
