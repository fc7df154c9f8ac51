"""Gates as policy: a configured ``GatePolicy`` and a pure function that applies it.

The decision is data, not a side effect: :func:`gate_failures` returns a ``GateDecision`` holding
every clause it checked with the numbers it used (the point value, the interval bound chosen, the
limit), so a reviewer can see why a model passed or failed without re-running anything. Acting on
the decision (withholding the ``candidate`` alias, failing the flow) happens elsewhere.

Clauses:

- ``min_auc``: overall ROC AUC at or above a minimum.
- ``min_auc_lower_bound``: the lower bound of the AUC's bootstrap interval above a minimum (0.5 by
  default: the model must rank better than chance, with its uncertainty counted).
- ``auc_vs_baseline``: the model's AUC no more than a margin below the logistic-regression
  baseline's, fitted on the same rows ("not evaluated: no baseline" when there is none).
- ``max_disparity.<summary>[<slice>]``: a between-group difference from the fairness report at or
  below a maximum, per slice.
- ``min_ratio.<summary>[<slice>]``: a between-group ratio (demographic parity ratio) at or above
  a minimum, per slice.
- ``min_impact_ratio[<slice>]``: every reported category's impact ratio (its selection rate over
  the highest category's, from the fairness report's impact-ratio table) at or above a minimum,
  judged on its interval: a category fails when even the interval's upper end is below the limit
  (the table's "below four-fifths"); with ``use_interval_bound="upper"``, when its lower end is.
- ``non_regression.<metric>[<column>=<group>]``: no group's recall or precision worse than the
  champion's by more than a margin.

Small groups follow the one rule (:func:`evenflow.assess.fairness.cell_status`): fairness summaries and
non-regression use only ``reported`` groups; private and insufficient groups are listed in the
decision's ``excluded`` with their reasons, never silently dropped.

With ``use_interval_bound="upper"`` each clause compares the end of the bootstrap interval least
favourable to the model (the upper bound of a difference, the lower bound of a ratio or of the
AUC), so uncertainty counts against the model instead of for it. A figure that cannot be computed
fails its clause and says why: a gate never passes for want of a number.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Literal

from pydantic import Field, model_validator

from evenflow.assess.estimates import Estimate
from evenflow.assess.fairness import Disparity, FairnessReport, SliceReport
from evenflow.assess.impact_tables import ImpactCategory, ImpactSlice
from evenflow.assess.small_groups import REPORTED
from evenflow.config.fairness import JOIN
from evenflow.config.gates import GatePolicy, slice_columns
from evenflow.govern.clauses import (
    Bound,
    Comparison,
    ExcludedGroup,
    GateClause,
    at_least,
    at_most,
    figure_text,
    interval_text,
)
from evenflow.govern.regression import regression_clauses
from evenflow.numbers import finite_number
from evenflow.records import Record

BASELINE = "logistic"  # the baseline the auc_vs_baseline clause compares with


class GateDecision(Record):
    """Whether a model passed its gate, every clause checked and the policy used."""

    passed: bool
    clauses: tuple[GateClause, ...]
    failed: tuple[GateClause, ...] = Field(description="The clauses that failed, in order.")
    policy: GatePolicy
    excluded: tuple[ExcludedGroup, ...] = Field(
        default=(), description="Groups left out of the clauses (private or insufficient), and why."
    )

    @classmethod
    def from_clauses(
        cls,
        policy: GatePolicy,
        clauses: Sequence[GateClause],
        excluded: Sequence[ExcludedGroup] = (),
    ) -> GateDecision:
        """Build the decision: it passes exactly when no clause failed."""
        failed = tuple(c for c in clauses if not c.passed)
        return cls(
            passed=not failed,
            clauses=tuple(clauses),
            failed=failed,
            policy=policy,
            excluded=tuple(excluded),
        )

    @model_validator(mode="after")
    def _consistent(self) -> GateDecision:
        if self.failed != tuple(c for c in self.clauses if not c.passed):
            raise ValueError("failed must list exactly the clauses that did not pass")
        if self.passed != (not self.failed):
            raise ValueError("a decision passes exactly when no clause failed")
        return self


def gate_failures(
    policy: GatePolicy,
    metrics: Mapping[str, float],
    fairness: FairnessReport,
    champion_groups: Sequence[Mapping[str, Any]] | None,
    candidate_groups: Sequence[Mapping[str, Any]],
    *,
    baseline_metrics: Mapping[str, float] | None = None,
) -> GateDecision:
    """Apply a policy to a candidate's evaluation; a pure function of its arguments.

    Args:
        policy: The gate policy from configuration.
        metrics: Overall test metrics (``roc_auc`` at least); ``roc_auc_low`` / ``roc_auc_high``
            are the AUC's bootstrap interval.
        fairness: The candidate's fairness report; its parameters are the small-group rule.
        champion_groups: The champion's per-group records (as
            ``evenflow.assess.evaluation.groups_to_records``); None when there is no champion.
        candidate_groups: The candidate's per-group records, same shape.
        baseline_metrics: The logistic-regression baseline's headline metrics (as
            ``evenflow.assess.evaluation.headline_metrics`` returns them); None when there is none.

    Returns:
        The decision with every clause, the groups left out and the policy.
    """
    regression, regression_excluded = regression_clauses(
        policy, champion_groups, candidate_groups, fairness.params
    )
    clauses = [
        _auc_clause(policy, metrics),
        *_auc_bound_clause(policy, metrics),
        *_baseline_clause(policy, metrics, baseline_metrics),
        *_fairness_clauses(policy, fairness),
        *_impact_clauses(policy, fairness),
        *regression,
    ]
    fairness_excluded = list(_fairness_excluded(policy, fairness))
    excluded = [
        *fairness_excluded,
        *_impact_excluded(policy, fairness, fairness_excluded),
        *regression_excluded,
    ]
    return GateDecision.from_clauses(policy, clauses, excluded)


def describe_failures(decision: GateDecision) -> list[str]:
    """One readable line per failed clause, with the figure, its interval and the limit."""
    return [_describe(clause) for clause in decision.failed]


# --- AUC ------------------------------------------------------------------------------------


def _auc_clause(policy: GatePolicy, metrics: Mapping[str, float]) -> GateClause:
    """Overall AUC against ``min_auc``.

    The point value, or the lower bound when the policy compares interval bounds; a missing bound
    then fails the clause (the point value is not used instead).
    """
    value = finite_number(metrics.get("roc_auc"))
    low, high = (
        finite_number(metrics.get("roc_auc_low")),
        finite_number(metrics.get("roc_auc_high")),
    )
    use_low = policy.use_interval_bound == "upper"
    compared = low if use_low else value
    bound: Bound = "lower" if use_low else "point"
    clause = {
        "name": "min_auc",
        "kind": "min_auc",
        "observed": value,
        "low": low,
        "high": high,
        "bound": bound,
        "compared": compared,
        "comparison": ">=",
        "limit": policy.min_auc,
    }
    if value is None:
        return GateClause(**clause, passed=False, detail="ROC AUC is undefined or missing")
    if compared is None:
        detail = "the policy compares the AUC's lower bound and there is no AUC interval"
        return GateClause(**clause, passed=False, detail=detail)
    return GateClause(
        **clause,
        passed=at_least(compared, policy.min_auc),
        detail=f"ROC AUC {figure_text(compared)} ({bound}; point {figure_text(value)}, interval "
        f"{interval_text(low, high)}) vs minimum {figure_text(policy.min_auc)}",
    )


def _auc_bound_clause(policy: GatePolicy, metrics: Mapping[str, float]) -> Iterator[GateClause]:
    """The AUC's lower bound must exceed ``min_auc_lower_bound`` (the model beats chance)."""
    limit = policy.min_auc_lower_bound
    if limit is None:
        return
    value = finite_number(metrics.get("roc_auc"))
    low, high = (
        finite_number(metrics.get("roc_auc_low")),
        finite_number(metrics.get("roc_auc_high")),
    )
    clause = {
        "name": "min_auc_lower_bound",
        "kind": "min_auc_lower_bound",
        "observed": value,
        "low": low,
        "high": high,
        "bound": "lower",
        "compared": low,
        "comparison": ">",
        "limit": limit,
    }
    if low is None:
        detail = (
            "no AUC interval (undefined AUC, or fairness.n_bootstrap is 0); "
            "set gates.min_auc_lower_bound to null to drop this clause"
        )
        yield GateClause(**clause, passed=False, detail=detail)
        return
    yield GateClause(
        **clause,
        passed=low > limit,
        detail=f"AUC lower bound {figure_text(low)} (point {figure_text(value)}, interval "
        f"{interval_text(low, high)}) must exceed {figure_text(limit)}",
    )


