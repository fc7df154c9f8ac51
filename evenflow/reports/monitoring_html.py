"""A self-contained HTML page of one monitoring run: verdict, drift per column, performance deltas.

No scripts, no external CSS or fonts: the page opens offline, and reads the same in MLflow's
artifact viewer. The full Evidently report and the fairness report are logged beside it. The
layout is ``templates/monitoring.html.j2``; this module only turns the report into rows of text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from evenflow.govern.comparison import Comparison
from evenflow.govern.monitoring import MonitoringReport, PerformanceResult
from evenflow.io import write_text_atomic
from evenflow.layout import MONITORING_HTML_FILE
from evenflow.reports.render import count, fixed, render_html, signed

Rows = list[list[str]]


@dataclass(frozen=True)
class _DriftRows:
    rows: Rows
    classes: list[str]


@dataclass(frozen=True)
class _PerformanceRows:
    metrics: Rows = field(default_factory=list)
    groups: Rows = field(default_factory=list)
    summaries: Rows = field(default_factory=list)


def write_monitoring_html(report: MonitoringReport, out_dir: Path) -> Path:
    """Write ``monitoring.html`` into ``out_dir`` atomically and return its path."""
    return write_text_atomic(out_dir / MONITORING_HTML_FILE, render_monitoring_html(report))


def render_monitoring_html(report: MonitoringReport) -> str:
    """The report as one HTML document."""
    return render_html(
        "monitoring.html.j2",
        report=report,
        lineage=_lineage(report),
        drift=_drift(report),
        performance=_performance(report.performance),
    )


def _lineage(report: MonitoringReport) -> Rows:
    model, batch, d = report.model, report.batch, report.drift
    sampled = (
        f"sampled to at most {report.policy.max_rows:,} rows per side (seed {report.policy.seed})"
        if d.sampled
        else "every row"
    )
    contract = (
        "not checked"
        if report.validation is None
        else f"{report.validation.n_expectations} expectations, "
        f"{len(report.validation.failures)} failed"
    )
    return [
        [
            "Model",
            f"{model.name} version {model.version} (alias {model.alias}), run {model.run_id}",
        ],
        ["Reference data", f"DVC md5 {model.data_md5} (the version's train split)"],
        ["Batch", f"{batch.path} (md5 {batch.md5}, {batch.n_rows:,} rows)"],
        ["Rows compared", f"batch {d.rows_batch:,}, reference {d.rows_reference:,}: {sampled}"],
        ["Labels", "present" if report.labelled else "absent"],
        ["Contract", contract],
        ["Skipped expectations", "; ".join(report.skipped_expectations) or "none"],
    ]


def _drift(report: MonitoringReport) -> _DriftRows:
    checked = (*report.drift.columns, report.drift.prediction)
    rows = [
        [
            c.column,
            c.kind,
            c.statistic,
            fixed(c.value, 4),
            f"{c.threshold:g}",
            "drifted" if c.drifted else "stable",
        ]
        for c in checked
    ]
    return _DriftRows(rows=rows, classes=["bad" if c.drifted else "" for c in checked])


def _performance(perf: PerformanceResult | None) -> _PerformanceRows:
    if perf is None:
        return _PerformanceRows()
    groups: Rows = []
    for group in perf.groups:
        cells = [
            group.column,
            group.group,
            count(group.n),
            count(group.champion_n),
            f"{group.status or '—'} / {group.champion_status or '—'}",
        ]
        # A private group (or one absent on a side) has no figures, but is never left out.
        rows = [_compared(item.name, item) for item in group.metrics] or [["—"] * 4]
        groups.extend([*cells, *row] for row in rows)
    summaries = [
        [s.slice, s.summary, fixed(s.value, 4), fixed(s.champion, 4), signed(s.difference)]
        for s in perf.fairness
    ]
    metrics = [_compared(c.name, c) for c in perf.metrics]
    return _PerformanceRows(metrics=metrics, groups=groups, summaries=summaries)


def _compared(name: str, item: Comparison) -> list[str]:
    return [name, fixed(item.value, 4), fixed(item.champion, 4), signed(item.difference)]
