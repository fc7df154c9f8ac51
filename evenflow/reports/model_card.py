"""Model card: one self-contained HTML page and a Markdown twin for each registered version.

The card reports and does not judge. It gathers what a reviewer needs in one place: what the
model is for, the data it saw, its metrics with intervals, fairness tables side by side, the
mitigation chosen and what the alternatives cost, drift, SHAP importance, the proxy check, the
lineage that rebuilds it, the groups left out of summaries under the one rule for small groups
(private: only n; insufficient evidence: shown, marked), and the gate decision with every clause.
A section whose input was not given says so instead of disappearing.

The HTML embeds its plots as base64 PNG and links nothing outside itself, so it opens offline and
can be logged to MLflow as one artifact. The Markdown refers to plot files by relative path.
"""

from __future__ import annotations

import base64
import html
import logging
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator

from evenflow.assess.explain import Explanations
from evenflow.assess.fairness import Estimate, FairnessReport, SliceReport
from evenflow.govern.gates import GateClause, GateDecision
from evenflow.io import write_text_atomic
from evenflow.records import ValidationReport
from evenflow.reports.fairness_html import (
    LEFT_OUT_HEADING,
    PLOTTED_RATES,
    render_fairness_html,
    slice_note,
)

if TYPE_CHECKING:
    from evenflow.assess.drift import DriftSummary

logger = logging.getLogger(__name__)

HTML_NAME = "model_card.html"
MARKDOWN_NAME = "model_card.md"
NOT_PROVIDED = "Not provided."

SECTIONS = (
    "Intended use",
    "Out-of-scope use",
    "Data",
    "Metrics",
    "Fairness",
    "Mitigation",
    "Drift",
    "Explanations (SHAP)",
    "Proxy check",
    "Lineage",
    LEFT_OUT_HEADING,
    "Gate decision",
)

