"""Field types that several parameter models share, so a bound is written once.

Each alias carries only the constraint; every field still states its own default and
description, which the generated parameter reference shows beside the bound.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BeforeValidator, Field

NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}"
"""A dataset, model or deployment name: safe as a file name, an experiment and a registry key."""

Name = Annotated[str, Field(pattern=rf"^{NAME_PATTERN}$")]
"""A dataset or deployment name (``NAME_PATTERN``)."""

Share = Annotated[float, Field(ge=0.0, le=1.0)]
"""A share, rate or AUC in [0, 1]."""

ShareOrNone = Annotated[float | None, Field(ge=0.0, le=1.0)]
"""A share in [0, 1], or None where None switches a clause off."""

PositiveShare = Annotated[float, Field(gt=0.0, le=1.0)]
"""A sampling rate, step or tolerance in (0, 1]: zero would do nothing."""

ScoreCut = Annotated[float, Field(gt=0.0, lt=1.0)]
"""A score at or above which a row counts as positive, strictly inside (0, 1)."""

NonNegative = Annotated[float, Field(ge=0.0)]
"""A weight or penalty where zero is allowed and switches it off."""

Distance = Annotated[float, Field(gt=0.0, le=10.0)]
"""A drift distance threshold: positive, and at most 10 (every statistic's useful range)."""

Seed = Annotated[int, Field(ge=0, le=2**31 - 1)]
"""A seed that fits a signed 32-bit integer (XGBoost, LightGBM, the row hash)."""

RngSeed = Annotated[int, Field(ge=0, le=2**32 - 1)]
"""A seed of ``numpy.random.default_rng`` (any unsigned 32-bit integer)."""

Parallelism = Annotated[int, Field(ge=1, le=256)]
"""How many processes or threads: at least one, at most a large machine's cores."""

BatchRows = Annotated[int, Field(ge=1_000, le=100_000_000)]
"""Rows held in memory at once: large enough to be efficient, small enough to fit."""

GroupFloor = Annotated[int, Field(ge=1, le=1_000_000)]
"""The fewest rows or labels a group needs for a statement about it."""

ColumnName = Annotated[str, Field(min_length=1)]
"""A column of the data."""


def split_commas(value: Any) -> Any:
    """``"race, sex"`` → ``("race", "sex")``: a CLI flag or YAML scalar may list columns in one string."""
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


ColumnNames = Annotated[tuple[str, ...], BeforeValidator(split_commas)]
"""Columns of the data, as a list or as one comma-separated string."""


def refuse_retired_key(data: Any, key: str) -> Any:
    """Refuse a key that the one rule for small groups replaced, and name what replaced it.

    Used as a ``mode="before"`` validator body, so an old YAML file fails with the way forward.
    """
    if isinstance(data, Mapping) and key in data:
        raise ValueError(
            f"{key} was removed: small groups follow one rule everywhere "
            "(fairness.min_cell, fairness.min_positives, fairness.min_negatives)"
        )
    return data
