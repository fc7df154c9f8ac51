"""What each stage shows an operator in the Prefect UI: table rows and Markdown, no Prefect here.

The Prefect tasks (``tasks/artifacts.py``) publish these as artifacts; this module only turns the
records into rows of text (figures through the card's ``num`` / ``interval`` filters, so the
Artifacts tab reads the same numbers as the model card) and renders the multi-line Markdown from
the ``prefect_*.md.j2`` templates.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from pydantic import Field

from evenflow import layout
from evenflow.assess.fairness import Estimate, FairnessReport, GroupMetrics
from evenflow.config.settings import is_tracking_server
from evenflow.govern.clauses import GateClause
from evenflow.govern.gates import GateDecision
from evenflow.govern.monitoring import MonitoringReport
from evenflow.records import ModelVersionRef, Record, ShardManifest, ValidationReport
from evenflow.reports.render import DASH, interval, num, render_markdown, with_interval

Row = dict[str, str]
"""One row of a table artifact: column name -> cell text."""

INSUFFICIENT_MARK = " (insufficient evidence)"
"""Appended to a group kept out of summaries and gates for too few positives or negatives."""

_FAIRNESS_RATES = (("selection_rate", "selection rate"), ("tpr", "TPR"), ("fpr", "FPR"))


def artifact_key(*parts: str) -> str:
    """A Prefect artifact key from names: lowercase letters, digits and single dashes."""
    slug = re.sub(r"[^a-z0-9]+", "-", "-".join(parts).lower())
    return slug.strip("-") or "evenflow"


# --- validation -------------------------------------------------------------------------------


def validation_rows(report: ValidationReport) -> list[Row]:
    """The contract's outcome, then one row per failed expectation with what was observed."""
    failed = len(report.failures)
    rows = [
        {"item": "suite", "value": report.suite_name},
        {"item": "outcome", "value": "passed" if report.success else "FAILED"},
        {"item": "expectations run", "value": num(report.n_expectations)},
        {"item": "expectations failed", "value": num(failed)},
        {"item": "rows checked", "value": num(report.n_rows)},
        {"item": "Data Docs", "value": str(report.docs_path) if report.docs_path else DASH},
    ]
    rows += [
        {
            "item": f"failed: {f.expectation}" + (f" [{f.column}]" if f.column else ""),
            "value": f.observed,
        }
        for f in report.failures
    ]
    return rows


# --- shards -----------------------------------------------------------------------------------


def shards_markdown(manifest: ShardManifest) -> str:
    """The versioned data: DVC md5, how rows were split, rows per split and every shard."""
    return render_markdown("prefect_shards.md.j2", manifest=manifest)


# --- evaluation -------------------------------------------------------------------------------


def metric_rows(metrics: Mapping[str, float]) -> list[Row]:
    """One row per metric: its value and, for headline metrics, its bootstrap interval."""
    bounds = {f"{name}_{end}" for name in metrics for end in ("low", "high")}
    return [
        {
            "metric": name,
            "value": num(value),
            "interval": interval(
                Estimate(
                    value=value, low=metrics.get(f"{name}_low"), high=metrics.get(f"{name}_high")
                )
            )
            or DASH,
        }
        for name, value in metrics.items()
        if name not in bounds
    ]


def fairness_rows(report: FairnessReport) -> list[Row]:
    """Every group of every slice: n, then rates with intervals; a private group shows only n."""
    return [_group_row(item.name, group) for item in report.slices for group in item.groups]


def _group_row(slice_name: str, group: GroupMetrics) -> Row:
    mark = INSUFFICIENT_MARK if group.status == "insufficient" else ""
    row = {"slice": slice_name, "group": group.name + mark, "n": num(group.n)}
    for field, label in _FAIRNESS_RATES:
        row[label] = (
            "private (only n shown)"
            if group.status == "private"
            else with_interval(getattr(group, field))
        )
    return row


# --- gate and registration --------------------------------------------------------------------


def gate_markdown(decision: GateDecision, version: str | None = None) -> str:
    """The verdict, then every clause with the figure it compared, the bound and the limit."""
    return render_markdown(
        "prefect_gate.md.j2",
        decision=decision,
        clauses=[clause_row(c) for c in decision.clauses],
        version=version,
    ).removesuffix("\n")


def clause_row(clause: GateClause) -> list[str]:
    """A clause as the gate table shows it: result, the figures compared, the limit and why."""
    result = "skipped" if clause.skipped else ("pass" if clause.passed else "FAIL")
    bounds = (
        f"[{num(clause.low)}, {num(clause.high)}]"
        if clause.low is not None and clause.high is not None
        else DASH
    )
    return [
        clause.name,
        result,
        num(clause.observed),
        bounds,
        DASH if clause.compared is None else f"{clause.bound}: {num(clause.compared)}",
        DASH if clause.limit is None else f"{clause.comparison} {num(clause.limit)}",
        clause.detail,
    ]


def version_page(tracking_uri: str, version: ModelVersionRef) -> str:
    """The MLflow UI page of a model version: the tracking server's, or ``evenflow ui``'s."""
    base = tracking_uri.rstrip("/") if is_tracking_server(tracking_uri) else layout.LOCAL_UI
    return f"{base}/{layout.version_page(version.name, version.version)}"


def version_link_description(tracking_uri: str, version: ModelVersionRef) -> str:
    """What the link opens, and how to start the UI when the store is a local file."""
    held = " (this build was already registered: nothing new)" if version.existing else ""
    text = f"MLflow model version {version.name} v{version.version}{held}, run {version.run_id}."
    if not is_tracking_server(tracking_uri):
        text += " The store is local: run `evenflow ui` in the project to serve this page."
    return text


# --- monitoring and scoring -------------------------------------------------------------------


def monitoring_markdown(report: MonitoringReport) -> str:
    """The monitoring headline: drift verdict and flagged columns, performance and fairness."""
    return render_markdown("prefect_monitoring.md.j2", report=report).removesuffix("\n")


class ScoringHeadline(Record):
    """What a scoring run did, as the operator reads it (built from the use case's result)."""

    model: str = Field(description="name@alias (version N).")
    n_input: int
    n_scored: int
    n_rejected: int
    positive_rate: float
    rejected_by_rule: dict[str, int]
    out_path: Path
    rejects_path: Path


def scoring_markdown(headline: ScoringHeadline) -> str:
    """The scoring headline: rows scored and rejected (most frequent rules first), the outputs."""
    by_rule = sorted(headline.rejected_by_rule.items(), key=lambda item: (-item[1], item[0]))
    return render_markdown(
        "prefect_scoring.md.j2", headline=headline, by_rule=by_rule
    ).removesuffix("\n")
