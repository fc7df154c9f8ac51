"""How fairness is measured: the report's bootstrap, bins and the one rule for small groups."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator

from evenflow.config.fields import GroupFloor, PositiveShare, RngSeed, ScoreCut, Share
from evenflow.records import Record

JOIN = " × "
"""Separator of an intersection's column names and values (``race × sex``)."""

_TOO_FEW_LABELS = "is shown with its intervals, marked insufficient evidence, and kept out of summaries and gates."


class ImpactRatioParams(Record):
    """How the impact-ratio table is drawn up (New York City Local Law 144's bias audit)."""

    min_share: Share = Field(
        default=0.02,
        description=(
            "Categories holding fewer than this share of all rows are left out of the impact "
            "ratios and listed with their n."
        ),
    )
    four_fifths: PositiveShare = Field(
        default=0.8,
        description=(
            "Impact ratio a category's interval is judged against: 'below four-fifths' when its "
            "upper end is under it, 'insufficient evidence' when the interval straddles it."
        ),
    )
    unknown_values: tuple[str, ...] = Field(
        default=(),
        description=(
            "Values of a sensitive column that mean the category is unknown (e.g. 'Declined'), "
            "besides missing values; such rows are counted, never compared."
        ),
    )


class FairnessParams(Record):
    """How the fairness report is computed ."""

    threshold: ScoreCut = Field(
        default=0.5, description="Score at or above which a row counts as positive."
    )
    n_bootstrap: int = Field(
        default=1000, ge=0, le=100_000, description="Bootstrap replicates; 0 reports no intervals."
    )
    confidence_level: float = Field(
        default=0.95, ge=0.5, lt=1.0, description="Coverage of the percentile intervals."
    )
    seed: RngSeed = Field(
        default=0, description="Seed of numpy.random.default_rng for the bootstrap."
    )
    calibration_bins: Annotated[int, Field(ge=2, le=100)] = Field(
        default=10, description="Equal-width score bins of the ECE and reliability curve."
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
    min_cell: GroupFloor = Field(
        default=10,
        description=(
            "Privacy floor: a group with fewer rows shows only its n (no base rate, no rates) "
            "everywhere."
        ),
    )
    min_positives: GroupFloor = Field(
        default=20, description=f"A group with fewer positive labels {_TOO_FEW_LABELS}"
    )
    min_negatives: GroupFloor = Field(
        default=20, description=f"A group with fewer negative labels {_TOO_FEW_LABELS}"
    )
    max_intersection_size: Annotated[int | None, Field(ge=2, le=16)] = Field(
        default=None,
        description="Largest intersection of sensitive columns reported; None reports all of them.",
    )

    impact_ratio: ImpactRatioParams = Field(
        default_factory=ImpactRatioParams,
        description="The impact-ratio table: the small-category exclusion and the four-fifths limit.",
    )

    @field_validator("score_quantiles")
    @classmethod
    def _quantiles_in_unit_interval(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if any(not 0.0 <= q <= 1.0 for q in value):
            raise ValueError("score quantiles must lie in [0, 1]")
        return tuple(sorted(set(value)))
