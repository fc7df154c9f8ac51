"""``evenflow audit``: a version's evidence as one verifiable zip, and the check of such a zip.

``evenflow audit MODEL VERSION --out bundle.zip`` builds a bundle; ``evenflow audit verify
bundle.zip`` checks one. Both live in one command group whose default command is ``bundle``:
:class:`BundleByDefault` reads a first word that names no command as the bundle's model (so
``evenflow audit bundle MODEL VERSION`` works too, and is the way to bundle a model named
``verify``).
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from evenflow.cli.environment import settings
from evenflow.cli.ui import evenflow_command
from evenflow.govern.annex_iv import ANSWERED, PARTLY, UNANSWERED
from evenflow.io import file_sha256

DEFAULT_COMMAND = "bundle"


class BundleByDefault(TyperGroup):
    """A command group that runs ``bundle`` when its first word names no command of its own."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        """Put ``bundle`` in front of ``MODEL VERSION ...``; leave commands and help alone.

        ``ctx`` is typer's (vendored) click context, whose class typer does not export.
        """
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = [DEFAULT_COMMAND, *args]
        result: list[str] = super().parse_args(ctx, args)
        return result


def bundle(
    model: Annotated[str, typer.Argument(help="Registered model name (the dataset name).")],
    version: Annotated[str, typer.Argument(help="Version to bundle.")],
    out: Annotated[
        Path | None,
        typer.Option("--out", help="The zip to write (default: MODEL-vVERSION-audit.zip here)."),
    ] = None,
) -> None:
    """Write a version's evidence, hashed and mapped to the EU AI Act's Annex IV, as one zip."""
    from evenflow.usecases.audit import build_bundle

    target = out if out is not None else Path(f"{model}-v{version}-audit.zip")
    current = settings()
    manifest = build_bundle(current, model, version, target)
    statuses = [row.status for row in manifest.annex_iv]
    annex = ", ".join(
        f"{statuses.count(status)} {status}"
        for status in (ANSWERED, PARTLY, UNANSWERED)
        if status in statuses
    )
    typer.echo(
        f"wrote {target}: {len(manifest.files)} files, {len(manifest.withheld)} more as hashes only "
        f"(run {manifest.run_id})"
    )
    typer.echo(f"Annex IV and Art. 10-15: {annex} (the table is in the bundle's README.md)")
    if manifest.absent:
        typer.echo(f"not recorded for this version: {'; '.join(manifest.absent)}")
    typer.echo(f"sha256 of the zip: {file_sha256(target)} (record it where the auditor can see it)")
    verify_command = f"{evenflow_command(current)} audit verify {_quoted(target.absolute())}"
    typer.echo(f"check it: {verify_command}")


def verify(
    bundle: Annotated[
        Path, typer.Argument(help="An audit bundle written by `evenflow audit`.", exists=True)
    ],
    registry: Annotated[
        bool,
        typer.Option(
            "--registry/--offline",
            help="Also compare with the registry (default), or check the hashes alone.",
        ),
    ] = True,
) -> None:
    """Recompute every hash of a bundle and compare it with the registry; exit 1 if anything differs."""
    from evenflow.usecases.audit_verify import verify_bundle

    result = verify_bundle(settings(), bundle, registry=registry)
    for note in result.notes:
        typer.echo(f"note: {note}")
    if not result.ok:
        typer.echo(
            f"FAILED: {bundle} ({result.model} v{result.version}) does not verify:", err=True
        )
        for finding in result.findings:
            typer.echo(f"  - {finding.describe()}", err=True)
        raise typer.Exit(code=1)
    checked = f"verified: {bundle}: all {result.files_checked} files hash as listed"
    if result.registry_checked:
        checked += (
            f"; {_count(result.artifacts_checked, 'run artifact')} and "
            f"{_count(result.ledger_entries_checked, 'ledger entry', 'ledger entries')} match "
            f"the registry ({result.model} v{result.version})"
        )
    typer.echo(checked)


def _count(n: int, one: str, many: str | None = None) -> str:
    """``1 ledger entry``, ``3 ledger entries``."""
    return f"{n} {one if n == 1 else (many or one + 's')}"


def _quoted(path: Path) -> str:
    """A path as it can be pasted into a shell."""
    return shlex.quote(str(path))
