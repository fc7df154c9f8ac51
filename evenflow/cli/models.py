"""The reviewer's commands: review, promote, reject, roll back, history, audit the aliases.

``audit-aliases`` checks that every ``champion`` alias is where the promotion ledger put it;
``history --verify`` checks the ledger's hash chain.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from evenflow.cli.environment import settings

if TYPE_CHECKING:
    from evenflow.govern.alias_guard import AliasAudit
    from evenflow.govern.ledger import LedgerEntry

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

    current = settings()
    typer.echo(render_review(champion.review(current, model, version)))
    _warn_unrecorded(champion.audit(current, model))


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
    _say_put_right(entry)


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

    entry = champion.rollback(settings(), model, reviewer, note)
    typer.echo(render_history([entry]))
    _say_put_right(entry)


def history(
    model: ModelArgument,
    verify: Annotated[
        bool,
        typer.Option(
            "--verify",
            help="Check the ledger's hash chain: exit 1, naming the entry, if one was edited, "
            "removed, inserted or reordered.",
        ),
    ] = False,
) -> None:
    """Print the model's append-only promotion ledger (with --verify: and whether it is intact)."""
    from evenflow.reports.review import render_history
    from evenflow.usecases import champion

    current = settings()
    typer.echo(render_history(champion.history(current, model), hashes=verify))
    verdict = champion.verify(current, model)
    if not verify:
        if not verdict.intact:  # never let a reader of the plain table miss it
            typer.echo(
                f"warning: the ledger is broken at {verdict.breaks[0].describe()}; see "
                f"`evenflow history {model} --verify`",
                err=True,
            )
        return
    typer.echo("")
    typer.echo("\n".join(verdict.describe()))
    if not verdict.intact:
        raise typer.Exit(code=1)


def audit_aliases(
    model: Annotated[
        str | None, typer.Argument(help="Registered model name (default: every model).")
    ] = None,
) -> None:
    """Check that each champion alias is where the promotion ledger put it (exit 1 if not)."""
    from evenflow.usecases import champion

    audits = champion.audit_aliases(settings(), model)
    if not audits:
        typer.echo("No registered models.")
    for audit in audits:
        typer.echo(audit.describe())
        for step in audit.resolution() if not audit.resolved else ():
            typer.echo(f"  - {step}")
    unresolved = sum(not audit.resolved for audit in audits)
    if unresolved:
        typer.echo(
            f"{unresolved} of {len(audits)} champion aliases disagree with the ledger; scoring "
            "and monitoring refuse them until resolved",
            err=True,
        )
        raise typer.Exit(code=1)


def _warn_unrecorded(audit: AliasAudit) -> None:
    """Say, after a review, that the current champion was set outside the ledger."""
    if audit.resolved:
        return
    typer.echo(f"warning: {audit.describe()}", err=True)
    for step in audit.resolution():
        typer.echo(f"  - {step}", err=True)


def _say_put_right(entry: LedgerEntry) -> None:
    """Say that a decision put back in agreement a champion alias moved outside the ledger."""
    if entry.unrecorded_champion is None:
        return
    was = (
        "had been removed"
        if entry.unrecorded_champion == "none"
        else f"pointed at v{entry.unrecorded_champion}"
    )
    typer.echo(
        f"The champion alias {was} outside the ledger; it now points at v{entry.version}, as "
        f"ledger entry {entry.seq} records."
    )
