"""A gate clause: the record of one checked rule, with the numbers it compared and why.

Every clause builder (:mod:`evenflow.govern.gates`, :mod:`evenflow.govern.regression`) returns
these records and compares figures with :func:`at_least` / :func:`at_most`, so a figure equal to
its limit passes the same way everywhere.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from evenflow.assess.small_groups import CellStatus
from evenflow.records import Record

# A figure equal to its limit passes; this absorbs float noise such as 0.8 - 0.1 != 0.7.
TOLERANCE = 1e-9

Comparison = Literal["<=", ">=", ">"]

ClauseKind = Literal[
    "min_auc",
    "min_auc_lower_bound",
    "auc_vs_baseline",
    "max_disparity",
    "min_ratio",
    "min_impact_ratio",
    "non_regression",
]

Bound = Literal["point", "upper", "lower"]


class GateClause(Record):
    """One checked rule and the numbers it used."""

    name: str = Field(description="Clause id, e.g. 'max_disparity.equalized_odds_difference[sex]'.")
    kind: ClauseKind
    passed: bool
    skipped: bool = Field(default=False, description="Not evaluable by design; counts as passed.")
    observed: float | None = Field(description="Point value of the figure.")
    low: float | None = Field(default=None, description="Lower interval bound, when known.")
    high: float | None = Field(default=None, description="Upper interval bound, when known.")
    bound: Bound = Field(description="Which figure was compared: the point value or a bound.")
    compared: float | None = Field(description="The figure compared with the limit.")
    comparison: Comparison = Field(description="Passes when `compared comparison limit`.")
    limit: float | None = Field(description="The limit the figure was compared with.")
    reference: float | None = Field(
        default=None,
        description="The champion's value (non-regression) or the baseline's (auc_vs_baseline).",
    )
    margin: float | None = Field(
        default=None, description="The margin allowed below the reference, where one applies."
    )
    detail: str


class ExcludedGroup(Record):
    """A group a gate did not use, under the one rule for small groups, and why."""

    clauses: Literal["fairness", "non_regression"] = Field(
        description="Which clauses left it out: fairness summaries or non-regression."
    )
    slice: str = Field(description="Slice (fairness) or sensitive column (non-regression).")
    group: str
    status: CellStatus
    n: int | None
    reason: str


def at_most(value: float, limit: float) -> bool:
    """``value <= limit``, up to float noise."""
    return value <= limit + TOLERANCE


def at_least(value: float, limit: float) -> bool:
    """``value >= limit``, up to float noise."""
    return value >= limit - TOLERANCE


def figure_text(value: float | None) -> str:
    """A figure in a clause's detail: four significant digits, ``n/a`` when missing."""
    return "n/a" if value is None else f"{value:.4g}"


def interval_text(low: float | None, high: float | None) -> str:
    """An interval in a clause's detail, ``none`` when either end is missing."""
    if low is None or high is None:
        return "none"
    return f"[{figure_text(low)}, {figure_text(high)}]"
