"""Short texts about a run for people: the monitoring headline, a registered version's description.

The figures come from the records (:class:`~evenflow.govern.monitoring.MonitoringReport`, the
evaluation and the gate decision); the wording lives in the templates
``monitoring_headline.txt.j2`` and ``version_description.md.j2``.
"""

from __future__ import annotations

from evenflow.govern.gates import GateDecision, describe_failures
from evenflow.govern.monitoring import MonitoringReport
from evenflow.records import EvalReport, ModelVersionRef
from evenflow.reports.render import render_markdown


def monitoring_headline(report: MonitoringReport) -> str:
    """One line: within the policy, or how far beyond it the batch is."""
    return render_markdown("monitoring_headline.txt.j2", report=report)


def version_description(
    version: ModelVersionRef,
    report: EvalReport,
    decision: GateDecision,
    card_artifact: str,
    *,
    cross_fitted: bool = False,
) -> str:
    """What a reviewer sees first in the MLflow UI: the gate outcome, key figures, the card."""
    return render_markdown(
        "version_description.md.j2",
        version=version,
        metrics=report.metrics,
        passed=decision.passed,
        failures=describe_failures(decision),
        card_artifact=card_artifact,
        cross_fitted=cross_fitted,
    ).removesuffix("\n")
