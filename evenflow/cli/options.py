"""Options shared by several commands, and turning a dataset's flags into its parameters."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

import typer

from evenflow.errors import EvenflowError

DataOption = Annotated[Path | None, typer.Option("--data", help="CSV or Parquet file to train on.")]
TargetOption = Annotated[str | None, typer.Option("--target", help="Label column.")]
PositiveOption = Annotated[
    str | None, typer.Option("--positive-label", help="Target value that counts as positive.")
]
SensitiveOption = Annotated[
    str | None, typer.Option("--sensitive", help="Sensitive columns, comma-separated.")
]
NameOption = Annotated[
    str | None, typer.Option("--name", help="Dataset name (default: file stem).")
]
ScoreNameOption = Annotated[
    str | None,
    typer.Option(
        "--name",
        help="Dataset whose contract checks the batch (default: the one the model was trained "
        "under; if given, it must be that one).",
    ),
]
ModelRefOption = Annotated[
    str | None,
    typer.Option("--model", help="MODEL or MODEL@ALIAS (default: NAME@champion)."),
]
#: Where the flags given on the command line are named in a validation error.
FLAGS_SOURCE = "command-line flags"


def dataset_name(data: Path) -> str:
    """A dataset name from a file name: its stem, with unusual characters replaced."""
    return re.sub(r"[^A-Za-z0-9_.-]", "-", data.name.split(".")[0])


def dataset_from_flags(
    data: Path,
    target: str | None,
    positive_label: str | None,
    sensitive: str | None,
    name: str | None,
) -> dict[str, Any]:
    """The ``dataset`` section of a run from ``--data`` and the flags it needs.

    Raises:
        EvenflowError: ``--target``, ``--positive-label`` or ``--sensitive`` is missing.
    """
    missing = [
        flag
        for flag, value in (
            ("--target", target),
            ("--positive-label", positive_label),
            ("--sensitive", sensitive),
        )
        if value is None
    ]
    if missing:
        raise EvenflowError(f"--data {data} also needs {', '.join(missing)}")
    return {
        "name": name or dataset_name(data),
        "path": str(data.resolve()),
        "target": target,
        "positive_label": positive_label,
        "sensitive": sensitive,
    }


def comma_separated(values: list[str] | None) -> list[str]:
    """``--only a,b --only c`` → ``["a", "b", "c"]``."""
    return [part.strip() for item in values or [] for part in item.split(",") if part.strip()]
