"""How fairness is measured: the report's bootstrap, bins and the one rule for small groups."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

JOIN = " × "
"""Separator of an intersection's column names and values (``race × sex``)."""


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


class FairnessParams(BaseModel):
    """How the fairness report is computed ."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    threshold: float = Field(
        default=0.5, gt=0.0, lt=1.0, description="Score at or above which a row counts as positive."
    )
    n_bootstrap: int = Field(
        default=1000, ge=0, le=100_000, description="Bootstrap replicates; 0 reports no intervals."
    )
    confidence_level: float = Field(
        default=0.95, ge=0.5, lt=1.0, description="Coverage of the percentile intervals."
    )
    seed: int = Field(
        default=0,
        ge=0,
        le=2**32 - 1,
        description="Seed of numpy.random.default_rng for the bootstrap.",
    )
    calibration_bins: int = Field(
        default=10,
        ge=2,
        le=100,
        description="Equal-width score bins of the ECE and reliability curve.",
    )
    histogram_bins: int = Field(
        default=20, ge=2, le=200, description="Equal-width score bins of the score histograms."
    )
    score_quantiles: tuple[float, ...] = Field(
        default=(0.05, 0.25, 0.5, 0.75, 0.95),
        min_length=1,
        max_length=21,
        description="Score quantiles reported per group (each in [0, 1]).",
    )
    min_cell: int = Field(
        default=10,
        ge=1,
        le=1_000_000,
        description="Privacy floor: a group with fewer rows shows only its n (no base rate, no "
        "rates) everywhere.",
    )
    min_positives: int = Field(
        default=20,
        ge=1,
        le=1_000_000,
        description="A group with fewer positive labels is shown with its intervals, marked "
        "insufficient evidence, and kept out of summaries and gates.",
    )
    min_negatives: int = Field(
        default=20,
        ge=1,
        le=1_000_000,
        description="A group with fewer negative labels is shown with its intervals, marked "
        "insufficient evidence, and kept out of summaries and gates.",
    )
    max_intersection_size: int | None = Field(
        default=None,
        ge=2,
        le=16,
        description="Largest intersection of sensitive columns reported; None reports all of them.",
    )

    @field_validator("score_quantiles")
    @classmethod
    def _quantiles_in_unit_interval(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if any(not 0.0 <= q <= 1.0 for q in value):
            raise ValueError("score quantiles must lie in [0, 1]")
        return tuple(sorted(set(value)))
