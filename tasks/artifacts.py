"""Prefect artifacts: what each stage did, on the flow run's Artifacts tab in the Prefect UI.

Each task turns a stage's record into a table, Markdown or link artifact under a stable key
(``<dataset>-<what>``, e.g. ``adult-metrics``), so the Artifacts page keeps one history per dataset
and stage. The rows and the Markdown come from :mod:`evenflow.reports.prefect_tables`; this module
only publishes them. Publishing needs a flow or task run (a task's ``.fn`` called bare publishes
nothing), and a Prefect API that does not answer costs a warning, never the run: the evidence of
record is in MLflow, these are the operator's view of it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import httpx
from prefect import get_run_logger, task
from prefect.artifacts import (
    create_link_artifact,
    create_markdown_artifact,
    create_table_artifact,
)
from prefect.context import get_run_context
from prefect.exceptions import MissingContextError

from evenflow.assess.fairness import FairnessReport
from evenflow.config.settings import EvenflowSettings
from evenflow.govern.gates import GateDecision
from evenflow.govern.monitoring import MonitoringReport
from evenflow.records import EvalReport, ModelVersionRef, ShardManifest, ValidationReport
from evenflow.reports import prefect_tables as tables
from evenflow.usecases.score import ScoringResult

logger = logging.getLogger(__name__)

# What each artifact shows; its key is ``<dataset>-<what>``.
VALIDATION = "validation"
SHARDS = "shards"
METRICS = "metrics"
FAIRNESS = "fairness"
GATE = "gate"
MODEL_VERSION = "model-version"
MONITORING = "monitoring"
SCORING = "scoring"


def key(dataset: str, what: str) -> str:
    """The artifact key of one stage of a dataset's runs, e.g. ``adult-metrics``."""
    return tables.artifact_key(dataset, what)


def _in_run() -> bool:
    try:
        get_run_context()
    except MissingContextError:
        return False
    return True


def _publish(what: str, create: Callable[[], Any]) -> bool:
    """Create one artifact inside a run; outside one, or when the API fails, publish nothing.

    Returns whether the artifact was created.
    """
    if not _in_run():
        logger.debug("artifact %s not published: no flow or task run", what)
        return False
    try:
        create()
    except httpx.HTTPError as exc:
        get_run_logger().warning("artifact %s not published: %s", what, str(exc).splitlines()[0])
        return False
    return True


@task(name="publish-validation")
def publish_validation(dataset: str, report: ValidationReport) -> bool:
    """The contract's outcome: expectations run and failed, what each failure observed, Data Docs.

    Run before the validation is recorded, so a batch that breaks its contract shows why.
    """
    outcome = "passed" if report.success else f"FAILED ({len(report.failures)} expectations)"
    return _publish(
        VALIDATION,
        lambda: create_table_artifact(
            tables.validation_rows(report),
            key=key(dataset, VALIDATION),
            description=f"Great Expectations suite `{report.suite_name}`: {outcome}.",
        ),
    )


@task(name="publish-shards")
def publish_shards(manifest: ShardManifest) -> bool:
    """The versioned data: DVC md5, rows per split, every shard with its rows and md5."""
    return _publish(
        SHARDS,
        lambda: create_markdown_artifact(
            tables.shards_markdown(manifest),
            key=key(manifest.dataset, SHARDS),
            description=f"DVC-versioned shards of {manifest.dataset} ({manifest.data_md5}).",
        ),
    )


@task(name="publish-evaluation")
def publish_evaluation(dataset: str, report: EvalReport) -> bool:
    """Two tables: the metrics with their intervals, and every group's rates with theirs."""
    published = _publish(
        METRICS,
        lambda: create_table_artifact(
            tables.metric_rows(report.metrics),
            key=key(dataset, METRICS),
            description="Evaluation metrics, with bootstrap intervals where computed.",
        ),
    )
    if report.fairness_path is None:
        return published
    fairness = FairnessReport.model_validate_json(report.fairness_path.read_text(encoding="utf-8"))
    level = f"{fairness.bootstrap.confidence_level:.0%}"
    return published & _publish(
        FAIRNESS,
        lambda: create_table_artifact(
            tables.fairness_rows(fairness),
            key=key(dataset, FAIRNESS),
            description=(
                f"Rates per group with {level} bootstrap intervals on {fairness.n_rows:,} rows. "
                "Groups marked insufficient evidence are shown but left out of summaries and "
                "gates; private groups show only n."
            ),
        ),
    )


@task(name="publish-gate")
def publish_gate(dataset: str, decision: GateDecision) -> bool:
    """The verdict and every clause with the figure, the bound and the limit it compared."""
    verdict = "passed" if decision.passed else f"failed {len(decision.failed)} clauses"
    return _publish(
        GATE,
        lambda: create_markdown_artifact(
            tables.gate_markdown(decision),
            key=key(dataset, GATE),
            description=f"Gate decision: {verdict}.",
        ),
    )


@task(name="publish-model-version")
def publish_model_version(settings: EvenflowSettings, version: ModelVersionRef) -> bool:
    """A link to the registered version's page in the MLflow UI."""
    return _publish(
        MODEL_VERSION,
        lambda: create_link_artifact(
            tables.version_page(settings.tracking_uri, version),
            link_text=f"{version.name} version {version.version} in MLflow",
            key=key(version.name, MODEL_VERSION),
            description=tables.version_link_description(settings.tracking_uri, version),
        ),
    )


@task(name="publish-monitoring")
def publish_monitoring(report: MonitoringReport) -> bool:
    """The monitoring headline: drift verdict and flagged columns, performance, fairness."""
    return _publish(
        MONITORING,
        lambda: create_markdown_artifact(
            tables.monitoring_markdown(report),
            key=key(report.dataset, MONITORING),
            description=f"Monitoring of {report.model.name} version {report.model.version}.",
        ),
    )


@task(name="publish-scoring")
def publish_scoring(result: ScoringResult) -> bool:
    """The scoring headline: rows scored and rejected by rule, the model and the outputs."""
    model = result.model
    totals = result.totals
    headline = tables.ScoringHeadline(
        model=f"{model.name}@{model.alias} (version {model.version}, run {model.run_id})",
        n_input=totals.n_input,
        n_scored=totals.n_scored,
        n_rejected=totals.n_rejected,
        positive_rate=totals.positive_rate,
        rejected_by_rule=dict(result.rejected_by_rule),
        out_path=result.out_path,
        rejects_path=result.rejects_path,
    )
    return _publish(
        SCORING,
        lambda: create_markdown_artifact(
            tables.scoring_markdown(headline),
            key=key(result.dataset, SCORING),
            description=f"Scoring with {model.name} version {model.version}.",
        ),
    )