def _baseline_clause(
    policy: GatePolicy, metrics: Mapping[str, float], baseline: Mapping[str, float] | None
) -> Iterator[GateClause]:
    """The AUC may not fall below the logistic baseline's by more than the margin."""
    margin = policy.max_auc_below_baseline
    if margin is None:
        return
    value = finite_number(metrics.get("roc_auc"))
    theirs = None if baseline is None else finite_number(baseline.get("roc_auc"))
    limit = None if theirs is None else theirs - margin
    clause = {
        "name": "auc_vs_baseline",
        "kind": "auc_vs_baseline",
        "observed": value,
        "low": finite_number(metrics.get("roc_auc_low")),
        "high": finite_number(metrics.get("roc_auc_high")),
        "bound": "point",
        "compared": value,
        "comparison": ">=",
        "limit": limit,
        "reference": theirs,
        "margin": margin,
    }
    if baseline is None:
        yield GateClause(**clause, passed=True, skipped=True, detail="not evaluated: no baseline")
        return
    if value is None or theirs is None:
        whose = "model" if value is None else f"{BASELINE} baseline"
        yield GateClause(**clause, passed=False, detail=f"{whose} AUC is undefined or missing")
        return
    yield GateClause(
        **clause,
        passed=at_least(value, theirs - margin),
        detail=f"model AUC {value:.4f} vs {BASELINE} baseline {theirs:.4f} - {margin:g} "
        f"(difference {value - theirs:+.4f})",
    )


