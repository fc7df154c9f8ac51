"""The model card's tables as rows of text, one builder per table.

Both renderings of the card show these rows; numbers go through the shared ``num`` and
``interval`` filters so the HTML and the Markdown read the same figures.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from evenflow.assess.explain import Explanations
from evenflow.assess.fairness import Estimate, FairnessReport, SliceReport
from evenflow.assess.impact_tables import RATES, ImpactRatioReport, ImpactSlice, RateRatio
from evenflow.govern.clauses import GateClause
from evenflow.govern.gates import GateDecision
from evenflow.records import ValidationReport
from evenflow.reports.fairness_html import PLOTTED_RATES
from evenflow.reports.render import DASH, interval, num

if TYPE_CHECKING:
    from evenflow.reports.model_card import (
        Cell,
        DataSummary,
        DriftOverview,
        Lineage,
        ModelCardInputs,
    )


@dataclass(frozen=True)
class FigureCell:
    """A figure with a note under it in the HTML (its interval, or which bound was compared).

    Its text is the figure then the note, so the Markdown, which calls ``str``, reads
    ``0.912 [0.905, 0.919]`` on one line.
    """

    value: str
    note: str = ""

    def __str__(self) -> str:
        return f"{self.value} {self.note}".strip()


CellText = str | FigureCell
Rows = Sequence[Sequence[CellText]]

_TOP_FEATURES = 20
_GROUP_FEATURES = 5
_COMPARISON_SIGN = {"<=": "≤", ">=": "≥", ">": ">"}
_BOUND_NAME = {"point": "point", "lower": "lower bound", "upper": "upper bound"}
_RESULT = {"passed": "pass", "failed": "FAIL", "skipped": "skipped"}
# A cell that reads as a figure: a number (with separators, sign, exponent or a comparison sign
# before it), an interval, a dash; text may follow ("8,000 (2 groups)").
_FIGURE = re.compile(
    r"^(?:[≤≥<>=]+\s*)?(?:[+\-−]?\d[\d,]*(?:\.\d+)?(?:e[+\-]?\d+)?%?|\[.*\]|–)(?:\s.*)?$"
)


def is_figure(cell: CellText) -> bool:
    """Whether a cell shows a figure (aligned right, like every number in a column)."""
    return isinstance(cell, FigureCell) or bool(_FIGURE.match(cell))


def estimate_cell(value: Estimate | None) -> FigureCell:
    """A value with its interval under it; a dash when there is no value."""
    if value is None or value.value is None:
        return FigureCell(DASH)
    return FigureCell(num(value.value), interval(value))


def overview_rows(inputs: ModelCardInputs) -> Rows:
    """Model, version, run and the decision threshold."""
    rows = [["Model", inputs.model_name], ["Version", inputs.model_version or "not registered"]]
    rows.append(["MLflow run", inputs.run_id or "n/a"])
    if inputs.threshold is not None:
        rows.append(["Decision threshold", f"score ≥ {num(inputs.threshold)}"])
    return rows


def data_rows(data: DataSummary) -> Rows:
    """The dataset, its DVC hash, rows per split and how the figures were obtained."""
    rows = [["Dataset", data.dataset], ["Data md5 (DVC)", data.data_md5]]
    rows += [[f"Rows: {split}", num(n)] for split, n in data.rows.items()]
    rows.append(["Rows: total", num(sum(data.rows.values()))])
    if data.evaluation:
        rows.append(["Evaluated on", data.evaluation])
    return rows


def validation_rows(report: ValidationReport | None, missing: str) -> Rows:
    """The data contract's outcome and every failed expectation."""
    if report is None:
        return [["Validation", missing]]
    outcome = "passed" if report.success else f"failed ({len(report.failures)} expectations)"
    rows = [
        ["Suite", report.suite_name],
        ["Outcome", outcome],
        ["Expectations", num(report.n_expectations)],
        ["Rows validated", num(report.n_rows)],
    ]
    rows += [["Failed", failure.describe()] for failure in report.failures]
    return rows


def metric_table(
    metrics: Mapping[str, Estimate], baselines: Mapping[str, Mapping[str, Estimate]]
) -> tuple[list[str], Rows]:
    """The model's metrics with intervals, and beside them each baseline's on the same rows."""
    names = list(baselines)
    header = ["Metric", "Model", *(f"Baseline: {name}" for name in names)]
    rows: Rows = [
        [metric, estimate_cell(e), *(estimate_cell(baselines[n].get(metric)) for n in names)]
        for metric, e in metrics.items()
    ]
    return header, rows


def tradeoff_table(rows: Sequence[Mapping[str, Cell]]) -> tuple[list[str], Rows]:
    """The mitigations compared, one row each, columns in first-seen order.

    A column with ``_low`` / ``_high`` siblings (``accuracy_low``, ``dpd_low[sex]``) shows its
    interval under the value, and the bound columns are not repeated: the table stays narrow.
    """
    keys = list(dict.fromkeys(key for row in rows for key in row))
    bounds = {key: (_bound_key(key, "_low"), _bound_key(key, "_high")) for key in keys}
    bounds = {k: b for k, b in bounds.items() if b[0] in keys and b[1] in keys}
    merged = {name for pair in bounds.values() for name in pair}
    header = [key for key in keys if key not in merged]
    table: Rows = [[_tradeoff_cell(row, key, bounds.get(key)) for key in header] for row in rows]
    return header, table