_TOP_FEATURES = 20
_GROUP_FEATURES = 5
_COUNT_LIKE = 1_000  # whole floats this large are counts, shown in full
_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem;color:#1f2328;max-width:1200px}
h1{font-size:1.6rem}h2{font-size:1.3rem;margin-top:2.4rem;border-bottom:1px solid #d0d7de}
h3{font-size:1.1rem;margin-top:1.6rem}
table{border-collapse:collapse;margin:.6rem 0 1rem;font-size:.85rem}
th,td{border:1px solid #d0d7de;padding:.25rem .5rem;text-align:right;white-space:nowrap}
th{background:#f6f8fa}td.l,th.l{text-align:left;white-space:normal}
tr.private td{color:#6e7781;background:#fafafa}tr.insufficient td{background:#fffbe6}
tr.fail td{background:#fff1f0}
.ci{color:#57606a;font-size:.78rem}.note{color:#57606a;font-size:.9rem;max-width:70rem}
img{max-width:100%;display:block;margin:.5rem 0 1.2rem}
"""

Cell = str | int | float | bool | None


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DataSummary(_Record):
    """The data a model was trained and tested on."""

    dataset: str
    data_md5: str = Field(description="DVC hash of the shard directory.")
    rows: dict[str, int] = Field(description="Split (or fold) -> rows.")
    evaluation: str | None = Field(
        default=None,
        description="How the figures were obtained: a held-out test split or cross-fitting, and why.",
    )
    validation: ValidationReport | None = None


class DriftOverview(_Record):
    """The drift figures a card shows (the full report is logged beside it)."""

    drifted_count: int
    n_columns: int
    drifted_share: float
    drift_share_threshold: float
    dataset_drift: bool
    drifted_columns: tuple[str, ...]

    @classmethod
    def from_summary(cls, summary: DriftSummary) -> DriftOverview:
        """Take the card's figures from an ``evenflow.assess.drift.DriftSummary``."""
        return cls(
            drifted_count=summary.drifted_count,
            n_columns=len(summary.columns),
            drifted_share=summary.drifted_share,
            drift_share_threshold=summary.drift_share_threshold,
            dataset_drift=summary.dataset_drift,
            drifted_columns=summary.drifted_columns,
        )


class Lineage(_Record):
    """What rebuilds the model: data hash, code commit, parameters, environment, flow run."""

    data_md5: str
    git_commit: str
    git_dirty: bool
    params_hash: str
    env_hash: str
    flow_run_id: str

    @classmethod
    def from_tags(cls, tags: Mapping[str, str]) -> Lineage:
        """Read the ``evenflow.*`` lineage tags of a run (see ``evenflow.govern.lineage``)."""
        return cls(
            data_md5=tags["evenflow.data_md5"],
            git_commit=tags["evenflow.git_commit"],
            git_dirty=tags["evenflow.git_dirty"].lower() == "true",
            params_hash=tags["evenflow.params_hash"],
            env_hash=tags["evenflow.env_hash"],
            flow_run_id=tags["evenflow.flow_run_id"],
        )


class ModelCardInputs(_Record):
    """Everything a model card shows; optional parts render as 'Not provided.'."""

    model_name: str
    model_version: str | None = None
    run_id: str | None = None
    intended_use: str = Field(description="From configuration.")
    out_of_scope_use: str = Field(description="From configuration.")
    data: DataSummary
    metrics: dict[str, Estimate] = Field(
        description="Overall test metrics; headline metrics with their bootstrap intervals."
    )
    baselines: dict[str, dict[str, Estimate]] = Field(
        default_factory=dict,
        description="Baseline name (prior, logistic) -> its headline metrics on the same rows.",
    )
    threshold: float | None = Field(default=None, description="Score cut for a positive.")
    fairness: FairnessReport | None = None
    fairness_html: Path | None = Field(
        default=None, description="The report's HTML page already rendered (saves redrawing)."
    )
    mitigation: str = Field(default="none", description="The mitigation chosen in configuration.")
    tradeoff: tuple[dict[str, Cell], ...] | None = Field(
        default=None, description="Trade-off table of the mitigations compared, one row each."
    )
    tradeoff_plot: Path | None = None
    drift: DriftOverview | None = None
    explanations: Explanations | None = None
    shap_plots: tuple[Path, ...] = Field(default=(), description="PNG files to embed.")
    lineage: Lineage
    gate: GateDecision | None = None

    @field_validator("metrics", mode="before")
    @classmethod
    def _plain_numbers_are_estimates(cls, value: Any) -> Any:
        if isinstance(value, Mapping):
            return {k: _as_estimate(v) for k, v in value.items()}
        return value

    @field_validator("tradeoff", mode="before")
    @classmethod
    def _frame_to_records(cls, value: Any) -> Any:
        if isinstance(value, pd.DataFrame):
            value = value.to_dict(orient="records")
        if isinstance(value, Iterable) and not isinstance(value, str | bytes | Mapping):
            return tuple({str(k): _cell(v) for k, v in dict(row).items()} for row in value)
        return value


BASELINE_NOTE = (
    "Baselines are fitted on the model's own training rows and scored on the same rows: the prior "
    "(the training base rate) and an L2-regularised logistic regression."
)


def _as_estimate(value: Any) -> Any:
    if isinstance(value, Estimate | Mapping):
        return value
    number = float(value)
    return Estimate(value=number if math.isfinite(number) else None)


def _cell(value: Any) -> Cell:
    """A table cell as a JSON-safe scalar: numpy unboxed, NaN and NA as None."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or value is pd.NA:
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, str | int | float | bool):
        return value
    return str(value)


def render_model_card(inputs: ModelCardInputs, relative_to: Path | None = None) -> tuple[str, str]:
    """Render the card as (self-contained HTML, Markdown).

    Args:
        inputs: What the card shows.
        relative_to: Folder the Markdown will live in; plot paths are written relative to it.

    Returns:
        The HTML document and the Markdown document.
    """
    return _Html(inputs).render(), _Markdown(inputs, relative_to).render()


def write_model_card(inputs: ModelCardInputs, out_dir: Path) -> tuple[Path, Path]:
    """Write ``model_card.html`` and ``model_card.md`` atomically into ``out_dir``."""
    page, markdown = render_model_card(inputs, relative_to=out_dir)
    html_path = write_text_atomic(out_dir / HTML_NAME, page)
    md_path = write_text_atomic(out_dir / MARKDOWN_NAME, markdown)
    logger.info("model card written to %s", out_dir)
    return html_path, md_path


# --- content shared by both renderings ------------------------------------------------------
# Each builder returns rows of plain text; the two renderers only decide how rows look.

Rows = list[list[str]]


def _title(inputs: ModelCardInputs) -> str:
    version = f" version {inputs.model_version}" if inputs.model_version else ""
    return f"Model card: {inputs.model_name}{version}"


def _overview_rows(inputs: ModelCardInputs) -> Rows:
    rows = [["Model", inputs.model_name], ["Version", inputs.model_version or "not registered"]]
    rows.append(["MLflow run", inputs.run_id or "n/a"])
    if inputs.threshold is not None:
        rows.append(["Decision threshold", f"score ≥ {_num(inputs.threshold)}"])
    return rows


def _data_rows(data: DataSummary) -> Rows:
    rows = [["Dataset", data.dataset], ["Data md5 (DVC)", data.data_md5]]
    rows += [[f"Rows: {split}", _num(n)] for split, n in data.rows.items()]
    rows.append(["Rows: total", _num(sum(data.rows.values()))])
    if data.evaluation:
        rows.append(["Evaluated on", data.evaluation])
    return rows


def _validation_rows(report: ValidationReport | None) -> Rows:
    if report is None:
        return [["Validation", NOT_PROVIDED]]
    outcome = "passed" if report.success else f"failed ({len(report.failures)} expectations)"
    rows = [
        ["Suite", report.suite_name],
        ["Outcome", outcome],
        ["Expectations", _num(report.n_expectations)],
        ["Rows validated", _num(report.n_rows)],
    ]
    rows += [["Failed", failure.describe()] for failure in report.failures]
    return rows


def _metric_rows(metrics: Mapping[str, Estimate]) -> Rows:
    return [[name, _num(e.value), _interval(e)] for name, e in metrics.items()]


def _metric_table(inputs: ModelCardInputs) -> tuple[list[str], Rows]:
    """The model's metrics, and beside them each baseline's on the same rows where it has one."""
    header = ["Metric", "Value", "Interval"]
    rows = _metric_rows(inputs.metrics)
    if not inputs.baselines:
        return header, rows
    names = list(inputs.baselines)
    header += [f"Baseline: {name}" for name in names]
    for row in rows:
        row += [_with_interval(inputs.baselines[name].get(row[0])) for name in names]
    return header, rows


def _tradeoff_table(rows: Sequence[Mapping[str, Cell]]) -> tuple[list[str], Rows]:
    header = list(dict.fromkeys(key for row in rows for key in row))
    return header, [[_num(row.get(key)) for key in header] for row in rows]


def _drift_rows(drift: DriftOverview) -> Rows:
    return [
        ["Columns drifted", f"{drift.drifted_count} of {drift.n_columns}"],
        ["Share drifted", _num(drift.drifted_share)],
        ["Dataset drift threshold (share)", _num(drift.drift_share_threshold)],
        ["Dataset drift", "yes" if drift.dataset_drift else "no"],
        ["Drifted columns", ", ".join(drift.drifted_columns) or "none"],
    ]


def _importance_rows(explanations: Explanations) -> Rows:
    items = explanations.summary.global_importance[:_TOP_FEATURES]
    return [[item.feature, _num(item.mean_abs_shap)] for item in items]


def _group_importance_table(explanations: Explanations) -> tuple[list[str], Rows]:
    summary = explanations.summary
    top = [item.feature for item in summary.global_importance[:_GROUP_FEATURES]]
    rows = [
        [g.column, g.group, _num(g.n), *(_num(g.mean_abs_shap.get(f)) for f in top)]
        for g in summary.groups
    ]
    return ["Column", "Group", "Rows", *top], rows


def _proxy_rows(explanations: Explanations) -> Rows:
    rows = []
    for name, result in explanations.proxies.items():
        top = ", ".join(f"{f.feature} ({_num(f.mean_abs_shap)})" for f in result.top_features)
        notes = [result.note or ""]
        if result.merged_classes:
            notes.append(f"merged rare classes: {', '.join(result.merged_classes)}")
        rows.append(
            [
                name,
                _num(result.auc),
                result.auc_kind,
                _num(result.n_rows),
                str(len(result.classes)),
                top or "–",
                "; ".join(n for n in notes if n),
            ]
        )
    return rows


def _lineage_rows(lineage: Lineage) -> Rows:
    return [
        ["Data md5", lineage.data_md5],
        ["Git commit", lineage.git_commit],
        ["Uncommitted changes", "yes" if lineage.git_dirty else "no"],
        ["Params hash", lineage.params_hash],
        ["Environment hash", lineage.env_hash],
        ["Flow run id", lineage.flow_run_id],
    ]


_LEFT_OUT_HEADER = ["Slice", "Group", "Status", "n", "Positives", "Negatives", "Reason"]


def _left_out_rows(report: FairnessReport) -> Rows:
    return [
        [c.slice, c.group, c.status, _num(c.n), _num(c.n_pos), _num(c.n_neg), c.reason]
        for c in report.left_out
    ]


def _rows_left_out(report: FairnessReport) -> Rows:
    """Per slice: rows the summaries compare and rows they leave out, by status."""
    rows = []
    for item in report.slices:
        summary = item.summary
        by_status = {e.status: e for e in summary.left_out}
        rows.append(
            [
                item.name,
                _num(summary.n_rows_compared),
                *(
                    f"{_num(by_status[s].rows)} ({by_status[s].groups} groups)"
                    if s in by_status
                    else "–"
                    for s in ("insufficient", "private")
                ),
            ]
        )
    return rows


_ROWS_LEFT_OUT_HEADER = ["Slice", "Rows compared", "Insufficient evidence", "Private"]


_EXCLUDED_HEADER = ["Clauses", "Slice", "Group", "Status", "n", "Reason"]


def _excluded_rows(decision: GateDecision) -> Rows:
    return [[e.clauses, e.slice, e.group, e.status, _num(e.n), e.reason] for e in decision.excluded]


def _policy_rows(decision: GateDecision) -> Rows:
    settings = decision.policy.model_dump(mode="json")
    rows = [[key, _setting(value) or "none"] for key, value in settings.items()]
    if settings.get("columns") is None:
        rows = [[k, "every single sensitive column" if k == "columns" else v] for k, v in rows]
    return rows


def _setting(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_num(v)}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return _num(value)


def _clause_rows(clauses: Sequence[GateClause]) -> Rows:
    return [
        [
            c.name,
            "skipped" if c.skipped else ("pass" if c.passed else "FAIL"),
            _num(c.observed),
            c.bound,
            _num(c.compared),
            f"{c.comparison} {_num(c.limit)}",
            c.detail,
        ]
        for c in clauses
    ]


def _slice_summary_rows(item: SliceReport) -> Rows:
    rows = []
    for name, value in item.summary:
        if isinstance(value, Estimate):
            rows.append(
                [
                    name,
                    _num(value.value),
                    _interval(value),
                    getattr(value, "highest", "") or "",
                    getattr(value, "lowest", "") or "",
                ]
            )
    return rows


def _slice_group_rows(item: SliceReport) -> Rows:
    rows = []
    for group in item.groups:
        mark = " (insufficient evidence)" if group.status == "insufficient" else ""
        counts = [group.name + mark, _num(group.n), _num(group.n_pos), _num(group.n_neg)]
        if group.status == "private":  # only n: never a rate
            rows.append([*counts, *(["private"] * len(PLOTTED_RATES))])
            continue
        cells = [_with_interval(getattr(group, field)) for field, _ in PLOTTED_RATES]
        rows.append([*counts, *cells])
    return rows


def _num(value: Any) -> str:
    """Numbers for people: ints with separators, floats to four significant digits."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return _float(value)
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _float(value: float) -> str:
    if not math.isfinite(value):
        return "–"
    if value.is_integer() and abs(value) >= _COUNT_LIKE:  # counts stored as floats
        return f"{int(value):,}"
    return f"{value:.4g}"


def _interval(value: Estimate) -> str:
    if value.low is None or value.high is None:
        return ""
    return f"[{_num(value.low)}, {_num(value.high)}]"


def _with_interval(value: Estimate | None) -> str:
    if value is None or value.value is None:
        return "–"
    interval = _interval(value)
    return f"{_num(value.value)} {interval}".strip()


# --- HTML -----------------------------------------------------------------------------------


class _Html:
    """Renders a card as one HTML document; every string from the inputs is escaped."""

    def __init__(self, inputs: ModelCardInputs) -> None:
        self.inputs = inputs

    def render(self) -> str:
        title = _esc(_title(self.inputs))
        body = [
            f"<h1>{title}</h1>",
            _table(None, _overview_rows(self.inputs)),
            self._section("Intended use", _para(self.inputs.intended_use)),
            self._section("Out-of-scope use", _para(self.inputs.out_of_scope_use)),
            self._section("Data", self._data()),
            self._section("Metrics", self._metrics()),
            self._section("Fairness", self._fairness()),
            self._section("Mitigation", self._mitigation()),
            self._section("Drift", self._drift()),
            self._section("Explanations (SHAP)", self._shap()),
            self._section("Proxy check", self._proxy()),
            self._section("Lineage", _table(None, _lineage_rows(self.inputs.lineage))),
            self._section(LEFT_OUT_HEADING, self._left_out()),
            self._section("Gate decision", self._gate()),
        ]
        return "\n".join(
            [
                "<!DOCTYPE html>",
                f'<html lang="en"><head><meta charset="utf-8"><title>{title}</title>',
                f"<style>{_CSS}</style></head><body>",
                *body,
                "</body></html>",
            ]
        )

    @staticmethod
    def _section(heading: str, content: str) -> str:
        anchor = re.sub(r"[^a-z0-9]+", "-", heading.lower()).strip("-")
        return f'<h2 id="{anchor}">{_esc(heading)}</h2>\n{content}'

    def _data(self) -> str:
        data = self.inputs.data
        return (
            _table(None, _data_rows(data))
            + "<h3>Validation</h3>"
            + _table(None, _validation_rows(data.validation))
        )

    def _metrics(self) -> str:
        if not self.inputs.metrics:
            return _para(NOT_PROVIDED)
        return _table(*_metric_table(self.inputs)) + _para(BASELINE_NOTE)

    def _fairness(self) -> str:
        report = self.inputs.fairness
        if report is None:
            return _para(NOT_PROVIDED)
        page = self.inputs.fairness_html
        rendered = page.read_text(encoding="utf-8") if page is not None and page.is_file() else None
        return _fairness_fragment(report, rendered)

    def _mitigation(self) -> str:
        parts = [_para(f"Chosen: {self.inputs.mitigation}")]
        if self.inputs.tradeoff:
            header, rows = _tradeoff_table(self.inputs.tradeoff)
            parts += ["<h3>Trade-off of the mitigations compared</h3>", _table(header, rows)]
        else:
            parts.append(_para("Trade-off table: " + NOT_PROVIDED))
        if self.inputs.tradeoff_plot is not None:
            parts.append(_img(self.inputs.tradeoff_plot, "Mitigation trade-off"))
        return "\n".join(parts)

    def _drift(self) -> str:
        drift = self.inputs.drift
        return _para(NOT_PROVIDED) if drift is None else _table(None, _drift_rows(drift))

    def _shap(self) -> str:
        explanations = self.inputs.explanations
        if explanations is None:
            return _para(NOT_PROVIDED)
        summary = explanations.summary
        header, rows = _group_importance_table(explanations)
        parts = [
            _para(
                f"Mean |SHAP| over {summary.n_rows:,} test rows, in {summary.units}; "
                f"base margin {_num(summary.expected_margin)}."
            ),
            "<h3>Global importance</h3>",
            _table(["Feature", "Mean |SHAP|"], _importance_rows(explanations)),
            "<h3>Mean |SHAP| by group (top features)</h3>",
            _table(header, rows),
            *(_img(path, path.stem.replace("_", " ")) for path in self.inputs.shap_plots),
        ]
        return "\n".join(parts)

    def _proxy(self) -> str:
        explanations = self.inputs.explanations
        if explanations is None or not explanations.proxies:
            return _para(NOT_PROVIDED)
        header = ["Sensitive column", "AUC", "Kind", "Rows", "Classes", "Top features", "Note"]
        note = (
            "Out-of-fold AUC of predicting each sensitive column from the other features "
            "(0.5: no signal). Reported, not a gate."
        )
        return _para(note) + _table(header, _proxy_rows(explanations))

    def _left_out(self) -> str:
        report = self.inputs.fairness
        if report is None:
            return _para(NOT_PROVIDED)
        counts = _table(_ROWS_LEFT_OUT_HEADER, _rows_left_out(report))
        if not report.left_out:
            return counts + _para("No group left out.")
        return counts + _table(_LEFT_OUT_HEADER, _left_out_rows(report))

    def _gate(self) -> str:
        decision = self.inputs.gate
        if decision is None:
            return _para(NOT_PROVIDED)
        outcome = "PASSED" if decision.passed else f"FAILED ({len(decision.failed)} clauses)"
        header = ["Clause", "Result", "Point", "Bound", "Compared", "Limit", "Detail"]
        excluded = (
            _table(_EXCLUDED_HEADER, _excluded_rows(decision))
            if decision.excluded
            else _para("None.")
        )
        return "\n".join(
            [
                _para(f"Outcome: {outcome}"),
                _table(header, _clause_rows(decision.clauses)),
                "<h3>Groups the gate left out</h3>",
                excluded,
                "<h3>Policy</h3>",
                _table(None, _policy_rows(decision)),
            ]
        )


def _fairness_fragment(report: FairnessReport, page: str | None = None) -> str:
    """The fairness report's own HTML body (tables and plots), nested under the card's heading."""
    page = page if page is not None else render_fairness_html(report)
    start, end = page.find("<body>"), page.rfind("</body>")
    if start < 0 or end < 0:
        logger.warning("fairness HTML has no body; the card shows its own tables instead")
        return _fairness_tables_html(report)
    body = page[start + len("<body>") : end]
    body = re.sub(r"<h1>.*?</h1>", "", body, count=1, flags=re.DOTALL)
    # Its closing left-out list is the card's own section; keep one copy, not two.
    body = body.split(f"<h2>{LEFT_OUT_HEADING}</h2>", 1)[0]
    return body.replace("<h2>", "<h3>").replace("</h2>", "</h3>")


def _fairness_tables_html(report: FairnessReport) -> str:
    parts = []
    for item in report.slices:
        parts.append(f"<h3>{_esc(item.name)}</h3>")
        header = ["Summary", "Value", "Interval", "Highest", "Lowest"]
        parts.append(_table(header, _slice_summary_rows(item)))
        parts.append(_table(_group_header(), _slice_group_rows(item)))
    return "\n".join(parts)


def _group_header() -> list[str]:
    return ["Group", "n", "Positives", "Negatives", *(label for _, label in PLOTTED_RATES)]


def _table(header: Sequence[str] | None, rows: Rows) -> str:
    head = ""
    if header is not None:
        head = "<tr>" + "".join(f'<th class="l">{_esc(h)}</th>' for h in header) + "</tr>"
    body = "".join(
        "<tr>"
        + "".join(_td(cell, first=i == 0 or header is None) for i, cell in enumerate(row))
        + "</tr>"
        for row in rows
    )
    return f"<table>{head}{body}</table>"


def _td(cell: str, *, first: bool) -> str:
    return f'<td class="l">{_esc(cell)}</td>' if first else f"<td>{_esc(cell)}</td>"


def _para(text: str) -> str:
    return (
        "".join(f"<p>{_esc(line)}</p>" for line in text.strip().split("\n\n") if line) or "<p></p>"
    )


def _img(path: Path, alt: str) -> str:
    try:
        data = base64.b64encode(path.read_bytes()).decode("ascii")
    except OSError as exc:
        logger.warning("plot %s not embedded: %s", path, exc)
        return _para(f"Plot {path.name} could not be read.")
    return f'<img alt="{_esc(alt)}" src="data:image/png;base64,{data}">'


def _esc(text: str) -> str:
    return html.escape(text, quote=True)


# --- Markdown -------------------------------------------------------------------------------


class _Markdown:
    """Renders a card as GitHub-flavoured Markdown; plots are linked, not embedded."""

    def __init__(self, inputs: ModelCardInputs, relative_to: Path | None) -> None:
        self.inputs = inputs
        self.relative_to = relative_to

    def render(self) -> str:
        inputs = self.inputs
        parts = [
            f"# {_md(_title(inputs))}",
            _md_table(["", ""], _overview_rows(inputs)),
            self._section("Intended use", inputs.intended_use.strip()),
            self._section("Out-of-scope use", inputs.out_of_scope_use.strip()),
            self._section("Data", self._data()),
            self._section("Metrics", self._metrics()),
            self._section("Fairness", self._fairness()),
            self._section("Mitigation", self._mitigation()),
            self._section("Drift", self._drift()),
            self._section("Explanations (SHAP)", self._shap()),
            self._section("Proxy check", self._proxy()),
            self._section("Lineage", _md_table(["Item", "Value"], _lineage_rows(inputs.lineage))),
            self._section(LEFT_OUT_HEADING, self._left_out()),
            self._section("Gate decision", self._gate()),
        ]
        return "\n\n".join(parts) + "\n"

    @staticmethod
    def _section(heading: str, content: str) -> str:
        return f"## {heading}\n\n{content}"

    def _data(self) -> str:
        data = self.inputs.data
        return "\n\n".join(
            [
                _md_table(["Item", "Value"], _data_rows(data)),
                "### Validation",
                _md_table(["Item", "Value"], _validation_rows(data.validation)),
            ]
        )

    def _metrics(self) -> str:
        if not self.inputs.metrics:
            return NOT_PROVIDED
        return _md_table(*_metric_table(self.inputs)) + "\n\n" + _md(BASELINE_NOTE)

    def _fairness(self) -> str:
        report = self.inputs.fairness
        if report is None:
            return NOT_PROVIDED
        info = report.bootstrap
        parts = [
            f"{report.n_rows:,} rows; threshold {_num(report.params.threshold)}; "
            f"{info.confidence_level:.0%} percentile bootstrap intervals from {info.replicates:,} "
            f"replicates (seed {info.seed}). Differences are max minus min over reported groups: "
            f"a group under {report.params.min_cell} rows is private (only n), one with fewer "
            f"than {report.params.min_positives} positives or {report.params.min_negatives} "
            "negatives is marked insufficient evidence and left out."
        ]
        for item in report.slices:
            parts.append(f"### {_md(item.name)}")
            parts.append(_md(slice_note(item)))
            if item.summary.note:
                parts.append(f"Summaries: {_md(item.summary.note)}.")
            else:
                header = ["Summary", "Value", "Interval", "Highest", "Lowest"]
                parts.append(_md_table(header, _slice_summary_rows(item)))
            parts.append(_md_table(_group_header(), _slice_group_rows(item)))
        parts.append("Plots of rates, reliability and scores by group are in the HTML card.")
        return "\n\n".join(parts)

    def _mitigation(self) -> str:
        parts = [f"Chosen: {_md(self.inputs.mitigation)}"]
        if self.inputs.tradeoff:
            parts += [
                "### Trade-off of the mitigations compared",
                _md_table(*_tradeoff_table(self.inputs.tradeoff)),
            ]
        else:
            parts.append("Trade-off table: " + NOT_PROVIDED)
        if self.inputs.tradeoff_plot is not None:
            parts.append(self._image(self.inputs.tradeoff_plot, "Mitigation trade-off"))
        return "\n\n".join(parts)

    def _drift(self) -> str:
        drift = self.inputs.drift
        return NOT_PROVIDED if drift is None else _md_table(["Item", "Value"], _drift_rows(drift))

    def _shap(self) -> str:
        explanations = self.inputs.explanations
        if explanations is None:
            return NOT_PROVIDED
        summary = explanations.summary
        parts = [
            f"Mean |SHAP| over {summary.n_rows:,} test rows, in {summary.units}; "
            f"base margin {_num(summary.expected_margin)}.",
            "### Global importance",
            _md_table(["Feature", "Mean |SHAP|"], _importance_rows(explanations)),
            "### Mean |SHAP| by group (top features)",
            _md_table(*_group_importance_table(explanations)),
            *(self._image(path, path.stem.replace("_", " ")) for path in self.inputs.shap_plots),
        ]
        return "\n\n".join(parts)

    def _proxy(self) -> str:
        explanations = self.inputs.explanations
        if explanations is None or not explanations.proxies:
            return NOT_PROVIDED
        header = ["Sensitive column", "AUC", "Kind", "Rows", "Classes", "Top features", "Note"]
        note = (
            "Out-of-fold AUC of predicting each sensitive column from the other features "
            "(0.5: no signal). Reported, not a gate."
        )
        return note + "\n\n" + _md_table(header, _proxy_rows(explanations))

    def _left_out(self) -> str:
        report = self.inputs.fairness
        if report is None:
            return NOT_PROVIDED
        counts = _md_table(_ROWS_LEFT_OUT_HEADER, _rows_left_out(report))
        if not report.left_out:
            return counts + "\n\nNo group left out."
        return counts + "\n\n" + _md_table(_LEFT_OUT_HEADER, _left_out_rows(report))

    def _gate(self) -> str:
        decision = self.inputs.gate
        if decision is None:
            return NOT_PROVIDED
        outcome = "PASSED" if decision.passed else f"FAILED ({len(decision.failed)} clauses)"
        header = ["Clause", "Result", "Point", "Bound", "Compared", "Limit", "Detail"]
        excluded = (
            _md_table(_EXCLUDED_HEADER, _excluded_rows(decision)) if decision.excluded else "None."
        )
        return "\n\n".join(
            [
                f"Outcome: **{outcome}**",
                _md_table(header, _clause_rows(decision.clauses)),
                "### Groups the gate left out",
                excluded,
                "### Policy",
                _md_table(["Setting", "Value"], _policy_rows(decision)),
            ]
        )

    def _image(self, path: Path, alt: str) -> str:
        target = path
        if self.relative_to is not None:
            target = Path(os.path.relpath(path.resolve(), self.relative_to.resolve()))
        return f"![{_md(alt)}]({target.as_posix()})"


def _md(text: str) -> str:
    """Text safe inside a Markdown table cell or heading: pipes escaped, one line."""
    return " ".join(text.replace("|", "\\|").split())


def _md_table(header: Sequence[str], rows: Rows) -> str:
    lines = [
        "| " + " | ".join(_md(h) for h in header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
    ]
    lines += ["| " + " | ".join(_md(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)