# --- fairness -------------------------------------------------------------------------------


def _gated_slices(
    policy: GatePolicy, fairness: FairnessReport
) -> list[tuple[str, SliceReport | None]]:
    """(name, slice) pairs the fairness clauses apply to; a slice the report lacks is None."""
    if policy.columns is None:
        return [(column, fairness.slice(column)) for column in fairness.sensitive]
    pairs: list[tuple[str, SliceReport | None]] = []
    for entry in policy.columns:
        columns = slice_columns(entry)
        try:
            found: SliceReport | None = fairness.slice(*columns)
        except KeyError:
            found = None
        pairs.append((JOIN.join(columns), found))
    return pairs


def _fairness_excluded(policy: GatePolicy, fairness: FairnessReport) -> Iterator[ExcludedGroup]:
    """The private and insufficient groups of the gated slices: no summary there uses them."""
    if not policy.max_disparity and not policy.min_ratio:
        return
    for name, item in _gated_slices(policy, fairness):
        for group in () if item is None else item.groups:
            if group.status != REPORTED:
                yield ExcludedGroup(
                    clauses="fairness",
                    slice=name,
                    group=group.name,
                    status=group.status,
                    n=group.n,
                    reason=group.reason or group.status,
                )


def _fairness_clauses(policy: GatePolicy, fairness: FairnessReport) -> Iterator[GateClause]:
    if not policy.max_disparity and not policy.min_ratio:
        return
    for name, item in _gated_slices(policy, fairness):
        for summary, limit in policy.max_disparity.items():
            yield _summary_clause(policy, name, item, summary, limit=limit, comparison="<=")
        for summary, limit in policy.min_ratio.items():
            yield _summary_clause(policy, name, item, summary, limit=limit, comparison=">=")


