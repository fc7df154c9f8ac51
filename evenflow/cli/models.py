"""The reviewer's commands: review a version, promote, reject, roll back, show the ledger."""

from __future__ import annotations

from typing import Annotated

import typer

from evenflow.cli.environment import settings

ModelArgument = Annotated[str, typer.Argument(help="Registered model name (the dataset name).")]
ReviewerOption = Annotated[str, typer.Option("--reviewer", help="Who decides.")]
NoteOption = Annotated[str, typer.Option("--note", help="Why, in the reviewer's words.")]


def review(
    model: ModelArgument,
    version: Annotated[str | None, typer.Argument(help="Version (default: the candidate).")] = None,
) -> None:
    """Show a version beside the champion and record that its evidence was reviewed."""
    from evenflow.reports.review import render_review
    from evenflow.usecases import champion

    typer.echo(render_review(champion.review(settings(), model, version)))


def promote(
    model: ModelArgument,
    version: Annotated[str, typer.Argument(help="Version to make champion.")],
    reviewer: ReviewerOption,
    note: NoteOption,
    override: Annotated[
        str | None, typer.Option(help="Promote despite failed gates; the reason is recorded.")
    ] = None,
) -> None:
    """Make a reviewed version champion (refused if it failed its gates or its evidence changed)."""
    from evenflow.reports.review import render_history
    from evenflow.usecases import champion

    entry = champion.promote(settings(), model, version, reviewer, note, override=override)
    typer.echo(render_history([entry]))


def reject(
    model: ModelArgument,
    version: Annotated[str, typer.Argument(help="Version to reject.")],
    reviewer: ReviewerOption,
    note: NoteOption,
) -> None:
    """Record that a reviewer rejected a version (nothing is deleted)."""
    from evenflow.reports.review import render_history
    from evenflow.usecases import champion

    typer.echo(render_history([champion.reject(settings(), model, version, reviewer, note)]))


def rollback(model: ModelArgument, reviewer: ReviewerOption, note: NoteOption) -> None:
    """Give champion back to the previous champion recorded in the ledger."""
    from evenflow.reports.review import render_history
    from evenflow.usecases import champion

    typer.echo(render_history([champion.rollback(settings(), model, reviewer, note)]))


def history(model: ModelArgument) -> None:
    """Print the model's append-only promotion ledger."""
    from evenflow.reports.review import render_history
    from evenflow.usecases import champion

    typer.echo(render_history(champion.history(settings(), model)))
