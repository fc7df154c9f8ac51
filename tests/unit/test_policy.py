"""The gate policy and its pure decision function, on hand-built inputs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from pydantic import ValidationError

from evenflow.assess.fairness import (
    BootstrapInfo,
    Disparity,
    FairnessReport,
    GroupMetrics,
    SliceReport,
    SliceSummary,
)
from evenflow.assess.small_groups import CellStatus
from evenflow.config.fairness import FairnessParams
from evenflow.config.gates import (
    MAX_SUMMARIES,
    MIN_SUMMARIES,
    UNGATED_SUMMARIES,
    GatePolicy,
    slice_columns,
)
from evenflow.govern.clauses import GateClause
from evenflow.govern.gates import (
    GateDecision,
    describe_failures,
    gate_failures,
)

# Headline metrics carry their bootstrap interval (the min_auc_lower_bound clause reads it).
GOOD_AUC = {"roc_auc": 0.9, "roc_auc_low": 0.88, "roc_auc_high": 0.92}
# The clauses every default policy checks before fairness and non-regression.
AUC_CLAUSES = ["min_auc", "min_auc_lower_bound", "auc_vs_baseline"]
DPD = "demographic_parity_difference"
EOD = "equalized_odds_difference"
DPR = "demographic_parity_ratio"


def _summary(**values: Disparity) -> SliceSummary:
    return SliceSummary(
        n_groups_compared=2, n_rows_compared=100, n_rows_left_out=0, left_out=(), **values
    )


def _report(slices: Mapping[tuple[str, ...], SliceSummary]) -> FairnessReport:
    """A fairness report holding only what the gate reads: slices and their summaries."""
    overall = GroupMetrics(
        name="all rows", values={}, n=100, n_pos=40, n_neg=60, n_pred_pos=30, status="reported"
    )
    items = tuple(
        SliceReport(name=" × ".join(columns), columns=columns, groups=(), summary=summary)
        for columns, summary in slices.items()
    )
    sensitive = tuple(dict.fromkeys(c for columns in slices for c in columns))
    return FairnessReport(
        params=FairnessParams(),
        sensitive=sensitive,
        n_rows=100,
        n_pos=40,
        n_neg=60,
        calibration_edges=(0.0, 1.0),
        histogram_edges=(0.0, 1.0),
        bootstrap=BootstrapInfo(replicates=1000, confidence_level=0.95, seed=0),
        overall=overall,
        slices=items,
        left_out=(),
    )


def _fair(value: float, low: float | None = None, high: float | None = None) -> Disparity:
    return Disparity(value=value, low=low, high=high, highest="M", lowest="F")


@pytest.fixture
def report() -> FairnessReport:
    return _report(
        {
            ("sex",): _summary(**{DPD: _fair(0.05, 0.02, 0.12), EOD: _fair(0.1, 0.06, 0.14)}),
            ("race",): _summary(**{DPD: _fair(0.08, 0.03, 0.2), DPR: _fair(0.85, 0.75, 0.95)}),
            ("sex", "race"): SliceSummary(
                n_groups_compared=1,
                n_rows_compared=90,
                n_rows_left_out=10,
                left_out=(),
                note="fewer than two reported groups",
            ),
        }
    )


def _group(column: str, group: str, **values: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "column": column,
        "group": group,
        "n": 500,
        "n_pos": 100,
        "n_neg": 400,
        "status": "reported",
        "recall": 0.7,
        "precision": 0.6,
    }
    record.update(values)
    return record


def _names(decision: GateDecision) -> list[str]:
    return [clause.name for clause in decision.failed]


# --- the policy -----------------------------------------------------------------------------


def test_policy_rejects_unknown_and_ungated_summaries() -> None:
    with pytest.raises(ValidationError, match="unknown max_disparity key"):
        GatePolicy(max_disparity={"demographic_parity": 0.1})
    with pytest.raises(ValidationError, match="base_rate_difference"):
        GatePolicy(max_disparity={"base_rate_difference": 0.1})
    with pytest.raises(ValidationError, match="unknown min_ratio key"):
        GatePolicy(min_ratio={DPD: 0.8})
    with pytest.raises(ValidationError, match=r"\[0, 1\]"):
        GatePolicy(max_disparity={DPD: 1.5})
    with pytest.raises(ValidationError, match="extra"):
        GatePolicy.model_validate({"min_acu": 0.7})
    with pytest.raises(ValidationError):
        GatePolicy(min_auc=1.2)
    with pytest.raises(ValidationError, match="repeat"):
        GatePolicy(columns=("race*sex", "sex × race"))


def test_policy_is_frozen_and_round_trips() -> None:
    policy = GatePolicy(max_disparity={EOD: 0.1}, columns=("sex", "race*sex"))
    with pytest.raises(ValidationError):
        policy.min_auc = 0.9  # type: ignore[misc]
    assert GatePolicy.model_validate_json(policy.model_dump_json()) == policy


def test_every_fairness_summary_is_classified() -> None:
    disparities = {
        name
        for name, field in SliceSummary.model_fields.items()
        if field.annotation is not None and "Disparity" in str(field.annotation)
    }
    assert disparities == {*MAX_SUMMARIES, *MIN_SUMMARIES, *UNGATED_SUMMARIES}


def test_slice_columns_parses_intersections() -> None:
    assert slice_columns("sex") == ("sex",)
    assert slice_columns("race*sex") == ("race", "sex")
    assert slice_columns("race × sex") == ("race", "sex")


# --- AUC ------------------------------------------------------------------------------------


def test_auc_passes_at_the_limit_and_fails_below(report: FairnessReport) -> None:
    policy = GatePolicy(min_auc=0.8, min_auc_lower_bound=None)  # point values only here
    at = gate_failures(policy, {"roc_auc": 0.8}, report, None, [])
    below = gate_failures(policy, {"roc_auc": 0.7999}, report, None, [])
    assert at.passed
    assert not below.passed
    assert _names(below) == ["min_auc"]
    clause = below.failed[0]
    assert (clause.observed, clause.compared) == (0.7999, 0.7999)
    assert (clause.comparison, clause.limit) == (">=", 0.8)


def test_auc_undefined_fails(report: FairnessReport) -> None:
    decision = gate_failures(GatePolicy(), {"roc_auc": float("nan")}, report, None, [])
    # An undefined AUC has no interval either: both AUC clauses fail and say why.
    assert _names(decision) == ["min_auc", "min_auc_lower_bound"]
    assert "undefined" in decision.failed[0].detail
    assert "no AUC interval" in decision.failed[1].detail


def test_auc_upper_mode_compares_the_lower_bound_and_records_it(report: FairnessReport) -> None:
    policy = GatePolicy(min_auc=0.8, use_interval_bound="upper", min_auc_lower_bound=None)
    metrics = {"roc_auc": 0.82, "roc_auc_low": 0.79, "roc_auc_high": 0.85}
    assert gate_failures(
        policy.model_copy(update={"use_interval_bound": "point"}), metrics, report, None, []
    ).passed
    decision = gate_failures(policy, metrics, report, None, [])
    assert _names(decision) == ["min_auc"]
    clause = decision.failed[0]
    assert (clause.bound, clause.compared, clause.observed) == ("lower", 0.79, 0.82)
    assert (clause.low, clause.high) == (0.79, 0.85)
    assert describe_failures(decision) == [
        "min_auc: lower bound 0.79 does not meet >= 0.8 (point 0.82, interval [0.79, 0.85])"
    ]
    # Without an interval the clause fails: it no longer falls back to the point value.
    no_interval = gate_failures(policy, {"roc_auc": 0.82}, report, None, [])
    assert _names(no_interval) == ["min_auc"]
    assert no_interval.failed[0].compared is None
    assert "no AUC interval" in no_interval.failed[0].detail


def test_auc_lower_bound_must_exceed_its_minimum(report: FairnessReport) -> None:
    policy = GatePolicy(min_auc=0.0, min_auc_lower_bound=0.5)
    above = {"roc_auc": 0.58, "roc_auc_low": 0.5001, "roc_auc_high": 0.66}
    at = {**above, "roc_auc_low": 0.5}
    assert gate_failures(policy, above, report, None, []).passed
    decision = gate_failures(policy, at, report, None, [])  # "exceed": equal is not enough
    assert _names(decision) == ["min_auc_lower_bound"]
    clause = decision.failed[0]
    assert (clause.observed, clause.low, clause.high) == (0.58, 0.5, 0.66)
    assert (clause.bound, clause.compared) == ("lower", 0.5)
    assert (clause.comparison, clause.limit) == (">", 0.5)
    assert describe_failures(decision) == [
        "min_auc_lower_bound: lower bound 0.5 does not meet > 0.5 (point 0.58, interval [0.5, 0.66])"
    ]
    no_interval = gate_failures(policy, {"roc_auc": 0.58}, report, None, [])
    assert _names(no_interval) == ["min_auc_lower_bound"]
    assert "set gates.min_auc_lower_bound to null" in no_interval.failed[0].detail
    disabled = policy.model_copy(update={"min_auc_lower_bound": None})
    assert "min_auc_lower_bound" not in [
        c.name for c in gate_failures(disabled, {"roc_auc": 0.58}, report, None, []).clauses
    ]


def test_auc_may_not_fall_below_the_logistic_baseline_by_more_than_the_margin(
    report: FairnessReport,
) -> None:
    policy = GatePolicy(min_auc=0.5, max_auc_below_baseline=0.01)
    model = {"roc_auc": 0.696, "roc_auc_low": 0.67, "roc_auc_high": 0.72}
    baseline = {"roc_auc": 0.73, "roc_auc_low": 0.70, "roc_auc_high": 0.76, "accuracy": 0.8}
    decision = gate_failures(policy, model, report, None, [], baseline_metrics=baseline)
    assert _names(decision) == ["auc_vs_baseline"]
    clause = decision.failed[0]
    assert (clause.observed, clause.compared) == (0.696, 0.696)
    assert (clause.reference, clause.margin) == (0.73, 0.01)
    assert clause.limit == pytest.approx(0.72)
    assert describe_failures(decision) == [
        "auc_vs_baseline: model AUC 0.6960 < logistic baseline 0.7300 - 0.01"
    ]
    within = gate_failures(
        policy, {**model, "roc_auc": 0.72}, report, None, [], baseline_metrics=baseline
    )
    assert within.passed  # exactly the margin below: passes
    better = gate_failures(
        policy, {**model, "roc_auc": 0.75}, report, None, [], baseline_metrics=baseline
    )
    assert better.passed
    assert "difference +0.0200" in better.clauses[2].detail


def test_baseline_clause_without_a_baseline_is_recorded_not_failed(
    report: FairnessReport,
) -> None:
    decision = gate_failures(GatePolicy(), GOOD_AUC, report, None, [])
    clause = next(c for c in decision.clauses if c.name == "auc_vs_baseline")
    assert decision.passed
    assert (clause.passed, clause.skipped, clause.detail) == (
        True,
        True,
        "not evaluated: no baseline",
    )
    assert (clause.observed, clause.reference, clause.margin) == (0.9, None, 0.01)
    undefined = gate_failures(
        GatePolicy(), GOOD_AUC, report, None, [], baseline_metrics={"roc_auc": float("nan")}
    )
    assert _names(undefined) == ["auc_vs_baseline"]  # a baseline without an AUC fails closed
    off = GatePolicy(max_auc_below_baseline=None)
    assert "auc_vs_baseline" not in [
        c.name for c in gate_failures(off, GOOD_AUC, report, None, []).clauses
    ]


def _sex_group(
    value: str,
    n: int,
    counts: tuple[int, int, int] | None,
    status: CellStatus,
    reason: str | None = None,
) -> GroupMetrics:
    """One group of the ``sex`` slice; ``counts`` (positives, negatives, predicted positives)
    is None for a private group, which shows only its size."""
    n_pos, n_neg, n_pred_pos = counts or (None, None, None)
    return GroupMetrics(
        name=value,
        values={"sex": value},
        n=n,
        n_pos=n_pos,
        n_neg=n_neg,
        n_pred_pos=n_pred_pos,
        status=status,
        reason=reason,
    )


def test_fairness_clauses_record_the_groups_they_left_out(report: FairnessReport) -> None:
    groups = (
        _sex_group("F", 600, (200, 400, 150), "reported"),
        _sex_group(
            "X",
            45,
            (19, 26, 10),
            "insufficient",
            "insufficient evidence: 19 positives < min_positives=20",
        ),
        _sex_group("Y", 6, None, "private", "6 rows < min_cell=10 (private: only n is shown)"),
    )
    item = report.slice("sex").model_copy(update={"groups": groups})
    crafted = report.model_copy(update={"slices": (item, *report.slices[1:])})
    decision = gate_failures(
        GatePolicy(max_disparity={DPD: 0.5}, columns=("sex",)), GOOD_AUC, crafted, None, []
    )
    assert [(e.clauses, e.slice, e.group, e.status, e.n) for e in decision.excluded] == [
        ("fairness", "sex", "X", "insufficient", 45),
        ("fairness", "sex", "Y", "private", 6),
    ]
    assert "19 positives" in decision.excluded[0].reason
    no_limits = gate_failures(GatePolicy(), GOOD_AUC, crafted, None, [])
    assert no_limits.excluded == ()  # no fairness clause, nothing left out of one


# --- fairness -------------------------------------------------------------------------------


def test_disparity_passes_at_the_limit_and_fails_above(report: FairnessReport) -> None:
    at = gate_failures(GatePolicy(max_disparity={DPD: 0.08}), GOOD_AUC, report, None, [])
    assert at.passed
    assert [c.name for c in at.clauses] == [
        *AUC_CLAUSES,
        f"max_disparity.{DPD}[sex]",
        f"max_disparity.{DPD}[race]",
        "non_regression",
    ]
    above = gate_failures(GatePolicy(max_disparity={DPD: 0.0799}), GOOD_AUC, report, None, [])
    assert _names(above) == [f"max_disparity.{DPD}[race]"]
    race = above.failed[0]
    assert (race.observed, race.low, race.high, race.bound, race.compared, race.limit) == (
        0.08,
        0.03,
        0.2,
        "point",
        0.08,
        0.0799,
    )
    assert "highest M, lowest F" in race.detail


def test_missing_summary_value_fails_closed(report: FairnessReport) -> None:
    # race has no EOD in the hand-built report: the clause fails and says why.
    decision = gate_failures(GatePolicy(max_disparity={EOD: 0.5}), GOOD_AUC, report, None, [])
    assert _names(decision) == [f"max_disparity.{EOD}[race]"]
    assert "not computed" in decision.failed[0].detail


def test_upper_bound_changes_the_outcome(report: FairnessReport) -> None:
    point = GatePolicy(max_disparity={DPD: 0.1}, columns=("sex",))
    upper = point.model_copy(update={"use_interval_bound": "upper"})
    assert gate_failures(point, GOOD_AUC, report, None, []).passed  # point 0.05 <= 0.1
    decision = gate_failures(upper, GOOD_AUC, report, None, [])  # upper 0.12 > 0.1
    assert _names(decision) == [f"max_disparity.{DPD}[sex]"]
    assert (decision.failed[0].bound, decision.failed[0].compared) == ("upper", 0.12)


def test_ratio_uses_the_lower_bound_in_upper_mode(report: FairnessReport) -> None:
    point = GatePolicy(min_ratio={DPR: 0.8}, columns=("race",))
    upper = point.model_copy(update={"use_interval_bound": "upper"})
    at_limit = point.model_copy(update={"min_ratio": {DPR: 0.85}})
    assert gate_failures(point, GOOD_AUC, report, None, []).passed
    assert gate_failures(at_limit, GOOD_AUC, report, None, []).passed
    decision = gate_failures(upper, GOOD_AUC, report, None, [])
    assert _names(decision) == [f"min_ratio.{DPR}[race]"]
    clause = decision.failed[0]
    assert (clause.bound, clause.compared, clause.comparison, clause.limit) == (
        "lower",
        0.75,
        ">=",
        0.8,
    )


def test_upper_mode_without_interval_fails(report: FairnessReport) -> None:
    bare = _report({("sex",): _summary(**{DPD: _fair(0.01)})})
    policy = GatePolicy(max_disparity={DPD: 0.1}, use_interval_bound="upper")
    decision = gate_failures(policy, GOOD_AUC, bare, None, [])
    assert _names(decision) == [f"max_disparity.{DPD}[sex]"]
    assert "no upper bound" in decision.failed[0].detail


def test_slices_named_by_the_policy(report: FairnessReport) -> None:
    policy = GatePolicy(max_disparity={DPD: 0.5}, columns=("race*sex", "age"))
    decision = gate_failures(policy, GOOD_AUC, report, None, [])
    assert _names(decision) == [f"max_disparity.{DPD}[race × sex]", f"max_disparity.{DPD}[age]"]
    assert "fewer than two reported groups" in decision.failed[0].detail
    assert "not in the fairness report" in decision.failed[1].detail


# --- non-regression -------------------------------------------------------------------------


def test_no_champion_is_a_passing_clause(report: FairnessReport) -> None:
    decision = gate_failures(GatePolicy(), GOOD_AUC, report, None, [_group("sex", "F")])
    clause = decision.clauses[-1]
    assert decision.passed
    assert (clause.name, clause.passed, clause.detail) == (
        "non_regression",
        True,
        "no champion to compare",
    )


def test_non_regression_catches_one_groups_drop(report: FairnessReport) -> None:
    policy = GatePolicy(non_regression_margin=0.02)
    champion = [_group("sex", "F"), _group("sex", "M"), _group("race", "A")]
    candidate = [
        _group("sex", "F", recall=0.68),  # a drop of exactly the margin: passes
        _group("sex", "M", recall=0.65),  # a drop of 0.05: fails
        _group("race", "A", precision=0.9),
    ]
    decision = gate_failures(policy, GOOD_AUC, report, champion, candidate)
    assert _names(decision) == ["non_regression.recall[sex=M]"]
    assert len(decision.clauses) == len(AUC_CLAUSES) + 3 * 2
    clause = decision.failed[0]
    assert clause.observed == 0.65
    assert clause.reference == 0.7
    assert clause.limit == pytest.approx(0.68)
    assert "drop 0.05" in clause.detail


def test_non_regression_uses_reported_groups_only_and_records_the_rest(
    report: FairnessReport,
) -> None:
    champion = [_group("race", "B"), _group("race", "C"), _group("race", "D"), _group("race", "F")]
    candidate = [
        _group("race", "B", recall=None, precision=None, status="private", n=8, n_pos=None),
        _group("race", "C", recall=0.1, status="insufficient", n_pos=5, n_neg=495),
        _group("race", "E", recall=0.1),
        # written before the one rule: no status; 12 positives make it insufficient evidence
        {"column": "race", "group": "F", "n": 300, "n_pos": 12, "recall": 0.1, "precision": 0.1},
    ]
    decision = gate_failures(GatePolicy(), GOOD_AUC, report, champion, candidate)
    assert decision.passed
    details = {c.name: c.detail for c in decision.clauses if c.kind == "non_regression"}
    assert all(c.skipped for c in decision.clauses if c.kind == "non_regression")
    assert "private" in details["non_regression.recall[race=B]"]
    assert "min_cell=10" in details["non_regression.recall[race=B]"]
    assert "5 positives < min_positives=20" in details["non_regression.recall[race=C]"]
    assert "12 positives < min_positives=20" in details["non_regression.recall[race=F]"]
    assert "absent from the champion" in details["non_regression.recall[race=E]"]
    assert "absent from the candidate" in details["non_regression.recall[race=D]"]
    private = next(c for c in decision.clauses if c.name == "non_regression.recall[race=B]")
    assert private.observed is None and private.reference is None  # a private cell: only n
    excluded = {(e.slice, e.group): e for e in decision.excluded}
    assert set(excluded) == {("race", "B"), ("race", "C"), ("race", "F")}
    assert excluded[("race", "B")].status == "private" and excluded[("race", "B")].n == 8
    assert excluded[("race", "C")].status == "insufficient"
    assert all(e.clauses == "non_regression" for e in decision.excluded)


def test_policy_refuses_the_retired_positives_floor() -> None:
    with pytest.raises(ValidationError, match="min_group_positives was removed"):
        GatePolicy.model_validate({"min_group_positives": 20})


def test_non_regression_undefined_candidate_fails(report: FairnessReport) -> None:
    champion = [_group("sex", "F")]
    candidate = [_group("sex", "F", precision=None)]
    decision = gate_failures(GatePolicy(), GOOD_AUC, report, champion, candidate)
    assert _names(decision) == ["non_regression.precision[sex=F]"]


def test_non_regression_follows_policy_columns(report: FairnessReport) -> None:
    policy = GatePolicy(columns=("sex",), non_regression_metrics=("recall",))
    champion = [_group("sex", "F"), _group("race", "A")]
    candidate = [_group("sex", "F"), _group("race", "A", recall=0.1)]
    decision = gate_failures(policy, GOOD_AUC, report, champion, candidate)
    assert decision.passed
    assert [c.name for c in decision.clauses] == [*AUC_CLAUSES, "non_regression.recall[sex=F]"]


# --- the decision ---------------------------------------------------------------------------


def test_decision_lists_exactly_the_failed_clauses(report: FairnessReport) -> None:
    policy = GatePolicy(
        min_auc=0.95, max_disparity={DPD: 0.06}, use_interval_bound="point", columns=None
    )
    champion = [_group("sex", "F")]
    candidate = [_group("sex", "F", precision=0.5)]
    decision = gate_failures(policy, GOOD_AUC, report, champion, candidate)
    assert not decision.passed
    assert _names(decision) == [
        "min_auc",
        f"max_disparity.{DPD}[race]",
        "non_regression.precision[sex=F]",
    ]
    assert decision.failed == tuple(c for c in decision.clauses if not c.passed)
    assert decision.policy == policy
    assert GateDecision.model_validate_json(decision.model_dump_json()) == decision


def test_decision_rejects_inconsistent_records() -> None:
    failing = GateClause(
        name="min_auc",
        kind="min_auc",
        passed=False,
        observed=0.5,
        bound="point",
        compared=0.5,
        comparison=">=",
        limit=0.7,
        detail="",
    )
    with pytest.raises(ValidationError, match="failed must list"):
        GateDecision(passed=False, clauses=(failing,), failed=(), policy=GatePolicy())
    with pytest.raises(ValidationError, match="passes exactly"):
        GateDecision(passed=True, clauses=(failing,), failed=(failing,), policy=GatePolicy())


def test_describe_failures_gives_one_line_with_numbers(report: FairnessReport) -> None:
    policy = GatePolicy(min_auc=0.95, max_disparity={DPD: 0.1}, use_interval_bound="upper")
    champion = [_group("sex", "M")]
    candidate = [_group("sex", "M", recall=0.6)]
    decision = gate_failures(policy, GOOD_AUC, report, champion, candidate)
    lines = describe_failures(decision)
    assert len(lines) == len(decision.failed) == 4
    # upper mode: min_auc compares the AUC's lower bound (it used to fall back to the point)
    assert (
        lines[0]
        == "min_auc: lower bound 0.88 does not meet >= 0.95 (point 0.9, interval [0.88, 0.92])"
    )
    assert lines[1] == (
        f"max_disparity.{DPD}[sex]: upper bound 0.12 does not meet <= 0.1 "
        "(point 0.05, interval [0.02, 0.12])"
    )
    assert (
        lines[3] == "non_regression.recall[sex=M]: value 0.6 does not meet >= 0.68 (champion 0.7)"
    )
    assert describe_failures(gate_failures(GatePolicy(), GOOD_AUC, report, None, [])) == []
