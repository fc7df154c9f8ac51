"""A self-contained HTML page of one monitoring run: verdict, drift per column, performance deltas.

No scripts, no external CSS or fonts: the page opens offline, and reads the same in MLflow's
artifact viewer. The full Evidently report and the fairness report are logged beside it.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from pathlib import Path

from evenflow.govern.promotion import Comparison
from evenflow.io import write_text_atomic
from evenflow.usecases.monitor import MonitoringReport, PerformanceResult

HTML_NAME = "monitoring.html"

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem;max-width:70rem;color:#222}
table{border-collapse:collapse;margin:.5rem 0 1.5rem}
th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:right;font-variant-numeric:tabular-nums}
th{background:#f4f4f4}td.l,th.l{text-align:left}
.bad{background:#fde2e1}.ok{background:#e3f6e5}.verdict{font-size:1.2rem;padding:.5rem;border-radius:4px}
.note{color:#555;font-size:.9rem}
"""


def write_monitoring_html(report: MonitoringReport, out_dir: Path) -> Path:
    """Write ``monitoring.html`` into ``out_dir`` atomically and return its path."""
    return write_text_atomic(out_dir / HTML_NAME, render_monitoring_html(report))


def render_monitoring_html(report: MonitoringReport) -> str:
    """The report as one HTML document."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Monitoring {_esc(report.dataset)}</title><style>{_CSS}</style></head><body>",
        f"<h1>Monitoring: {_esc(report.batch.path.name)}</h1>",
        _verdict(report),
        _lineage(report),
        _drift_section(report),
        _performance_section(report.performance)
        if report.performance
        else "<h2>Performance</h2><p>The batch carries no labels: performance and fairness "
        "are not measured.</p>",
        "</body></html>",
    ]
    return "\n".join(parts)


def _verdict(report: MonitoringReport) -> str:
    css = "ok" if report.passed else "bad"
    word = "Within the drift policy" if report.passed else "Drift beyond the policy"
    lines = "".join(f"<li>{_esc(line)}</li>" for line in report.breaches)
    return f'<p class="verdict {css}"><b>{word}.</b></p>' + (f"<ul>{lines}</ul>" if lines else "")


def _lineage(report: MonitoringReport) -> str:
    model, batch, d = report.model, report.batch, report.drift
    sampled = (
        f"sampled to at most {report.policy.max_rows:,} rows per side (seed {report.policy.seed})"
        if d.sampled
        else "every row"
    )
    rows = [
        (
            "Model",
            f"{model.name} version {model.version} (alias {model.alias}), run {model.run_id}",
        ),
        ("Reference data", f"DVC md5 {model.data_md5} (the version's train split)"),
        ("Batch", f"{batch.path} (md5 {batch.md5}, {batch.n_rows:,} rows)"),
        ("Rows compared", f"batch {d.rows_batch:,}, reference {d.rows_reference:,}: {sampled}"),
        ("Labels", "present" if report.labelled else "absent"),
        (
            "Contract",
            "not checked"
            if report.validation is None
            else f"{report.validation.n_expectations} expectations, "
            f"{len(report.validation.failures)} failed",
        ),
        ("Skipped expectations", "; ".join(report.skipped_expectations) or "none"),
    ]
    return _table(["", ""], [[_esc(k), _esc(v)] for k, v in rows], left=2)


def _drift_section(report: MonitoringReport) -> str:
    d = report.drift
    rows = [
        [
            _esc(c.column),
            c.kind,
            c.statistic,
            f"{c.value:.4f}",
            f"{c.threshold:g}",
            "drifted" if c.drifted else "stable",
        ]
        for c in (*d.columns, d.prediction)
    ]
    classes = ["bad" if c.drifted else "" for c in (*d.columns, d.prediction)]
    ignored = (
        f" Ignored by the policy: {', '.join(d.ignored_columns)}." if d.ignored_columns else ""
    )
    note = (
        f"{len(d.drifted_columns)} of {len(d.columns)} columns drifted (share "
        f"{d.drifted_share:.3f}; the policy allows {d.max_drifted_share:g}). Mean score: "
        f"reference {d.mean_score_reference:.4f}, batch {d.mean_score_batch:.4f}.{ignored} "
        f"A column drifts when its value reaches its threshold. The full Evidently report is "
        f"{d.evidently_html.name}."
    )
    headers = ["column", "kind", "statistic", "value", "threshold", "verdict"]
    return (
        "<h2>Drift</h2>"
        + f'<p class="note">{_esc(note)}</p>'
        + _table(headers, rows, left=3, classes=classes)
    )


def _performance_section(perf: PerformanceResult) -> str:
    metric_rows = [_comparison_row(c.name, c) for c in perf.metrics]
    group_rows: list[list[str]] = []
    for group in perf.groups:
        cells = [
            _esc(group.column),
            _esc(group.group),
            _count(group.n),
            _count(group.champion_n),
            _esc(f"{group.status or '—'} / {group.champion_status or '—'}"),
        ]
        # A private group (or one absent on a side) has no figures, but is never left out.
        rows = [_comparison_row(item.name, item) for item in group.metrics] or [["—"] * 4]
        group_rows.extend([*cells, *row] for row in rows)
    summary_rows = [
        [_esc(s.slice), s.summary, _num(s.value), _num(s.champion), _signed(s.difference)]
        for s in perf.fairness
    ]
    missing = (
        f'<p class="note">Not found on the model\'s run: {_esc(", ".join(perf.missing))}.</p>'
        if perf.missing
        else ""
    )
    compared = ["metric", "batch", "champion", "batch − champion"]
    return (
        f"<h2>Performance on {perf.n_rows:,} labelled rows</h2>{missing}"
        + _table(compared, metric_rows, left=1)
        + "<h2>Per group</h2>"
        + _table(
            ["column", "group", "n", "champion n", "status (batch / champion)", *compared],
            group_rows,
            left=6,
        )
        + '<p class="note">Status under the one small-group rule: private groups show n only; '
        "insufficient-evidence groups are shown but kept out of summaries and gates.</p>"
        + "<h2>Between-group summaries</h2>"
        + _table(["slice", "summary", "batch", "champion", "batch − champion"], summary_rows, 2)
        + f'<p class="note">Full fairness report: {_esc(perf.fairness_html.name)}.</p>'
    )


def _comparison_row(name: str, item: Comparison) -> list[str]:
    return [_esc(name), _num(item.value), _num(item.champion), _signed(item.difference)]


def _table(
    headers: Sequence[str],
    rows: Iterable[Sequence[str]],
    left: int = 1,
    classes: Sequence[str] | None = None,
) -> str:
    head = "".join(
        f'<th class="l">{_esc(h)}</th>' if i < left else f"<th>{_esc(h)}</th>"
        for i, h in enumerate(headers)
    )
    body = []
    for index, row in enumerate(rows):
        css = classes[index] if classes else ""
        cells = "".join(
            f'<td class="l">{cell}</td>' if i < left else f"<td>{cell}</td>"
            for i, cell in enumerate(row)
        )
        body.append(f'<tr class="{css}">{cells}</tr>' if css else f"<tr>{cells}</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _num(value: float | None) -> str:
    return "–" if value is None else f"{value:.4f}"


def _signed(value: float | None) -> str:
    return "–" if value is None else f"{value:+.4f}"


def _count(value: int | None) -> str:
    return "–" if value is None else f"{value:,}"


def _esc(text: str) -> str:
    return html.escape(str(text), quote=True)
