"""The fairness report against Fairlearn (the oracle for rates) and against planted effects."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_difference,
    demographic_parity_ratio,
    equalized_odds_difference,
)

from evenflow.assess.bootstrap import poisson_weights
from evenflow.assess.fairness import (
    Disparity,
    FairnessReport,
    SliceReport,
    fairness_report,
    report_to_json,
)
from evenflow.assess.fairness_tally import GROUP_METRICS
from evenflow.assess.group_rates import RATE_METRICS
from evenflow.assess.predictions import MISSING
from evenflow.assess.small_groups import cell_reason, cell_status, cell_statuses, record_status
from evenflow.config.fairness import FairnessParams
from evenflow.data.synth import PlantedTruth, make_planted
from evenflow.errors import DataError
from tests.realdata.oracle import metric_frame

SENSITIVE = ("sex", "race")


@pytest.fixture(scope="module")
def planted() -> tuple[pd.DataFrame, PlantedTruth]:
    return make_planted(40_000, seed=11)


@pytest.fixture(scope="module")
def report(planted: tuple[pd.DataFrame, PlantedTruth]) -> FairnessReport:
    """1,000 replicates at 99%, so that the fixed-seed recovery checks are not a coin toss."""
    return fairness_report(planted[0], SENSITIVE, FairnessParams(confidence_level=0.99, seed=5))


@pytest.fixture(scope="module")
def oracle() -> pd.DataFrame:
    """Fewer rows for the Fairlearn comparisons: MetricFrame takes seconds on 40k rows."""
    frame, _ = make_planted(10_000, seed=2)
    return frame


@pytest.fixture(scope="module")
def oracle_report(oracle: pd.DataFrame) -> FairnessReport:
    return fairness_report(oracle, SENSITIVE, FairnessParams(n_bootstrap=0))


@pytest.fixture(scope="module")
def small() -> pd.DataFrame:
    frame, _ = make_planted(4_000, seed=3)
    return frame


def _predicted(frame: pd.DataFrame, threshold: float = 0.5) -> pd.Series:
    return (frame["score"] >= threshold).astype(int)


def _metric_frame(frame: pd.DataFrame, columns: tuple[str, ...]) -> MetricFrame:
    """Fairlearn's figures per group of ``columns`` (the realdata oracle's), decided at 0.5."""
    return metric_frame(frame, columns, threshold=0.5, calibration_bins=10)


def _kept_rows(frame: pd.DataFrame, item: SliceReport) -> pd.DataFrame:
    """Rows of the slice's reported groups: what the report's summaries compare."""
    kept = {tuple(g.values.values()) for g in item.groups if g.status == "reported"}
    keys = list(zip(*(frame[c] for c in item.columns), strict=True))
    return frame[[key in kept for key in keys]]


# --- Fairlearn oracle -----------------------------------------------------------------------


@pytest.mark.parametrize("columns", [("sex",), ("race",), ("sex", "race")])
def test_per_group_values_equal_fairlearn(
    oracle: pd.DataFrame, oracle_report: FairnessReport, columns: tuple[str, ...]
) -> None:
    by_group = _metric_frame(oracle, columns).by_group
    item = oracle_report.slice(*columns)
    assert len(item.groups) == len(by_group)
    if columns == ("sex", "race"):  # insufficient groups are shown, so they are checked too
        assert any(g.status == "insufficient" for g in item.groups)
    for group in item.groups:
        key = tuple(group.values[c] for c in columns)
        expected = by_group.loc[key if len(key) > 1 else key[0]]
        assert group.n == pytest.approx(expected["n"], abs=1e-9)
        if group.status == "private":  # only n is shown
            assert group.n_pos is None and group.selection_rate is None
            continue
        for metric in ("selection_rate", "tpr", "fpr", "fnr", "precision", "accuracy"):
            value = getattr(group, metric).value
            if np.isnan(expected[metric]):  # undefined, e.g. precision with no predicted positives
                assert value is None, (group.name, metric)
            else:
                assert value == pytest.approx(expected[metric], abs=1e-9), (group.name, metric)


@pytest.mark.parametrize("columns", [("sex",), ("race",), ("sex", "race")])
def test_summaries_equal_fairlearn_on_reported_groups(
    oracle: pd.DataFrame, oracle_report: FairnessReport, columns: tuple[str, ...]
) -> None:
    item = oracle_report.slice(*columns)
    assert item.summary.n_groups_compared >= 2
    rows = _kept_rows(oracle, item)
    y, y_pred, groups = rows["label"], _predicted(rows), rows[list(columns)]
    summary = item.summary
    assert summary.demographic_parity_difference is not None
    assert summary.demographic_parity_ratio is not None
    assert summary.equalized_odds_difference is not None
    assert summary.demographic_parity_difference.value == pytest.approx(
        demographic_parity_difference(y, y_pred, sensitive_features=groups), abs=1e-9
    )
    assert summary.demographic_parity_ratio.value == pytest.approx(
        demographic_parity_ratio(y, y_pred, sensitive_features=groups), abs=1e-9
    )
    assert summary.equalized_odds_difference.value == pytest.approx(
        equalized_odds_difference(y, y_pred, sensitive_features=groups), abs=1e-9
    )


def test_missing_values_form_their_own_group(small: pd.DataFrame) -> None:
    frame = small.copy()
    frame["race"] = frame["race"].astype(object)
    frame.loc[frame.index[::7], "race"] = None
    report = fairness_report(frame, SENSITIVE, FairnessParams(n_bootstrap=0))
    filled = frame.assign(race=frame["race"].fillna(MISSING))
    by_group = _metric_frame(filled, ("race",)).by_group
    missing = next(g for g in report.slice("race").groups if g.name == MISSING)
    assert missing.n == len(frame.index[::7])
    assert missing.selection_rate is not None and missing.tpr is not None
    assert missing.selection_rate.value == pytest.approx(by_group.loc[MISSING, "selection_rate"])
    assert missing.tpr.value == pytest.approx(by_group.loc[MISSING, "tpr"])


# --- planted effects ------------------------------------------------------------------------


def _inside(estimate: Any, truth: float) -> bool:
    return bool(estimate.low <= truth <= estimate.high)


def test_recovers_planted_base_rate_gap(
    planted: tuple[pd.DataFrame, PlantedTruth], report: FairnessReport
) -> None:
    truth = planted[1]
    summary = report.slice("sex").summary
    assert truth.base_rate_gap == pytest.approx(0.20)
    assert _inside(summary.base_rate_difference, truth.base_rate_gap)
    for group in report.slice("sex").groups:
        assert _inside(group.base_rate, truth.groups["sex"][group.name].base_rate)


def test_recovers_planted_tpr_gap(
    planted: tuple[pd.DataFrame, PlantedTruth], report: FairnessReport
) -> None:
    truth = planted[1]
    summary = report.slice("sex").summary
    assert _inside(summary.equal_opportunity_difference, truth.tpr_gap)
    assert _inside(summary.demographic_parity_difference, truth.gap("sex", "selection_rate"))
    for group in report.slice("sex").groups:
        assert _inside(group.tpr, truth.groups["sex"][group.name].tpr)
        assert _inside(group.fpr, truth.groups["sex"][group.name].fpr)


def test_recovers_planted_miscalibration(
    planted: tuple[pd.DataFrame, PlantedTruth], report: FairnessReport
) -> None:
    truth = planted[1]
    race = report.slice("race")
    target = next(g for g in race.groups if g.name == truth.effects.miscalibrated_race)
    assert _inside(target.ece, truth.miscalibrated_ece)
    assert _inside(race.summary.calibration_gap, truth.gap("race", "ece"))
    assert race.summary.calibration_gap is not None
    assert race.summary.calibration_gap.highest == truth.effects.miscalibrated_race
    white = next(g for g in race.groups if g.name == "White")
    assert white.ece is not None and white.ece.high is not None
    assert white.ece.high < truth.miscalibrated_ece / 5  # the calibrated majority stays calibrated


# --- suppression ----------------------------------------------------------------------------


def _with_cells(small: pd.DataFrame) -> pd.DataFrame:
    """The small frame plus a 6-row race (private) and a 40-row race with 19 positives."""
    tiny = pd.DataFrame(
        {
            "_row_id": np.arange(10**6, 10**6 + 6),
            "sex": ["Female"] * 6,
            "race": ["Tiny"] * 6,
            "label": [1, 1, 0, 0, 0, 0],
            "score": [0.9, 0.2, 0.7, 0.1, 0.1, 0.3],
        }
    )
    rng = np.random.default_rng(4)
    few = pd.DataFrame(
        {
            "_row_id": np.arange(2 * 10**6, 2 * 10**6 + 40),
            "sex": rng.choice(["Female", "Male"], 40),
            "race": ["Few"] * 40,
            "label": np.repeat([1, 0], [19, 21]),
            "score": rng.uniform(size=40),
        }
    )
    return pd.concat([small, tiny, few], ignore_index=True)


def test_private_and_insufficient_cells_are_listed_and_left_out_of_summaries(
    small: pd.DataFrame,
) -> None:
    frame = _with_cells(small)
    report = fairness_report(frame, SENSITIVE, FairnessParams(n_bootstrap=50))
    race = report.slice("race")
    listed = {c.group: c for c in report.left_out if c.slice == "race"}
    assert listed["Tiny"].status == "private"
    assert (listed["Tiny"].n, listed["Tiny"].n_pos, listed["Tiny"].n_neg) == (6, None, None)
    assert "min_cell=10" in listed["Tiny"].reason
    assert listed["Few"].status == "insufficient"
    assert (listed["Few"].n, listed["Few"].n_pos, listed["Few"].n_neg) == (40, 19, 21)
    assert "19 positives < min_positives=20" in listed["Few"].reason

    tiny = next(g for g in race.groups if g.name == "Tiny")
    assert tiny.status == "private" and tiny.n == 6 and tiny.n_pos is None
    assert all(getattr(tiny, m) is None for m in GROUP_METRICS)
    assert tiny.scores is None and tiny.reliability == ()
    few = next(g for g in race.groups if g.name == "Few")
    assert few.status == "insufficient" and few.base_rate is not None
    assert few.base_rate.value == pytest.approx(19 / 40)
    assert few.tpr is not None and few.tpr.low is not None and few.tpr.high is not None
    reported = next(g for g in race.groups if g.name == "White")
    assert reported.tpr is not None and reported.tpr.low is not None
    assert few.tpr.high - few.tpr.low > reported.tpr.high - reported.tpr.low  # type: ignore[operator]

    summary = race.summary
    assert summary.n_groups_compared == sum(g.status == "reported" for g in race.groups)
    left = {e.status: e for e in summary.left_out}
    assert left["private"].groups >= 1 and left["insufficient"].groups >= 1
    assert summary.n_rows_left_out == sum(g.n for g in race.groups if g.status != "reported")
    assert summary.n_rows_compared + summary.n_rows_left_out == report.n_rows
    kept = _kept_rows(frame, race)
    assert summary.demographic_parity_difference is not None
    assert summary.demographic_parity_difference.value == pytest.approx(
        demographic_parity_difference(
            kept["label"], _predicted(kept), sensitive_features=kept["race"]
        ),
        abs=1e-9,
    )


def test_insufficient_cell_equals_fairlearn(small: pd.DataFrame) -> None:
    frame = _with_cells(small)
    report = fairness_report(frame, ("race",), FairnessParams(n_bootstrap=0))
    few = next(g for g in report.slice("race").groups if g.name == "Few")
    expected = _metric_frame(frame, ("race",)).by_group.loc["Few"]
    assert few.status == "insufficient"
    for metric in ("selection_rate", "tpr", "fpr", "fnr", "precision", "accuracy"):
        assert getattr(few, metric).value == pytest.approx(expected[metric], abs=1e-9), metric


def test_every_group_is_reported_even_when_left_out(report: FairnessReport) -> None:
    listed = {(c.slice, c.group) for c in report.left_out}
    for item in report.slices:
        for group in item.groups:
            assert (group.status != "reported") == ((item.name, group.name) in listed)
    total = sum(g.n for g in report.slice("sex", "race").groups)
    assert total == report.n_rows


def test_a_slice_with_one_reported_group_has_no_summary(small: pd.DataFrame) -> None:
    params = FairnessParams(n_bootstrap=0, min_positives=600)
    report = fairness_report(small, ("sex",), params)
    summary = report.slice("sex").summary
    assert summary.n_groups_compared == 1
    assert summary.demographic_parity_difference is None
    assert summary.note == "fewer than two reported groups"
    assert summary.n_rows_left_out > 0  # the insufficient group's rows are counted, not lost


# --- the one rule for small groups ----------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "n_pos", "n_neg", "status"),
    [
        (9, 5, 4, "private"),  # below the privacy floor, whatever its labels
        (9, 0, 9, "private"),
        (10, 5, 5, "insufficient"),  # at the floor: shown, but too few of each label
        (39, 19, 20, "insufficient"),  # one positive short
        (39, 20, 19, "insufficient"),  # one negative short
        (40, 20, 20, "reported"),  # exactly enough of both
        (1000, 0, 1000, "insufficient"),  # large, but one class only
    ],
)
def test_cell_status_boundaries(n: int, n_pos: int, n_neg: int, status: str) -> None:
    params = FairnessParams()
    assert (params.min_cell, params.min_positives, params.min_negatives) == (10, 20, 20)
    assert cell_status(n, n_pos, n_neg, params) == status
    assert cell_statuses([n], [n_pos], [n_neg], params).tolist() == [status]
    reason = cell_reason(n, n_pos, n_neg, params)
    assert (reason is None) == (status == "reported")
    if status == "private":
        assert reason is not None and "positive" not in reason  # its labels stay private


def test_cell_rule_follows_its_parameters() -> None:
    params = FairnessParams(min_cell=50, min_positives=5, min_negatives=5)
    assert cell_status(49, 25, 24, params) == "private"
    assert cell_status(50, 5, 45, params) == "reported"
    with pytest.raises(ValueError):
        FairnessParams(min_cell=0)


def test_record_status_reads_new_and_older_records() -> None:
    params = FairnessParams()
    assert record_status({"status": "insufficient", "n": 500, "n_pos": 100}, params) == (
        "insufficient"
    )
    # groups.json written before the rule: suppressed (n < 30) had no figures; others by counts
    assert record_status({"n": 12, "n_pos": 3, "suppressed": True}, params) == "private"
    assert record_status({"n": 45, "n_pos": 19, "suppressed": False}, params) == "insufficient"
    assert record_status({"n": 500, "n_pos": 100, "suppressed": False}, params) == "reported"
    assert record_status({"column": "sex", "group": "F"}, params) == "private"


# --- bootstrap ------------------------------------------------------------------------------


def test_same_seed_gives_identical_report_and_another_seed_does_not(small: pd.DataFrame) -> None:
    params = FairnessParams(n_bootstrap=300, seed=42)
    first = report_to_json(fairness_report(small, SENSITIVE, params))
    again = report_to_json(fairness_report(small, SENSITIVE, params))
    other = report_to_json(
        fairness_report(small, SENSITIVE, params.model_copy(update={"seed": 43}))
    )
    assert first == again
    assert first != other


def test_row_order_does_not_change_the_report(small: pd.DataFrame) -> None:
    params = FairnessParams(n_bootstrap=200)
    shuffled = small.sample(frac=1.0, random_state=1)
    assert report_to_json(fairness_report(small, SENSITIVE, params)) == report_to_json(
        fairness_report(shuffled, SENSITIVE, params)
    )


def test_intervals_contain_the_point_estimate(report: FairnessReport) -> None:
    for item in (report.overall, *(g for s in report.slices for g in s.groups)):
        if item.status == "private":
            continue
        for metric in (*RATE_METRICS, "mean_score"):  # ECE: see the note on its bias
            estimate = getattr(item, metric)
            assert estimate.low <= estimate.value <= estimate.high, (item.name, metric)
    for name, value in report.slice("sex").summary:
        if not isinstance(value, Disparity):  # counts, the note, what was left out
            continue
        assert value.low is not None and value.value is not None and value.high is not None
        assert value.low <= value.value <= value.high, name


def test_interval_width_shrinks_with_level(small: pd.DataFrame) -> None:
    wide = fairness_report(small, ("sex",), FairnessParams(n_bootstrap=400, confidence_level=0.99))
    narrow = fairness_report(small, ("sex",), FairnessParams(n_bootstrap=400, confidence_level=0.8))
    for w, n in zip(wide.slice("sex").groups, narrow.slice("sex").groups, strict=True):
        assert w.tpr is not None and n.tpr is not None
        assert w.tpr.high - w.tpr.low > n.tpr.high - n.tpr.low  # type: ignore[operator]


def test_no_bootstrap_means_no_intervals(small: pd.DataFrame) -> None:
    report = fairness_report(small, ("sex",), FairnessParams(n_bootstrap=0))
    group = report.slice("sex").groups[0]
    assert group.tpr is not None and group.tpr.value is not None
    assert group.tpr.low is None and group.tpr.high is None


def test_row_chunked_bootstrap_agrees_with_one_pass(
    small: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Large inputs are tallied in row chunks; force that path on a small frame and compare."""
    from evenflow.assess import fairness_tally

    params = FairnessParams(n_bootstrap=300, seed=9)
    whole = fairness_report(small, ("sex",), params)
    monkeypatch.setattr(fairness_tally, "_BLOCK_ELEMENTS", 700)
    chunked = fairness_report(small, ("sex",), params)
    for a, b in zip(whole.slice("sex").groups, chunked.slice("sex").groups, strict=True):
        assert a.tpr is not None and b.tpr is not None
        assert a.tpr.value == b.tpr.value
        assert a.tpr.low == pytest.approx(b.tpr.low, abs=0.04)
        assert a.tpr.high == pytest.approx(b.tpr.high, abs=0.04)


