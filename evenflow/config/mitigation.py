"""Mitigation parameters: which fairness mitigation a run applies, and what Fairlearn supports.

Fairlearn 0.15's ThresholdOptimizer and ExponentiatedGradient each support a subset of the
constraints; an unsupported choice is refused here, in words that name the supported options.
"""

from __future__ import annotations

from typing import Annotated, Literal, get_args

from pydantic import Field, model_validator

from evenflow.config.fields import Parallelism, PositiveShare, RngSeed
from evenflow.records import Record

# Fairness mitigations and what Fairlearn 0.15 supports for each.
Method = Literal["none", "reweighing", "threshold", "reductions"]
Constraint = Literal[
    "demographic_parity",
    "equalized_odds",
    "true_positive_rate_parity",
    "false_positive_rate_parity",
    "true_negative_rate_parity",
    "false_negative_rate_parity",
    "error_rate_parity",
]
Objective = Literal[
    "accuracy_score",
    "balanced_accuracy_score",
    "selection_rate",
    "true_positive_rate",
    "true_negative_rate",
]
# What Fairlearn 0.15 supports: ThresholdOptimizer's constraints (all but error_rate_parity),
# ExponentiatedGradient's moments (no negative-rate parities).
CONSTRAINTS: frozenset[str] = frozenset(get_args(Constraint))
THRESHOLD_CONSTRAINTS = CONSTRAINTS - {"error_rate_parity"}
REDUCTIONS_CONSTRAINTS = CONSTRAINTS - {"true_negative_rate_parity", "false_negative_rate_parity"}
EQUALIZED_ODDS_OBJECTIVES = frozenset({"accuracy_score", "balanced_accuracy_score"})


class MitigationParams(Record):
    """Which mitigation to apply and how; ``compare_mitigations`` reports all of them."""

    method: Method = Field(
        default="none",
        description="Mitigation of the registered model: none, reweighing, threshold or reductions.",
    )
    sensitive_column: str | None = Field(
        default=None,
        min_length=1,
        description="Sensitive column the mitigation targets; the first sensitive column if unset.",
    )
    constraint: Constraint = Field(
        default="demographic_parity",
        description=(
            "Fairness constraint of threshold and reductions. Threshold: demographic_parity, "
            "equalized_odds, {true,false}_{positive,negative}_rate_parity. Reductions: "
            "demographic_parity, equalized_odds, true/false_positive_rate_parity, error_rate_parity."
        ),
    )
    objective: Objective = Field(
        default="accuracy_score",
        description=(
            "What ThresholdOptimizer maximises under the constraint; equalized_odds allows only "
            "accuracy_score and balanced_accuracy_score."
        ),
    )
    threshold_grid_size: Annotated[int, Field(ge=10, le=100_000)] = Field(
        default=1000,
        description="Grid over the constraint metric that ThresholdOptimizer searches.",
    )
    reductions_max_rows: Annotated[int, Field(ge=100, le=2_000_000)] = Field(
        default=20_000,
        description="Training rows sampled for ExponentiatedGradient (it runs on one node).",
    )
    reductions_eps: PositiveShare = Field(
        default=0.01, description="ExponentiatedGradient's allowed constraint violation (eps)."
    )
    reductions_max_iter: int = Field(
        default=50, ge=1, le=1000, description="ExponentiatedGradient iterations at most."
    )
    reductions_n_estimators: Annotated[int, Field(ge=1, le=5000)] = Field(
        default=100,
        description="Boosting rounds of each inner XGBClassifier (one is trained per iteration).",
    )
    reductions_threads: Parallelism = Field(
        default=1,
        description="Threads per inner XGBClassifier fit; more only pays on large row samples.",
    )
    seed: RngSeed = Field(
        default=0, description="Seed of the reductions row sample and of randomised decisions."
    )

    @model_validator(mode="after")
    def _supported_by_fairlearn(self) -> MitigationParams:
        if self.method == "threshold":
            check_threshold_options(self.constraint, self.objective)
        elif self.method == "reductions" and self.constraint not in REDUCTIONS_CONSTRAINTS:
            raise ValueError(
                unsupported_constraint("reductions", self.constraint, REDUCTIONS_CONSTRAINTS)
            )
        return self


def check_threshold_options(constraint: str, objective: str) -> None:
    """Refuse what ThresholdOptimizer cannot do, in words that name the supported options."""
    if constraint not in THRESHOLD_CONSTRAINTS:
        raise ValueError(unsupported_constraint("threshold", constraint, THRESHOLD_CONSTRAINTS))
    if constraint == "equalized_odds" and objective not in EQUALIZED_ODDS_OBJECTIVES:
        raise ValueError(
            f"objective {objective!r} is not supported with equalized_odds; use one of "
            f"{sorted(EQUALIZED_ODDS_OBJECTIVES)}"
        )


def unsupported_constraint(method: str, constraint: str, supported: frozenset[str]) -> str:
    """The message for a constraint a mitigation method does not support."""
    return f"constraint {constraint!r} is not supported by {method}; use one of {sorted(supported)}"
