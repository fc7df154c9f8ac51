"""The operator's view in the Prefect UI: artifact keys, rows and Markdown from the records."""

from __future__ import annotations

from pathlib import Path

from evenflow.config.gates import GatePolicy
from evenflow.config.settings import EvenflowSettings
from evenflow.govern.clauses import GateClause
from evenflow.govern.gates import GateDecision
from evenflow.records import ExpectationFailure, ModelVersionRef, ValidationReport
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

    assert tables.version_page("https://mlflow.example.org/", version) == (
        "https://mlflow.example.org/#/models/adult/versions/3"
    )
    local = "sqlite:////project/mlruns/mlflow.db"
    assert tables.version_page(local, version) == "http://127.0.0.1:5000/#/models/adult/versions/3"
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
