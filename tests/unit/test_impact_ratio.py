"""Impact-ratio tables (NYC Local Law 144) against a direct pandas computation, their flags,
the gate clause built on them, and their place in the model card."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import MetricFrame, selection_rate
from pydantic import ValidationError

from evenflow import layout
from evenflow.assess.fairness import FairnessReport, fairness_report
from evenflow.assess.impact_ratio import impact_ratio_report
from evenflow.assess.impact_tables import (
    BELOW,
    OK,
    UNSURE,
    ImpactRatioReport,
    ImpactSlice,
    impact_flag,
)
from evenflow.config.fairness import FairnessParams, ImpactRatioParams
from evenflow.config.gates import GatePolicy
from evenflow.govern.gates import describe_failures, gate_failures
from evenflow.reports.model_card import DataSummary, Lineage, ModelCardInputs, render_model_card

GOOD_AUC = {"roc_auc": 0.9, "roc_auc_low": 0.88, "roc_auc_high": 0.92}
DECLINED = "Declined"
PARAMS = FairnessParams(n_bootstrap=200, impact_ratio=ImpactRatioParams(unknown_values=(DECLINED,)))


@pytest.fixture(scope="module")
def planted() -> pd.DataFrame:
    """3,000 scored rows: a planted selection gap by sex and race, a race category (D) under 2%
    of the rows, race missing or 'Declined' for 70 rows and sex missing for 25."""
    rng = np.random.default_rng(14)
    n = 3_000
    race = rng.choice(np.array(["A", "B", "C"], dtype=object), n, p=[0.5, 0.35, 0.15])
    race[:45] = "D"  # 1.5% of the rows: excluded from the ratios, listed with its n
    race[45:95] = None
    race[95:115] = DECLINED
    sex = rng.choice(np.array(["F", "M"], dtype=object), n)
    sex[115:140] = None
    shift = 0.15 * (sex == "M") + 0.1 * (race == "A") - 0.1 * (race == "C")
    score = np.clip(rng.uniform(0, 0.8, n) + shift, 0.0, 1.0)
    label = (rng.uniform(size=n) < 0.5).astype(np.int64)
    return pd.DataFrame({"label": label, "score": score, "sex": sex, "race": race})


@pytest.fixture(scope="module")
def report(planted: pd.DataFrame) -> ImpactRatioReport:
    return impact_ratio_report(planted, ["sex", "race"], PARAMS)


def _direct(frame: pd.DataFrame, columns: list[str], threshold: float) -> dict[str, object]:
    """The table by hand: known rows, per category n, rates, share, 2% exclusion and ratios."""
    known = np.ones(len(frame), dtype=bool)
    for column in columns:
        known &= frame[column].notna().to_numpy() & (frame[column] != DECLINED).to_numpy()
    median = frame["score"].median()
    rows = frame.assign(
        selected=(frame["score"] >= threshold).astype(float),
        above=(frame["score"] > median).astype(float),
    )[known]
    grouped = rows.groupby(columns).agg(
        n=("score", "size"), selection=("selected", "mean"), scoring=("above", "mean")
    )
    grouped.index = [" × ".join(key) if isinstance(key, tuple) else key for key in grouped.index]
    grouped["share"] = grouped["n"] / len(frame)
    large = grouped[grouped["share"] >= 0.02]
    for rate in ("selection", "scoring"):
        large = large.assign(**{f"{rate}_ratio": large[rate] / large[rate].max()})
    return {
        "unknown": int((~known).sum()),
        "table": large,
        "excluded": grouped[grouped["share"] < 0.02]["n"].to_dict(),
    }


@pytest.mark.parametrize("columns", [["sex"], ["race"], ["sex", "race"]])
def test_table_matches_a_direct_computation(
    planted: pd.DataFrame, report: ImpactRatioReport, columns: list[str]
) -> None:
    expected = _direct(planted, columns, PARAMS.threshold)
    table = report.slice(*columns)
    assert table.n_rows == len(planted)
    assert table.n_unknown == expected["unknown"]
    assert {c.name: c.n for c in table.excluded} == expected["excluded"]
    frame = expected["table"]
    assert isinstance(frame, pd.DataFrame)
    assert [c.name for c in table.categories] == list(frame.index)
    for category in table.categories:
        row = frame.loc[category.name]
        assert category.status == "reported"
        assert category.n == row["n"]
        assert category.share == pytest.approx(row["share"])
        for rate in ("selection", "scoring"):
            figures = getattr(category, rate)
            assert figures.rate.value == pytest.approx(row[rate], abs=1e-12)
            assert figures.impact_ratio.value == pytest.approx(row[f"{rate}_ratio"], abs=1e-12)
            assert figures.impact_ratio.low <= figures.impact_ratio.value
            assert figures.impact_ratio.value <= figures.impact_ratio.high
    assert table.reference["selection"] == frame["selection"].idxmax()


def test_planted_exclusions_and_unknowns(report: ImpactRatioReport) -> None:
    race = report.slice("race")
    assert race.n_unknown == 70  # 50 missing + 20 'Declined'
    assert [(c.name, c.n) for c in race.excluded] == [("D", 45)]
    assert "D" not in {c.name for c in race.categories}
    both = report.slice("sex", "race")
    assert both.n_unknown == 70 + 25  # unknown in either column
    assert {c.name for c in both.excluded} == {"F × D", "M × D"}
    # the planted gaps: women and race C are selected less, and flagged
    sex = {c.name: c for c in report.slice("sex").categories}
    assert sex["M"].selection is not None and sex["M"].selection.impact_ratio is not None
    assert sex["M"].selection.impact_ratio.value == 1.0
    assert sex["F"].selection is not None and sex["F"].selection.flag == BELOW


def test_selection_rates_agree_with_fairlearn(
    planted: pd.DataFrame, report: ImpactRatioReport
) -> None:
    known = planted[planted["sex"].notna()]
    frame = MetricFrame(
        metrics=selection_rate,
        y_true=known["label"],
        y_pred=(known["score"] >= PARAMS.threshold).astype(int),
        sensitive_features=known["sex"],
    )
    for category in report.slice("sex").categories:
        assert category.selection is not None
        assert category.selection.rate.value == pytest.approx(frame.by_group[category.name])


def test_the_fairness_report_carries_the_tables(planted: pd.DataFrame) -> None:
    fairness = fairness_report(planted, ["sex", "race"], PARAMS)
    assert fairness.impact_ratios == impact_ratio_report(planted, ["sex", "race"], PARAMS)
    payload = fairness.model_dump(mode="json")
    assert payload["impact_ratios"]["slices"][0]["name"] == "sex"
    assert FairnessReport.model_validate(payload) == fairness
    older = {k: v for k, v in payload.items() if k != "impact_ratios"}
    assert FairnessReport.model_validate(older).impact_ratios is None


def test_a_private_category_shows_only_n() -> None:
    """8 rows of 300 are 2.7% (kept in the table) but under the privacy floor of 10."""
    rng = np.random.default_rng(5)
    group = np.array(["big"] * 150 + ["other"] * 142 + ["few"] * 8, dtype=object)
    frame = pd.DataFrame(
        {"score": rng.uniform(size=300), "label": rng.integers(0, 2, 300), "g": group}
    )
    table = impact_ratio_report(frame, ["g"], FairnessParams(n_bootstrap=50)).slice("g")
    few = next(c for c in table.categories if c.name == "few")
    assert few.status == "private" and few.n == 8
    assert few.selection is None and few.scoring is None
    assert table.reference["selection"] in {"big", "other"}
    unlabelled = impact_ratio_report(frame.drop(columns="label"), ["g"], FairnessParams())
    assert {c.name: c.status for c in unlabelled.slice("g").categories} == {
        "big": "reported",
        "other": "reported",
        "few": "private",
    }


@pytest.mark.parametrize(
    ("low", "high", "flag"),
    [(0.4, 0.7, BELOW), (0.7, 0.9, UNSURE), (0.8, 1.0, OK), (0.85, 1.0, OK), (None, 1.0, None)],
)
def test_flag_reads_the_interval(low: float | None, high: float, flag: str | None) -> None:
    assert impact_flag(low, high, 0.8) == flag


def _decided(groups: dict[str, tuple[int, int]]) -> pd.DataFrame:
    """Rows per group with exactly ``selected`` of ``n`` decided positive; balanced labels."""
    parts = []
    for name, (n, selected) in groups.items():
        decision = np.r_[np.ones(selected), np.zeros(n - selected)].astype(np.int64)
        label = np.arange(n) % 2
        parts.append(
            pd.DataFrame(
                {"g": name, "decision": decision, "label": label, "score": 0.3 + 0.4 * decision}
            )
        )
    return pd.concat(parts, ignore_index=True)


@pytest.fixture(scope="module")
def constructed() -> FairnessReport:
    """ref selects 50%; low 25% (ratio 0.5, clearly below); mid 40% of 100 rows (ratio 0.8,
    a wide interval straddling 0.8, yet 3% of the rows); high 48% (ratio 0.96, clearly above)."""
    frame = _decided(
        {"ref": (1000, 500), "low": (1000, 250), "mid": (100, 40), "high": (1000, 480)}
    )
    return fairness_report(frame, ["g"], FairnessParams(n_bootstrap=400))


def test_without_bootstrap_the_flag_reads_the_point_value() -> None:
    frame = _decided({"ref": (1000, 500), "low": (1000, 250), "high": (1000, 480)})
    table = impact_ratio_report(frame, ["g"], FairnessParams(n_bootstrap=0)).slice("g")
    figures = {c.name: c.selection for c in table.categories if c.selection is not None}
    assert {name: f.flag for name, f in figures.items()} == {"high": OK, "low": BELOW, "ref": OK}
    assert all(f.impact_ratio is not None and f.impact_ratio.low is None for f in figures.values())


def _table(report: FairnessReport, *columns: str) -> ImpactSlice:
    assert report.impact_ratios is not None
    return report.impact_ratios.slice(*columns)


def test_flags_on_constructed_cases(constructed: FairnessReport) -> None:
    table = _table(constructed, "g")
    flags = {c.name: c.selection.flag for c in table.categories if c.selection is not None}
    assert flags == {"high": OK, "low": BELOW, "mid": UNSURE, "ref": OK}
    ratios = {c.name: c.selection.impact_ratio for c in table.categories if c.selection}
    assert ratios["low"] is not None and ratios["low"].value == pytest.approx(0.5)
    assert ratios["mid"] is not None and ratios["mid"].value == pytest.approx(0.8)


def test_gate_clause_fails_with_its_numbers(constructed: FairnessReport) -> None:
    decision = gate_failures(
        GatePolicy(min_impact_ratio={"g": 0.8}), GOOD_AUC, constructed, None, []
    )
    clause = next(c for c in decision.clauses if c.kind == "min_impact_ratio")
    low = next(c for c in _table(constructed, "g").categories if c.name == "low")
    assert low.selection is not None and low.selection.impact_ratio is not None
    assert not decision.passed and clause.name == "min_impact_ratio[g]"
    assert clause.bound == "upper" and clause.limit == 0.8
    assert clause.compared == low.selection.impact_ratio.high < 0.8
    assert clause.observed == pytest.approx(0.5)
    assert "below the limit: low;" in clause.detail  # mid straddles: not judged below
    assert describe_failures(decision)[0].startswith("min_impact_ratio[g]: upper bound")


def test_gate_clause_passes_and_strict_mode_counts_the_straddler(
    constructed: FairnessReport,
) -> None:
    lenient = gate_failures(
        GatePolicy(min_impact_ratio={"g": 0.4}), GOOD_AUC, constructed, None, []
    )
    assert lenient.passed
    strict = gate_failures(
        GatePolicy(min_impact_ratio={"g": 0.7}, use_interval_bound="upper"),
        GOOD_AUC,
        constructed,
        None,
        [],
    )
    clause = next(c for c in strict.clauses if c.kind == "min_impact_ratio")
    assert not clause.passed and clause.bound == "lower"
    assert "below the limit: low, mid;" in clause.detail


def test_gate_clause_is_off_by_default_and_fails_without_a_table(
    constructed: FairnessReport,
) -> None:
    default = gate_failures(GatePolicy(), GOOD_AUC, constructed, None, [])
    assert all(c.kind != "min_impact_ratio" for c in default.clauses)
    missing = gate_failures(
        GatePolicy(min_impact_ratio={"sex": 0.8}), GOOD_AUC, constructed, None, []
    )
    assert not missing.passed
    assert "no impact-ratio table for 'sex'" in missing.failed[0].detail
    with pytest.raises(ValidationError, match="min_impact_ratio limits"):
        GatePolicy(min_impact_ratio={"sex": 1.5})


def test_card_shows_the_impact_ratio_tables(constructed: FairnessReport) -> None:
    inputs = ModelCardInputs(
        model_name="hiring",
        intended_use="Screening.",
        out_of_scope_use="Anything else.",
        data=DataSummary(dataset="hiring", data_md5="0" * 32 + ".dir", rows={"test": 3_100}),
        metrics={"roc_auc": 0.9},
        lineage=Lineage.from_tags(
            {
                layout.DATA_MD5_TAG: "0" * 32 + ".dir",
                layout.GIT_COMMIT_TAG: "c" * 40,
                layout.GIT_DIRTY_TAG: "false",
                layout.PARAMS_HASH_TAG: "p" * 64,
                layout.ENV_HASH_TAG: "e" * 64,
                layout.FLOW_RUN_ID_TAG: "flow-run-1",
            }
        ),
        fairness=constructed,
    )
    page, markdown = render_model_card(inputs)
    for text in (page, markdown):
        assert "below four-fifths" in text and "insufficient evidence" in text
    assert 'href="#impact-ratios"' in page  # a section of its own, in the contents list
    impact = markdown.split("## Impact ratios", 1)[1].split("### g", 1)[1]
    row = next(line for line in impact.splitlines() if line.startswith("| low "))
    assert row.startswith("| low | 1,000 | 32.3% | 0.25 [") and "| below four-fifths |" in row
