"""One rule for small groups, everywhere: groups.json, the fairness report, the review, the gates,
monitoring and the model card give every cell the same status on one crafted frame."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from evenflow.assess.evaluation import write_evaluation
from evenflow.assess.fairness import FairnessReport, fairness_report, report_to_json
from evenflow.assess.predictions import MISSING as MISSING_GROUP
from evenflow.config.fairness import FairnessParams
from evenflow.config.run import EvalParams
from evenflow.govern.comparison import DataChange, compare_groups
from evenflow.govern.evidence import Evidence
from evenflow.govern.gates import GatePolicy, gate_failures
from evenflow.govern.monitoring import group_deltas
from evenflow.govern.review import GateSummary, ModelCardRef, ReviewSummary, VersionInfo
from evenflow.reports.card_rows import slice_group_rows as _slice_group_rows
from evenflow.reports.review import render_review

RULE = FairnessParams(n_bootstrap=100, seed=3)
SENSITIVE = ("sex", "race")
EXPECTED = {
    ("race", "A"): "reported",
    ("race", "B"): "reported",
    ("race", "Few"): "insufficient",  # 40 rows, 19 positives: one short of min_positives
    ("race", "Tiny"): "private",  # 5 rows: below min_cell
    ("race", MISSING_GROUP): "private",  # 3 rows with no race
    ("sex", "F"): "reported",
    ("sex", "M"): "reported",
}


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(17)
    n = 3_000
    race = rng.choice(np.array(["A", "B"], dtype=object), n, p=[0.6, 0.4])
    race[:5] = "Tiny"
    race[5:45] = "Few"
    race[45:48] = None
    label = (rng.uniform(size=n) < np.where(race == "A", 0.3, 0.45)).astype(np.int64)
    label[5:45] = np.repeat([1, 0], [19, 21])
    score = 1.0 / (1.0 + np.exp(-(1.6 * (label - 0.5) + rng.normal(0.0, 1.0, n))))
    return pd.DataFrame(
        {
            "_row_id": np.arange(n),
            "label": label,
            "score": score,
            "sex": rng.choice(["F", "M"], n),
            "race": race,
        }
    )


@pytest.fixture(scope="module")
def evaluated(
    frame: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory
) -> tuple[dict[str, float], list[dict[str, Any]], FairnessReport]:
    out = tmp_path_factory.mktemp("eval")
    report = write_evaluation(
        frame, SENSITIVE, EvalParams(), out, predictions_path=out / "p", fairness=RULE
    )
    records = json.loads(report.groups_path.read_text(encoding="utf-8"))
    return report.metrics, records, fairness_report(frame, SENSITIVE, RULE)


def _review(groups: Any) -> ReviewSummary:
    return ReviewSummary(
        model="m",
        version=VersionInfo(version="2", run_id="r", aliases=(), data_md5=None, git_commit=None),
        champion=None,
        metrics=(),
        groups=groups,
        gate=GateSummary(tag=None, passed=None, n_clauses=0, failed=()),
        data=DataChange(
            data_md5=None, champion_data_md5=None, same_data=None, rows={}, champion_rows=None
        ),
        model_card=ModelCardRef(run_id="r", html="h", markdown="m", present=()),
        evidence=Evidence(files={}, sha256="0"),
        missing=(),
    )


def test_every_consumer_gives_each_cell_the_same_status(
    evaluated: tuple[dict[str, float], list[dict[str, Any]], FairnessReport],
) -> None:
    metrics, records, report = evaluated
    fairness_doc = report_to_json(report)

    from_groups = {(r["column"], r["group"]): r["status"] for r in records}
    from_report = {
        (column, group.name): group.status
        for column in SENSITIVE
        for group in report.slice(column).groups
    }
    review = compare_groups(records, records, fairness_doc, fairness_doc)
    from_review = {(g.column, g.group): g.status for g in review}
    assert all(g.status == g.champion_status for g in review)
    from_monitor = {
        (g.column, g.group): g.status for g in group_deltas(records, records, rule=RULE)
    }
    policy = GatePolicy(max_disparity={"demographic_parity_difference": 1.0}, columns=SENSITIVE)
    decision = gate_failures(policy, metrics, report, records, records)
    from_gate = dict.fromkeys(from_groups, "reported")
    for clauses in ("fairness", "non_regression"):
        left_out = {(e.slice, e.group): e.status for e in decision.excluded if e.clauses == clauses}
        assert left_out == {k: v for k, v in EXPECTED.items() if v != "reported"}, clauses
        from_gate.update(left_out)

    for found in (from_groups, from_report, from_review, from_monitor, from_gate):
        assert found == EXPECTED


def test_insufficient_and_private_cells_are_shown_as_the_rule_says(
    evaluated: tuple[dict[str, float], list[dict[str, Any]], FairnessReport],
) -> None:
    metrics, records, report = evaluated
    by_key = {(r["column"], r["group"]): r for r in records}
    few, tiny = by_key[("race", "Few")], by_key[("race", "Tiny")]
    assert (few["n"], few["n_pos"], few["n_neg"]) == (40, 19, 21)
    assert few["recall"] is not None and few["base_rate"] == pytest.approx(19 / 40)
    assert tiny["n"] == 5
    assert all(tiny[k] is None for k in ("n_pos", "n_neg", "base_rate", "recall", "roc_auc"))

    race = report.slice("race")
    assert race.summary.n_groups_compared == 2  # A and B only
    assert race.summary.n_rows_left_out == 40 + 5 + 3
    assert {(e.status, e.groups, e.rows) for e in race.summary.left_out} == {
        ("insufficient", 1, 40),
        ("private", 2, 8),
    }

    # The review: an interval beside the insufficient cell's rate, marked; the private cell's rate
    # is never shown (the bug this rule fixes: a 19-positive group showed a bare recall).
    fairness_doc = report_to_json(report)
    text = render_review(_review(compare_groups(records, None, fairness_doc)))
    lines = text.splitlines()
    few_line = next(line for line in lines if " Few " in line)
    assert "40 insufficient evidence" in few_line
    assert "[" in few_line  # recall with its bootstrap interval
    tiny_lines = lines[lines.index(next(x for x in lines if " Tiny " in x)) :][:3]
    assert all("private (n only)" in line for line in tiny_lines)
    assert not any(ch.isdigit() for line in tiny_lines for ch in line.split("private (n only)")[1])
    assert "insufficient evidence: too few positives or negatives" in text

    # The model card: the same marks in its fairness tables.
    rows = {row[0]: row for row in _slice_group_rows(race)}
    assert rows["Tiny"][1:4] == ["5", "–", "–"] and set(rows["Tiny"][4:]) == {"private"}
    assert "Few (insufficient evidence)" in rows
    assert metrics["roc_auc_low"] <= metrics["roc_auc"] <= metrics["roc_auc_high"]


def test_review_classifies_records_written_before_the_rule(tmp_path: Path) -> None:
    """An older champion's groups.json has no status: counts decide, suppressed means private."""
    old = [
        {
            "column": "race",
            "group": "Few",
            "n": 45,
            "n_pos": 19,
            "suppressed": False,
            "recall": 0.4,
        },
        {
            "column": "race",
            "group": "Tiny",
            "n": 12,
            "n_pos": 3,
            "suppressed": True,
            "recall": None,
        },
        {
            "column": "race",
            "group": "A",
            "n": 900,
            "n_pos": 300,
            "suppressed": False,
            "recall": 0.7,
        },
    ]
    new = [
        {
            "column": "race",
            "group": "Few",
            "n": 44,
            "n_pos": 25,
            "n_neg": 19,
            "status": "insufficient",
            "recall": 0.5,
        },
        {
            "column": "race",
            "group": "Tiny",
            "n": 9,
            "n_pos": None,
            "n_neg": None,
            "status": "private",
            "recall": None,
        },
        {
            "column": "race",
            "group": "A",
            "n": 950,
            "n_pos": 320,
            "n_neg": 630,
            "status": "reported",
            "recall": 0.72,
        },
    ]
    groups = {g.group: g for g in compare_groups(new, old)}
    assert (groups["Few"].status, groups["Few"].champion_status) == ("insufficient", "insufficient")
    assert (groups["Tiny"].status, groups["Tiny"].champion_status) == ("private", "private")
    assert (groups["A"].status, groups["A"].champion_status) == ("reported", "reported")
    recall = next(m for m in groups["Tiny"].metrics if m.name == "recall")
    assert (recall.value, recall.champion, recall.difference) == (None, None, None)
