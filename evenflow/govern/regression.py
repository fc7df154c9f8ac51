"""Non-regression: no group may do worse than under the champion, by more than a margin.

Only groups ``reported`` on both sides are compared (the one rule for small groups,
:func:`evenflow.assess.fairness.cell_status`); a private or insufficient group is listed as left
out, with its reason, and its clauses are skipped, never silently dropped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from evenflow.assess.small_groups import PRIVATE, REPORTED, cell_reason, record_status
from evenflow.config.fairness import FairnessParams
from evenflow.config.gates import GatePolicy, RegressionMetric, slice_columns
from evenflow.govern.clauses import ExcludedGroup, GateClause, at_least, figure_text
from evenflow.govern.comparison import group_key
from evenflow.numbers import finite_int, finite_number


def regression_clauses(
    policy: GatePolicy,
    champion_groups: Sequence[Mapping[str, Any]] | None,
    candidate_groups: Sequence[Mapping[str, Any]],
    rule: FairnessParams,
) -> tuple[list[GateClause], list[ExcludedGroup]]:
    """No group's recall or precision worse than the champion's by more than the margin.

    Returns the clauses and the groups left out of them (private or insufficient on either side).
    """
    if not policy.non_regression_metrics:
        return [], []
    if champion_groups is None:
        skipped = GateClause(
            name="non_regression",
            kind="non_regression",
            passed=True,
            skipped=True,
            observed=None,
            bound="point",
            compared=None,
            comparison=">=",
            limit=None,
            detail="no champion to compare",
        )
        return [skipped], []
    wanted = _regression_columns(policy)
    champion = {group_key(g): g for g in champion_groups}
    candidate = {group_key(g): g for g in candidate_groups}
    keys = [k for k in candidate if wanted is None or k[0] in wanted]
    keys += [k for k in champion if k not in candidate and (wanted is None or k[0] in wanted)]
    clauses, excluded = [], []
    for key in keys:
        ours, theirs = candidate.get(key), champion.get(key)
        left_out = _left_out(key, ours, theirs, rule)
        if left_out is not None:
            excluded.append(left_out)
        for metric in policy.non_regression_metrics:
            clauses.append(_regression_clause(policy, key, metric, ours, theirs, left_out=left_out))
    return clauses, excluded


def _regression_columns(policy: GatePolicy) -> set[str] | None:
    """Columns compared with the champion: the policy's single-column slices, or all."""
    if policy.columns is None:
        return None
    return {cols[0] for cols in map(slice_columns, policy.columns) if len(cols) == 1}


def _left_out(
    key: tuple[str, str],
    candidate: Mapping[str, Any] | None,
    champion: Mapping[str, Any] | None,
    rule: FairnessParams,
) -> ExcludedGroup | None:
    """The group as left out of non-regression, when either side's record is not reported."""
    for who, record in (("candidate", candidate), ("champion", champion)):
        if record is None:
            continue
        status = record_status(record, rule)
        if status == REPORTED:
            continue
        n, n_pos = finite_int(record.get("n")), finite_int(record.get("n_pos"))
        why = None
        if status == PRIVATE and n is not None and n < rule.min_cell:
            why = cell_reason(n, 0, 0, rule)  # names n only
        elif status != PRIVATE and n is not None and n_pos is not None:
            why = cell_reason(n, n_pos, n - n_pos, rule)
        reason = f"{why or f'{status} (no figures recorded)'} in the {who}'s evaluation"
        return ExcludedGroup(
            clauses="non_regression", slice=key[0], group=key[1], status=status, n=n, reason=reason
        )
    return None


def _regression_clause(
    policy: GatePolicy,
    key: tuple[str, str],
    metric: RegressionMetric,
    candidate: Mapping[str, Any] | None,
    champion: Mapping[str, Any] | None,
    *,
    left_out: ExcludedGroup | None,
) -> GateClause:
    ours = None if candidate is None else finite_number(candidate.get(metric))
    theirs = None if champion is None else finite_number(champion.get(metric))
    limit = None if theirs is None else theirs - policy.non_regression_margin
    base = {
        "name": f"non_regression.{metric}[{key[0]}={key[1]}]",
        "kind": "non_regression",
        "observed": ours,
        "bound": "point",
        "compared": ours,
        "comparison": ">=",
        "limit": limit,
        "reference": theirs,
        "margin": policy.non_regression_margin,
    }
    if left_out is not None and left_out.status == PRIVATE:  # a private cell shows only its n
        base.update(observed=None, compared=None, limit=None, reference=None)
    skip = _skip_reason(candidate, champion, left_out)
    if skip is None and (theirs is None or limit is None):
        skip = "champion value undefined"
    if skip is not None or theirs is None or limit is None:
        return GateClause(**base, passed=True, skipped=True, detail=f"skipped: {skip}")
    if ours is None:
        detail = f"candidate {metric} undefined where the champion's is {figure_text(theirs)}"
        return GateClause(**base, passed=False, detail=detail)
    margin = policy.non_regression_margin
    detail = (
        f"{metric} {figure_text(ours)} vs champion {figure_text(theirs)}: drop {figure_text(theirs - ours)}, "
        f"margin {figure_text(margin)}"
    )
    return GateClause(**base, passed=at_least(ours, limit), detail=detail)


def _skip_reason(
    candidate: Mapping[str, Any] | None,
    champion: Mapping[str, Any] | None,
    left_out: ExcludedGroup | None,
) -> str | None:
    """Why a group is not compared, or None when it is."""
    if candidate is None:
        return "group absent from the candidate's evaluation"
    if champion is None:
        return "group absent from the champion's evaluation"
    if left_out is not None:
        return left_out.reason
    return None