def _summary_clause(
    policy: GatePolicy,
    slice_name: str,
    item: SliceReport | None,
    summary: str,
    *,
    limit: float,
    comparison: Comparison,
) -> GateClause:
    kind: Literal["max_disparity", "min_ratio"] = (
        "max_disparity" if comparison == "<=" else "min_ratio"
    )
    base = {"name": f"{kind}.{summary}[{slice_name}]", "kind": kind, "comparison": comparison}
    if item is None:
        detail = f"slice '{slice_name}' is not in the fairness report"
        return _unmeasured(base, limit, detail)
    value: Disparity | None = getattr(item.summary, summary)
    if value is None or value.value is None:
        why = item.summary.note or "value undefined"
        return _unmeasured(base, limit, f"{summary} on '{slice_name}' not computed: {why}")
    bound, compared = _chosen(policy, value, comparison)
    figures = {"observed": value.value, "low": value.low, "high": value.high, "bound": bound}
    if compared is None:
        detail = f"{summary} on '{slice_name}' has no {bound} bound (no bootstrap interval)"
        return GateClause(
            **base, **figures, compared=None, limit=limit, passed=False, detail=detail
        )
    passed = at_most(compared, limit) if comparison == "<=" else at_least(compared, limit)
    groups = f"highest {value.highest}, lowest {value.lowest}"
    left_out = f"; {item.summary.n_rows_left_out} rows of private or insufficient groups left out"
    detail = (
        f"{summary} on '{slice_name}': {bound} {figure_text(compared)} {comparison} {figure_text(limit)} "
        f"required (point {figure_text(value.value)}, interval {interval_text(value.low, value.high)}; "
        f"{groups}{left_out if item.summary.n_rows_left_out else ''})"
    )
    return GateClause(
        **base, **figures, compared=compared, limit=limit, passed=passed, detail=detail
    )


def _chosen(
    policy: GatePolicy, value: Disparity, comparison: Comparison
) -> tuple[Bound, float | None]:
    """The figure a clause compares: the point value, or the unfavourable end of the interval."""
    if policy.use_interval_bound == "point":
        return "point", value.value
    if comparison == "<=":
        return "upper", value.high
    return "lower", value.low


# --- impact ratios --------------------------------------------------------------------------


def _impact_table(fairness: FairnessReport, columns: tuple[str, ...]) -> ImpactSlice | None:
    if fairness.impact_ratios is None:
        return None
    try:
        return fairness.impact_ratios.slice(*columns)
    except KeyError:
        return None


def _impact_clauses(policy: GatePolicy, fairness: FairnessReport) -> Iterator[GateClause]:
    for entry, limit in policy.min_impact_ratio.items():
        columns = slice_columns(entry)
        yield _impact_clause(policy, JOIN.join(columns), _impact_table(fairness, columns), limit)


def _impact_excluded(
    policy: GatePolicy, fairness: FairnessReport, already: Sequence[ExcludedGroup]
) -> Iterator[ExcludedGroup]:
    """Private and insufficient categories of the gated impact-ratio tables, not listed yet."""
    listed = {(item.slice, item.group) for item in already}
    for entry in policy.min_impact_ratio:
        columns = slice_columns(entry)
        table = _impact_table(fairness, columns)
        for category in () if table is None else table.categories:
            key = (JOIN.join(columns), category.name)
            if category.status != REPORTED and key not in listed:
                listed.add(key)
                yield ExcludedGroup(
                    clauses="fairness",
                    slice=key[0],
                    group=category.name,
                    status=category.status,
                    n=category.n,
                    reason=category.reason or category.status,
                )