def test_poisson_weights_follow_poisson_one() -> None:
    weights = poisson_weights(np.random.default_rng(0), (100, 10_000)).ravel()
    observed = np.bincount(weights, minlength=6)[:6] / weights.size
    expected = np.exp(-1.0) / np.array([1, 1, 2, 6, 24, 120])
    assert np.allclose(observed, expected, atol=5 * np.sqrt(expected / weights.size))
    assert weights.mean() == pytest.approx(1.0, abs=0.005)


# --- calibration and scores -----------------------------------------------------------------


def test_ece_reliability_and_score_distribution_match_direct_computation(
    planted: tuple[pd.DataFrame, PlantedTruth], report: FairnessReport
) -> None:
    frame = planted[0]
    rows = frame[frame["race"] == "Black"]
    group = next(g for g in report.slice("race").groups if g.name == "Black")
    bins = np.minimum((rows["score"] * 10).astype(int), 9)
    by_bin = rows.groupby(bins).agg(n=("label", "size"), y=("label", "mean"), s=("score", "mean"))
    ece = float((by_bin["n"] * (by_bin["s"] - by_bin["y"]).abs()).sum() / len(rows))
    assert group.ece is not None
    assert group.ece.value == pytest.approx(ece, abs=1e-12)
    for b, reliability in enumerate(group.reliability):
        assert reliability.n == by_bin["n"].get(b, 0)
        if reliability.n:
            assert reliability.mean_score == pytest.approx(by_bin.loc[b, "s"], abs=1e-12)
            assert reliability.observed_rate.value == pytest.approx(by_bin.loc[b, "y"], abs=1e-12)
    assert group.scores is not None
    assert sum(group.scores.histogram_counts) == group.n
    expected = np.quantile(rows["score"], report.params.score_quantiles)
    assert list(group.scores.quantiles.values()) == pytest.approx(list(expected), abs=1e-12)
    assert list(group.scores.quantiles) == ["p5", "p25", "p50", "p75", "p95"]