def _bound_key(key: str, part: str) -> str:
    """``accuracy`` -> ``accuracy_low``; ``dpd[sex]`` -> ``dpd_low[sex]``."""
    name, bracket, rest = key.partition("[")
    return f"{name}{part}{bracket}{rest}"


def _tradeoff_cell(row: Mapping[str, Cell], key: str, bounds: tuple[str, str] | None) -> CellText:
    if bounds is None:
        return num(row.get(key))
    value, low, high = row.get(key), row.get(bounds[0]), row.get(bounds[1])
    if not isinstance(value, int | float) or isinstance(value, bool):
        return num(value)
    estimate = Estimate(
        value=float(value),
        low=float(low) if isinstance(low, int | float) else None,
        high=float(high) if isinstance(high, int | float) else None,
    )
    return estimate_cell(estimate)


def drift_rows(drift: DriftOverview) -> Rows:
    """How many columns drifted, against which threshold."""
    return [
        ["Columns drifted", f"{drift.drifted_count} of {drift.n_columns}"],
        ["Share drifted", num(drift.drifted_share)],
        ["Dataset drift threshold (share)", num(drift.drift_share_threshold)],
        ["Dataset drift", "yes" if drift.dataset_drift else "no"],
        ["Drifted columns", ", ".join(drift.drifted_columns) or "none"],
    ]


def importance_rows(explanations: Explanations) -> Rows:
    """The top features by mean |SHAP|."""
    items = explanations.summary.global_importance[:_TOP_FEATURES]
    return [[item.feature, num(item.mean_abs_shap)] for item in items]


def group_importance_table(explanations: Explanations) -> tuple[list[str], Rows]:
    """Mean |SHAP| of the top features in each group."""
    summary = explanations.summary
    top = [item.feature for item in summary.global_importance[:_GROUP_FEATURES]]
    rows = [
        [g.column, g.group, num(g.n), *(num(g.mean_abs_shap.get(f)) for f in top)]
        for g in summary.groups
    ]
    return ["Column", "Group", "Rows", *top], rows


def proxy_rows(explanations: Explanations) -> Rows:
    """Per sensitive column: how well the other features predict it, and through which."""
    rows = []
    for name, result in explanations.proxies.items():
        top = ", ".join(f"{f.feature} ({num(f.mean_abs_shap)})" for f in result.top_features)
        notes = [result.note or ""]
        if result.merged_classes:
            notes.append(f"merged rare classes: {', '.join(result.merged_classes)}")
        rows.append(
            [
                name,
                num(result.auc),
                result.auc_kind,
                num(result.n_rows),
                str(len(result.classes)),
                top or DASH,
                "; ".join(n for n in notes if n),
            ]
        )
    return rows


def lineage_rows(lineage: Lineage) -> Rows:
    """What rebuilds the model."""
    return [
        ["Data md5", lineage.data_md5],
        ["Git commit", lineage.git_commit],
        ["Uncommitted changes", "yes" if lineage.git_dirty else "no"],
        ["Params hash", lineage.params_hash],
        ["Environment hash", lineage.env_hash],
        ["Flow run id", lineage.flow_run_id],
    ]


def left_out_rows(report: FairnessReport) -> Rows:
    """Every group the summaries leave out, with its status and why."""
    return [
        [c.slice, c.group, c.status, num(c.n), num(c.n_pos), num(c.n_neg), c.reason]
        for c in report.left_out
    ]


def rows_left_out(report: FairnessReport) -> Rows:
    """Per slice: rows the summaries compare and rows they leave out, by status."""
    rows = []
    for item in report.slices:
        summary = item.summary
        by_status = {e.status: e for e in summary.left_out}
        rows.append(
            [
                item.name,
                num(summary.n_rows_compared),
                *(
                    f"{num(by_status[s].rows)} ({by_status[s].groups} groups)"
                    if s in by_status
                    else DASH
                    for s in ("insufficient", "private")
                ),
            ]
        )
    return rows


def excluded_rows(decision: GateDecision) -> Rows:
    """The groups the gate left out of its clauses."""
    return [[e.clauses, e.slice, e.group, e.status, num(e.n), e.reason] for e in decision.excluded]


def policy_rows(decision: GateDecision) -> Rows:
    """Every setting of the gate policy the decision used."""
    settings = decision.policy.model_dump(mode="json")
    rows = [[key, _setting(value) or "none"] for key, value in settings.items()]
    if settings.get("columns") is None:
        rows = [[k, "every single sensitive column" if k == "columns" else v] for k, v in rows]
    return rows


def _setting(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}: {num(v)}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return num(value)


