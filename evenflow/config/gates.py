"""What a model must meet: to become a candidate (gates) and to become champion (review policy).

The gate policy is written in the run's configuration; the review policy is set in the
environment of whoever runs the registry.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from evenflow.config.fairness import JOIN
from evenflow.config.fields import Share, ShareOrNone, refuse_retired_key
from evenflow.records import Record

MAX_SUMMARIES = (
    "demographic_parity_difference",
    "equalized_odds_difference",
    "equal_opportunity_difference",
    "false_positive_rate_difference",
    "predictive_parity_difference",
    "calibration_gap",
)


MIN_SUMMARIES = ("demographic_parity_ratio",)


# base_rate_difference describes the data, not the model, so no policy may gate on it.
UNGATED_SUMMARIES = ("base_rate_difference",)


RegressionMetric = Literal["recall", "precision"]


REGRESSION_METRICS: tuple[RegressionMetric, ...] = ("recall", "precision")


class GatePolicy(Record):
    """What a model must meet to become a candidate."""

    min_auc: Share = Field(default=0.5, description="Lowest acceptable overall ROC AUC on test.")
    min_auc_lower_bound: ShareOrNone = Field(
        default=0.5,
        description="The lower bound of the AUC's bootstrap interval must exceed this; None "
        "disables the clause.",
    )
    max_auc_below_baseline: ShareOrNone = Field(
        default=0.01,
        description="Largest margin by which the AUC may fall below the logistic-regression "
        "baseline's (fitted on the same rows); None disables the clause.",
    )
    max_disparity: dict[str, float] = Field(
        default_factory=dict,
        description=(
            "Fairness summary -> largest acceptable value, applied to every gated slice. "
            f"Keys among: {', '.join(MAX_SUMMARIES)}."
        ),
    )
    min_ratio: dict[str, float] = Field(
        default_factory=dict,
        description=(
            "Ratio summary -> smallest acceptable value (e.g. 0.8 for the four-fifths rule). "
            f"Keys among: {', '.join(MIN_SUMMARIES)}."
        ),
    )
    min_impact_ratio: dict[str, float] = Field(
        default_factory=dict,
        description=(
            "Slice -> smallest acceptable impact ratio of every reported category's selection "
            "rate (e.g. {sex: 0.8}; an intersection is written 'race*sex'), judged on its "
            "bootstrap interval: a category fails when its whole interval lies below the limit "
            "(with use_interval_bound 'upper', when its lower end does). Empty: off."
        ),
    )
    use_interval_bound: Literal["point", "upper"] = Field(
        default="point",
        description=(
            "Compare the point value, or the interval end least favourable to the model "
            "(upper bound of a difference, lower bound of a ratio or AUC)."
        ),
    )
    columns: tuple[str, ...] | None = Field(
        default=None,
        description=(
            "Slices the fairness clauses apply to: a column, or an intersection written "
            "'race*sex'. None: every single sensitive column of the report."
        ),
    )
    non_regression_margin: Share = Field(
        default=0.02,
        description="Largest drop of a group's metric below the champion's that is accepted.",
    )
    non_regression_metrics: tuple[RegressionMetric, ...] = Field(
        default=REGRESSION_METRICS,
        description="Per-group metrics compared with the champion; empty disables the check.",
    )

    @model_validator(mode="before")
    @classmethod
    def _retired_keys(cls, data: Any) -> Any:
        return refuse_retired_key(data, "min_group_positives")

    @field_validator("max_disparity")
    @classmethod
    def _known_max_summaries(cls, value: dict[str, float]) -> dict[str, float]:
        return _check_limits(value, MAX_SUMMARIES, "max_disparity")

    @field_validator("min_ratio")
    @classmethod
    def _known_min_summaries(cls, value: dict[str, float]) -> dict[str, float]:
        return _check_limits(value, MIN_SUMMARIES, "min_ratio")

    @field_validator("min_impact_ratio")
    @classmethod
    def _impact_slices_are_named(cls, value: dict[str, float]) -> dict[str, float]:
        if any(not slice_columns(entry) for entry in value):
            raise ValueError("min_impact_ratio: a slice must name at least one column")
        if len({frozenset(slice_columns(entry)) for entry in value}) != len(value):
            raise ValueError(f"min_impact_ratio: slices repeat: {list(value)}")
        outside = {k: v for k, v in value.items() if not 0.0 <= v <= 1.0}
        if outside:
            raise ValueError(f"min_impact_ratio limits must lie in [0, 1], got {outside}")
        return value

    @field_validator("columns")
    @classmethod
    def _slices_are_named(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is None:
            return None
        parsed = [slice_columns(entry) for entry in value]
        if any(not columns for columns in parsed):
            raise ValueError("a slice must name at least one column")
        if len({frozenset(columns) for columns in parsed}) != len(parsed):
            raise ValueError(f"slices repeat: {list(value)}")
        return value

    @field_validator("non_regression_metrics")
    @classmethod
    def _unique_metrics(cls, value: tuple[RegressionMetric, ...]) -> tuple[RegressionMetric, ...]:
        if len(set(value)) != len(value):
            raise ValueError(f"metrics repeat: {list(value)}")
        return value


def _check_limits(value: dict[str, float], allowed: Sequence[str], field: str) -> dict[str, float]:
    unknown = sorted(set(value) - set(allowed))
    if unknown:
        raise ValueError(f"unknown {field} key(s) {unknown}; allowed: {list(allowed)}")
    outside = {k: v for k, v in value.items() if not 0.0 <= v <= 1.0}
    if outside:
        raise ValueError(f"{field} limits must lie in [0, 1], got {outside}")
    return value


def slice_columns(entry: str) -> tuple[str, ...]:
    """Columns of a policy slice entry: ``"sex"`` or an intersection ``"race*sex"``."""
    parts = entry.replace(JOIN.strip(), "*").split("*")
    return tuple(part.strip() for part in parts if part.strip())


SELF_REVIEW_ENV = "EVENFLOW_ALLOW_SELF_REVIEW"


class ReviewPolicy(BaseSettings):
    """Who may approve a version: set in the environment of the person promoting, not in a run.

    A training run's configuration is chosen by whoever trains, so a rule about separating the
    trainer from the approver cannot live there; it is read from ``EVENFLOW_*`` variables.
    """

    model_config = SettingsConfigDict(env_prefix="EVENFLOW_", frozen=True, extra="ignore")

    allow_self_review: bool = Field(
        default=False,
        description=(
            "Let the person who launched a training run approve its version "
            f"({SELF_REVIEW_ENV}=1); by default the reviewer must be someone else."
        ),
    )