# --- slices and input -----------------------------------------------------------------------


def test_every_intersection_is_reported(small: pd.DataFrame) -> None:
    columns = ("sex", "race", "workclass")
    report = fairness_report(small, columns, FairnessParams(n_bootstrap=0))
    names = [s.name for s in report.slices]
    assert names == [
        "sex",
        "race",
        "workclass",
        "sex × race",
        "sex × workclass",
        "race × workclass",
        "sex × race × workclass",
    ]
    limited = fairness_report(
        small, columns, FairnessParams(n_bootstrap=0, max_intersection_size=2)
    )
    assert len(limited.slices) == 6


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: f.drop(columns="score"), "lack columns"),
        (lambda f: f.assign(label=f["label"] * 2), "only 0 and 1"),
        (lambda f: f.assign(score=f["score"] + 1.0), "probabilities"),
        (lambda f: f.assign(score=np.nan), "probabilities"),
        (lambda f: f.iloc[:0], "empty"),
        (lambda f: f.assign(race=[MISSING, None] * (len(f) // 2)), "literal"),
    ],
)
def test_bad_input_is_refused(small: pd.DataFrame, change: Any, message: str) -> None:
    with pytest.raises(DataError, match=message):
        fairness_report(change(small), SENSITIVE, FairnessParams(n_bootstrap=0))


def test_params_are_strict() -> None:
    with pytest.raises(ValueError, match="extra"):
        FairnessParams(thresold=0.4)  # type: ignore[call-arg]
    with pytest.raises(ValueError):
        FairnessParams(score_quantiles=(0.5, 1.5))
    with pytest.raises(ValueError):
        FairnessParams(min_positives=0)


# --- outputs --------------------------------------------------------------------------------


def _longest_list(node: Any) -> int:
    if isinstance(node, dict):
        return max((_longest_list(v) for v in node.values()), default=0)
    if isinstance(node, list):
        return max([len(node), *(_longest_list(v) for v in node)])
    return 0


def test_json_holds_aggregates_only(report: FairnessReport, small: pd.DataFrame) -> None:
    payload = report_to_json(report)
    text = json.dumps(payload, allow_nan=False)
    assert len(text) < 250_000
    assert _longest_list(payload) <= max(report.params.histogram_bins + 1, 64)
    assert "_row_id" not in text
    small_text = json.dumps(report_to_json(fairness_report(small, SENSITIVE, FairnessParams())))
    assert len(text) < 1.5 * len(small_text)  # size follows groups, not rows (10x more rows here)
    assert FairnessReport.model_validate(payload) == report


def test_html_and_json_are_written_self_contained(small: pd.DataFrame, tmp_path: Path) -> None:
    from evenflow.reports.fairness_html import write_fairness_report

    report = fairness_report(small, ("sex",), FairnessParams(n_bootstrap=100))
    files = write_fairness_report(report, tmp_path / "fairness")
    page = files.html_path.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert page.count('src="data:image/png;base64,') == 3 * len(report.slices)
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.IGNORECASE)
    assert "<script" not in page.lower()
    assert "Female" in page and "Groups left out of summaries" in page
    assert json.loads(files.json_path.read_text(encoding="utf-8")) == report_to_json(report)
    assert not list((tmp_path / "fairness").glob("*.tmp"))