def clause_result(clause: GateClause) -> str:
    """``passed``, ``failed`` or ``skipped``: the row's class in the HTML."""
    if clause.skipped:
        return "skipped"
    return "passed" if clause.passed else "failed"


def gate_table(clauses: Sequence[GateClause]) -> tuple[list[str], Rows]:
    """Each clause: result, the figure observed with its interval, the figure compared, the limit.

    A Reference column (the champion's or the baseline's value) appears when a clause has one.
    """
    header = ["Clause", "Result", "Observed", "Compared", "Limit"]
    with_reference = any(c.reference is not None for c in clauses)
    rows: list[list[CellText]] = []
    for c in clauses:
        observed = FigureCell(num(c.observed), _interval_or_blank(c.low, c.high))
        compared = FigureCell(DASH)
        if c.compared is not None:
            compared = FigureCell(num(c.compared), f"({_BOUND_NAME[c.bound]})")
        limit = DASH if c.limit is None else f"{_COMPARISON_SIGN[c.comparison]} {num(c.limit)}"
        row: list[CellText] = [c.name, _RESULT[clause_result(c)], observed, compared, limit]
        if with_reference:
            margin = f"margin {num(c.margin)}" if c.margin is not None else ""
            row.append(FigureCell(num(c.reference), margin))
        rows.append(row)
    return header + (["Reference"] if with_reference else []), rows


def _interval_or_blank(low: float | None, high: float | None) -> str:
    return "" if low is None or high is None else f"[{num(low)}, {num(high)}]"


def clause_detail_rows(clauses: Sequence[GateClause]) -> Rows:
    """Each clause in words, as the gate wrote it."""
    return [[c.name, _RESULT[clause_result(c)], c.detail] for c in clauses]


def slice_summary_rows(item: SliceReport) -> Rows:
    """A slice's between-group summaries with their intervals and extreme groups."""
    rows = []
    for name, value in item.summary:
        if isinstance(value, Estimate):
            rows.append(
                [
                    name,
                    estimate_cell(value),
                    getattr(value, "highest", "") or "",
                    getattr(value, "lowest", "") or "",
                ]
            )
    return rows


def slice_group_rows(item: SliceReport) -> Rows:
    """A slice's groups: counts, then rates with intervals; a private group shows only n."""
    rows: list[list[CellText]] = []
    for group in item.groups:
        mark = " (insufficient evidence)" if group.status == "insufficient" else ""
        counts: list[CellText] = [
            group.name + mark,
            num(group.n),
            num(group.n_pos),
            num(group.n_neg),
        ]
        if group.status == "private":  # only n: never a rate
            rows.append([*counts, *(["private"] * len(PLOTTED_RATES))])
            continue
        cells: list[CellText] = [estimate_cell(getattr(group, f)) for f, _ in PLOTTED_RATES]
        rows.append([*counts, *cells])
    return rows


IMPACT_HEADER = (
    "Category",
    "n",
    "Share of rows",
    "Selection rate",
    "Impact ratio",
    "Flag",
    "Scoring rate",
    "Impact ratio (scoring)",
    "Flag (scoring)",
)


def impact_rows(table: ImpactSlice) -> Rows:
    """A slice's categories: n and share, then per rate its value, impact ratio and flag.

    A private category shows only n; an insufficient one is marked and flagged as such.
    """
    rows: list[list[CellText]] = []
    for category in table.categories:
        mark = " (insufficient evidence)" if category.status == "insufficient" else ""
        counts: list[CellText] = [category.name + mark, num(category.n), _percent(category.share)]
        if category.status == "private":  # only n: never a rate
            rows.append([*counts, *(["private"] * 3 * len(RATES))])
            continue
        figures = (category.selection, category.scoring)
        rows.append([*counts, *(cell for rate in figures for cell in _rate_cells(rate))])
    return rows


def _rate_cells(figure: RateRatio | None) -> list[CellText]:
    if figure is None:
        return [DASH, DASH, DASH]
    return [estimate_cell(figure.rate), estimate_cell(figure.impact_ratio), figure.flag or DASH]


def _percent(share: float) -> str:
    return f"{100 * share:.1f}%"


def impact_disclosure(table: ImpactSlice, report: ImpactRatioReport) -> str:
    """What the table leaves out of its ratios, said in a sentence: unknown rows, small categories."""
    minimum = _percent(report.settings.min_share)
    small = (
        "; ".join(f"{c.name} (n={num(c.n)})" for c in table.excluded) if table.excluded else "none"
    )
    reference = table.reference.get("selection") or DASH
    scoring_reference = table.reference.get("scoring") or DASH
    text = (
        f"{num(table.n_rows)} rows, {num(table.n_unknown)} of them with an unknown category "
        f"(counted, not compared). Categories under {minimum} of the rows, excluded from the "
        f"ratios: {small}. Highest selection rate: {reference}; highest scoring rate: "
        f"{scoring_reference}."
    )
    return f"{text} {table.note}." if table.note else text