def _gated_ratio(category: ImpactCategory) -> Estimate | None:
    """A category's selection impact ratio, if the gate uses it (reported, with a ratio)."""
    if category.status != REPORTED or category.selection is None:
        return None
    ratio = category.selection.impact_ratio
    return None if ratio is None or ratio.value is None else ratio


def _impact_clause(
    policy: GatePolicy, slice_name: str, table: ImpactSlice | None, limit: float
) -> GateClause:
    """Every reported category's impact ratio, judged on its interval, against ``limit``."""
    base = {
        "name": f"min_impact_ratio[{slice_name}]",
        "kind": "min_impact_ratio",
        "comparison": ">=",
    }
    if table is None:
        detail = f"no impact-ratio table for '{slice_name}' in the fairness report"
        return _unmeasured(base, limit, detail)
    ratios = {c.name: r for c in table.categories if (r := _gated_ratio(c)) is not None}
    if not ratios:
        why = table.note or "no reported category"
        return _unmeasured(base, limit, f"impact ratios on '{slice_name}' not computed: {why}")
    bound: Bound = "lower" if policy.use_interval_bound == "upper" else "upper"
    judged = {name: r.low if bound == "lower" else r.high for name, r in ratios.items()}
    if any(value is None for value in judged.values()):
        detail = f"impact ratios on '{slice_name}' have no interval (fairness.n_bootstrap is 0)"
        return _unmeasured(base, limit, detail)
    worst = min(judged, key=lambda name: judged[name] or 0.0)
    compared, ratio = judged[worst], ratios[worst]
    below = [name for name, value in judged.items() if value is None or not at_least(value, limit)]
    detail = (
        f"impact ratio of the selection rate on '{slice_name}': lowest {bound} bound "
        f"{figure_text(compared)} >= {figure_text(limit)} required (category {worst}: point "
        f"{figure_text(ratio.value)}, interval {interval_text(ratio.low, ratio.high)}; reference "
        f"{table.reference.get('selection')}; below the limit: {', '.join(below) or 'none'}; "
        f"{_impact_disclosure(table)})"
    )
    return GateClause(
        **base,
        observed=ratio.value,
        low=ratio.low,
        high=ratio.high,
        bound=bound,
        compared=compared,
        limit=limit,
        passed=not below,
        detail=detail,
    )


def _impact_disclosure(table: ImpactSlice) -> str:
    """What the table left out of the ratios: small categories, unknown rows, unreported ones."""
    unreported = sum(1 for c in table.categories if c.status != REPORTED)
    return (
        f"{len(table.excluded)} small categories excluded, {table.n_unknown} rows of unknown "
        f"category, {unreported} private or insufficient categories not gated"
    )


def _unmeasured(base: Mapping[str, Any], limit: float, detail: str) -> GateClause:
    return GateClause(
        **base,
        observed=None,
        bound="point",
        compared=None,
        limit=limit,
        passed=False,
        detail=detail,
    )


def _describe(clause: GateClause) -> str:
    if clause.compared is None or clause.limit is None:
        return f"{clause.name}: FAILED: {clause.detail}"
    if clause.kind == "auc_vs_baseline" and clause.reference is not None:
        return (
            f"{clause.name}: model AUC {clause.compared:.4f} < {BASELINE} baseline "
            f"{clause.reference:.4f} - {figure_text(clause.margin)}"
        )
    figure = "value" if clause.bound == "point" else f"{clause.bound} bound"
    line = (
        f"{clause.name}: {figure} {figure_text(clause.compared)} does not meet "
        f"{clause.comparison} {figure_text(clause.limit)}"
    )
    if clause.bound != "point":
        line += f" (point {figure_text(clause.observed)}, interval {interval_text(clause.low, clause.high)})"
    if clause.reference is not None:
        line += f" (champion {figure_text(clause.reference)})"
    return line
