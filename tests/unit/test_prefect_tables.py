"""The operator's view in the Prefect UI: artifact keys, rows and Markdown from the records."""

from __future__ import annotations

from pathlib import Path

from evenflow import layout
from evenflow.assess.monitoring import ColumnCheck, DriftResult
from evenflow.config.fairness import FairnessParams
from evenflow.config.gates import GatePolicy
from evenflow.config.monitor import DriftPolicy
from evenflow.config.settings import EvenflowSettings
from evenflow.govern.clauses import GateClause
from evenflow.govern.gates import GateDecision
from evenflow.govern.monitoring import MonitoredModel, MonitoringReport
from evenflow.records import ExpectationFailure, ModelVersionRef, RawBatch, ValidationReport
from evenflow.reports import prefect_tables as tables
from tasks import artifacts


def _clause(name: str, observed: float, limit: float, *, passed: bool) -> GateClause:
    return GateClause(
        name=name,
        kind="min_auc",
        passed=passed,
        observed=observed,
        low=observed - 0.02,
        high=observed + 0.02,
        bound="lower",
        compared=observed - 0.02,
        comparison=">=",
        limit=limit,
        detail=f"AUC lower bound {observed - 0.02:.4g} vs {limit}",
    )


def test_keys_are_what_prefect_accepts() -> None:
    assert tables.artifact_key("Adult_2024", "model-version") == "adult-2024-model-version"
    assert tables.artifact_key("--", "") == "evenflow"
    assert artifacts.key("adult", artifacts.METRICS) == "adult-metrics"


def test_metric_rows_pair_each_metric_with_its_interval() -> None:
    metrics = {"roc_auc": 0.9123, "roc_auc_low": 0.9, "roc_auc_high": 0.92, "threshold": 0.5}

    rows = tables.metric_rows(metrics)

    assert rows == [
        {"metric": "roc_auc", "value": "0.9123", "interval": "[0.9, 0.92]"},
        {"metric": "threshold", "value": "0.5", "interval": tables.DASH},
    ]


def test_validation_rows_name_each_failure_and_the_data_docs(tmp_path: Path) -> None:
    report = ValidationReport(
        success=False,
        suite_name="adult",
        n_expectations=40,
        n_rows=1200,
        failures=(
            ExpectationFailure(
                expectation="expect_column_values_to_be_between",
                column="age",
                observed="3 unexpected (0.25%): -1, 250",
            ),
        ),
        result_path=tmp_path / "result.json",
        docs_path=tmp_path / "docs" / "index.html",
    )

    rows = {row["item"]: row["value"] for row in tables.validation_rows(report)}

    assert rows["outcome"] == "FAILED"
    assert (rows["expectations run"], rows["expectations failed"]) == ("40", "1")
    assert rows["Data Docs"] == str(tmp_path / "docs" / "index.html")
    assert rows["failed: expect_column_values_to_be_between [age]"].startswith("3 unexpected")


def test_gate_markdown_puts_the_verdict_first_and_each_clause_with_its_numbers() -> None:
    decision = GateDecision.from_clauses(
        GatePolicy(),
        [
            _clause("min_auc", 0.91, 0.8, passed=True),
            _clause("min_auc_lower_bound", 0.6, 0.7, passed=False),
        ],
    )

    text = tables.gate_markdown(decision)

    assert text.splitlines()[0] == "### Gate: FAILED"
    assert "1 of 2 clauses failed: min_auc_lower_bound" in text
    assert "| min_auc_lower_bound | FAIL | 0.6 | [0.58, 0.62] | lower: 0.58 | >= 0.7 |" in text


def test_version_page_is_the_servers_or_evenflow_uis() -> None:
    version = ModelVersionRef(name="adult", version="3", run_id="abc")
    page = layout.version_page("adult", "3")

    assert page.startswith("#/models/adult/versions/3")
    assert tables.version_page("https://mlflow.example.org/", version) == (
        f"https://mlflow.example.org/{page}"
    )
    local = "sqlite:////project/mlruns/mlflow.db"
    assert tables.version_page(local, version) == f"http://127.0.0.1:5000/{page}"
    assert "evenflow ui" in tables.version_link_description(local, version)
    assert "evenflow ui" not in tables.version_link_description("http://mlflow:5000", version)


def test_publishing_outside_a_run_does_nothing(tmp_path: Path) -> None:
    version = ModelVersionRef(name="adult", version="3", run_id="abc")
    decision = GateDecision.from_clauses(GatePolicy(), [_clause("min_auc", 0.9, 0.8, passed=True)])

    assert artifacts.publish_gate.fn("adult", decision) is False
    assert (
        artifacts.publish_model_version.fn(EvenflowSettings(project_root=tmp_path), version)
        is False
    )


def test_monitoring_markdown_names_each_flagged_column_with_its_numbers(tmp_path: Path) -> None:
    def check(column: str, value: float, *, drifted: bool) -> ColumnCheck:
        kind = "prediction" if column == "score" else "numeric"
        return ColumnCheck(
            column=column, kind=kind, statistic="psi", threshold=0.2, value=value, drifted=drifted
        )

    drift = DriftResult(
        columns=(check("age", 0.61, drifted=True), check("hours", 0.01, drifted=False)),
        drifted_columns=("age",),
        drifted_share=0.5,
        max_drifted_share=0.3,
        prediction=check("score", 0.05, drifted=False),
        mean_score_reference=0.24,
        mean_score_batch=0.31,
        rows_reference=900,
        rows_batch=400,
        total_rows_reference=900,
        total_rows_batch=400,
        evidently_html=tmp_path / "drift.html",
        evidently_json=tmp_path / "drift.json",
    )
    model = MonitoredModel(
        name="adult",
        version="2",
        alias="champion",
        run_id="r2",
        data_md5="abc.dir",
        features=(),
        target="income",
        positive_label=">50K",
        sensitive=("sex",),
        split_column=None,
        threshold=0.5,
        fairness=FairnessParams(),
    )
    report = MonitoringReport(
        dataset="adult",
        model=model,
        batch=RawBatch(dataset="adult", path=tmp_path / "b.csv", md5="m", n_rows=400, columns=()),
        labelled=False,
        policy=DriftPolicy(),
        drift=drift,
        performance=None,
        passed=False,
        breaches=("1 of 2 columns drifted (share 0.500 > 0.3): age: psi 0.6100 >= 0.2",),
    )

    text = tables.monitoring_markdown(report)

    assert text.startswith("### Monitoring: BEYOND the policy")
    assert "| age | psi | 0.61 | 0.2 |" in text and "| hours |" not in text
    assert "- Columns drifted: 1 of 2 (share 0.500, policy max 0.3)" in text
    assert "No labels in the batch" in text


def test_scoring_markdown_counts_rejects_by_rule_most_frequent_first(tmp_path: Path) -> None:
    headline = tables.ScoringHeadline(
        model="adult@champion (version 2, run r2)",
        n_input=1000,
        n_scored=990,
        n_rejected=10,
        positive_rate=0.25,
        rejected_by_rule={"age: between 17 and 90": 3, "sex: in set": 7},
        out_path=tmp_path / "scores.parquet",
        rejects_path=tmp_path / "rejects.csv",
    )

    text = tables.scoring_markdown(headline)

    assert text.startswith("### Scoring: 990 of 1,000 rows scored, 10 rejected")
    assert text.index("| sex: in set | 7 |") < text.index("| age: between 17 and 90 | 3 |")
    assert "25.0% of the scored rows" in text
