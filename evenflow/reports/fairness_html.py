"""Render a ``FairnessReport`` for people (one self-contained HTML file) and machines (JSON).

The page reports and does not judge: parity, error-rate balance and calibration sit side by side,
every value with its interval, and every group that no summary uses listed with its status
(private: only n; insufficient evidence: shown, marked) and the rows each slice left out. Plots are
drawn by ``evenflow.reports.figures`` (Agg canvas, no pyplot, no global backend switch) and embedded
as base64 PNG by ``templates/fairness.html.j2``, so the file opens anywhere, offline, and can be logged to
MLflow as one artifact.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from evenflow.assess.fairness import (
    Disparity,
    Estimate,
    FairnessReport,
    GroupMetrics,
    SliceReport,
    report_to_json,
)
from evenflow.io import write_json_atomic, write_text_atomic
from evenflow.layout import FAIRNESS_FILE, FAIRNESS_HTML_FILE
from evenflow.reports.figures import group_colours, render_png
from evenflow.reports.render import count, fixed, interval, render_html

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

logger = logging.getLogger(__name__)

_RELIABILITY_COLUMNS = 4
LEFT_OUT_HEADING = "Groups left out of summaries"
_BODY_START, _BODY_END = "<!-- fairness-body -->", "<!-- /fairness-body -->"

_RATE_COLUMNS = (
    ("base_rate", "Base rate"),
    ("selection_rate", "Selection rate"),
    ("tpr", "TPR"),
    ("fpr", "FPR"),
    ("fnr", "FNR"),
    ("precision", "Precision"),
    ("accuracy", "Accuracy"),
    ("ece", "ECE"),
    ("mean_score", "Mean score"),
)
# The per-group rates shown side by side (plots here, tables in the model card).
PLOTTED_RATES = (
    ("selection_rate", "Selection rate"),
    ("tpr", "TPR"),
    ("fpr", "FPR"),
    ("precision", "Precision"),
    ("ece", "ECE"),
    ("base_rate", "Base rate"),
)
_SUMMARY_ROWS = (
    ("Parity", "demographic_parity_difference", "Demographic parity difference"),
    ("Parity", "demographic_parity_ratio", "Demographic parity ratio (min / max)"),
    ("Error-rate balance", "equalized_odds_difference", "Equalized odds difference"),
    ("Error-rate balance", "equal_opportunity_difference", "Equal opportunity (TPR) difference"),
    ("Error-rate balance", "false_positive_rate_difference", "FPR difference"),
    ("Calibration", "predictive_parity_difference", "Predictive parity (precision) difference"),
    ("Calibration", "calibration_gap", "Calibration gap (max - min ECE)"),
    ("Context", "base_rate_difference", "Base-rate difference"),
)
_NOTE = (
    "Parity (selection rate), error-rate balance (TPR, FPR, FNR) and calibration (precision, ECE, "
    "reliability) are shown side by side. When base rates differ between groups these criteria "
    "cannot in general all hold at once, so no single figure here is a verdict; the gate policy "
    "decides which one matters. Brackets are {bootstrap.confidence_level:.0%} percentile bootstrap "
    "intervals from {bootstrap.replicates} replicates (seed {bootstrap.seed}). Differences are max "
    "minus min over the reported groups of a slice: a group with fewer than {params.min_cell} rows "
    "is private (only its n is shown) and one with fewer than {params.min_positives} positives or "
    "{params.min_negatives} negatives is shown, "
    "marked insufficient evidence, and left out. ECE is biased upward in small groups by sampling "
    "noise alone."
)


class FairnessReportFiles(BaseModel):
    """Where the report was written."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    json_path: Path
    html_path: Path


@dataclass(frozen=True)
class _SliceView:
    """One slice as the page shows it: the report's slice, its note, summary rows and plots."""

    item: SliceReport
    note: str
    summary: list[list[str]]
    plots: list[tuple[bytes, str]]


def write_fairness_report(report: FairnessReport, out_dir: Path) -> FairnessReportFiles:
    """Write ``fairness.json`` and a self-contained ``fairness.html`` atomically into ``out_dir``."""
    json_path = write_json_atomic(out_dir / FAIRNESS_FILE, report_to_json(report))
    html_path = write_text_atomic(out_dir / FAIRNESS_HTML_FILE, render_fairness_html(report))
    logger.info("fairness report written to %s", out_dir)
    return FairnessReportFiles(json_path=json_path, html_path=html_path)


def render_fairness_html(report: FairnessReport) -> str:
    """Return the report as one HTML document with its plots embedded."""
    slices = [_slice_view(report, item) for item in report.slices]  # draws every plot
    return render_html(
        "fairness.html.j2",
        report=report,
        note=fairness_note(report),
        overview=_overview(report),
        rate_columns=_RATE_COLUMNS,
        slices=slices,
        left_out_heading=LEFT_OUT_HEADING,
        left_out=_left_out_rows(report),
    )


def fairness_fragment(report: FairnessReport, page: str | None = None) -> str:
    """The page's tables and plots, headings one level down, to nest under another heading.

    ``page`` is the report's page already rendered (saves redrawing the plots); without it, or
    when it is not one of ours, the page is rendered again. The list of groups left out is not
    part of the fragment: the model card has its own section for it.
    """
    if page is None or _BODY_START not in page or _BODY_END not in page:
        page = render_fairness_html(report)
    body = page.split(_BODY_START, 1)[1].split(_BODY_END, 1)[0]
    return body.replace("<h2>", "<h3>").replace("</h2>", "</h3>")


def fairness_note(report: FairnessReport) -> str:
    """How to read the page: the criteria, the intervals and the one rule for small groups."""
    return _NOTE.format(bootstrap=report.bootstrap, params=report.params)


def _overview(report: FairnessReport) -> list[tuple[str, str]]:
    params = report.params
    return [
        ("Rows", f"{report.n_rows:,}"),
        ("Positives / negatives", f"{report.n_pos:,} / {report.n_neg:,}"),
        ("Sensitive columns", ", ".join(report.sensitive)),
        ("Threshold", f"score ≥ {params.threshold:g}"),
        ("Calibration bins", str(params.calibration_bins)),
        (
            "Small groups",
            f"private below {params.min_cell} rows (only n shown); insufficient evidence below "
            f"{params.min_positives} positives or {params.min_negatives} negatives (shown, "
            "left out of summaries and gates)",
        ),
        (LEFT_OUT_HEADING, str(len(report.left_out))),
    ]


def _left_out_rows(report: FairnessReport) -> list[list[str]]:
    """Slice, group, status, counts and reason of every group the summaries leave out."""
    return [
        [c.slice, c.group, c.status, count(c.n), count(c.n_pos), count(c.n_neg), c.reason]
        for c in report.left_out
    ]


def _slice_view(report: FairnessReport, item: SliceReport) -> _SliceView:
    shown = [_plotted(g) for g in item.groups if g.status != "private"]
    plots = []
    if shown:
        plots = [
            (_rates_figure(item.name, shown), f"Rates by group: {item.name}"),
            (_reliability_figure(item.name, shown), f"Reliability: {item.name}"),
            (
                _scores_figure(item.name, shown, report.histogram_edges),
                f"Score distribution: {item.name}",
            ),
        ]
    return _SliceView(item=item, note=slice_note(item), summary=_summary_rows(item), plots=plots)


def slice_note(item: SliceReport) -> str:
    """How many groups and rows a slice's summaries compare and how many they leave out."""
    summary = item.summary
    counts = {entry.status: entry for entry in summary.left_out}
    left = [
        f"{counts[s].groups} {label} ({counts[s].rows:,} rows)"
        for s, label in (("insufficient", "insufficient evidence"), ("private", "private"))
        if s in counts
    ]
    return (
        f"{len(item.groups)} groups; summaries compare {summary.n_groups_compared} reported groups "
        f"({summary.n_rows_compared:,} rows) and leave out {summary.n_rows_left_out:,} rows: "
        + ", ".join(left)
        + "."
    )


def _plotted(group: GroupMetrics) -> GroupMetrics:
    """A group as the plots label it: insufficient evidence is marked on the plot too."""
    if group.status != "insufficient":
        return group
    return group.model_copy(update={"name": f"{group.name} (insufficient)"})


def _summary_rows(item: SliceReport) -> list[list[str]]:
    """Aspect, summary, value, interval, highest and lowest group of each summary present."""
    rows = []
    for aspect, field, label in _SUMMARY_ROWS:
        value: Disparity | None = getattr(item.summary, field)
        if value is not None:
            rows.append(
                [
                    aspect,
                    label,
                    fixed(value.value),
                    interval(value, 3),
                    value.highest or "",
                    value.lowest or "",
                ]
            )
    return rows


# --- plots ----------------------------------------------------------------------------------


def _rates_figure(title: str, groups: list[GroupMetrics]) -> bytes:
    """Forest plot: one panel per rate, groups on the y axis, intervals as error bars."""

    def draw(figure: Figure) -> None:
        axes = figure.subplots(1, len(PLOTTED_RATES), sharey=True)
        for ax, (field, label) in zip(axes, PLOTTED_RATES, strict=True):
            _forest(ax, groups, field)
            ax.set_title(label, fontsize=9)
        axes[0].set_yticks(range(len(groups)), [g.name for g in groups], fontsize=8)
        axes[0].invert_yaxis()
        figure.suptitle(f"Rates by group: {title}", fontsize=10)

    return render_png(draw, (12.0, 1.4 + 0.32 * len(groups)))


def _forest(ax: Axes, groups: list[GroupMetrics], field: str) -> None:
    colours = group_colours(len(groups))
    for y, (group, colour) in enumerate(zip(groups, colours, strict=True)):
        value: Estimate | None = getattr(group, field)
        if value is None or value.value is None:
            continue
        err = [[_below(value)], [_above(value)]]
        ax.errorbar(value.value, y, xerr=err, fmt="o", color=colour, ms=4, capsize=2)
    ax.tick_params(labelsize=7)
    ax.grid(axis="x", alpha=0.3)


def _reliability_figure(title: str, groups: list[GroupMetrics]) -> bytes:
    """Small multiples, one panel per group: mean score against observed rate per bin."""
    n_cols = min(_RELIABILITY_COLUMNS, len(groups))
    n_rows = -(-len(groups) // n_cols)

    def draw(figure: Figure) -> None:
        axes = figure.subplots(n_rows, n_cols, sharex=True, sharey=True, squeeze=False)
        colours = group_colours(len(groups))
        for index, ax in enumerate(axes.flat):
            if index >= len(groups):
                ax.set_axis_off()
                continue
            _reliability_panel(ax, groups[index], colours[index])
        figure.supxlabel("mean score in bin", fontsize=9)
        figure.supylabel("observed positive rate", fontsize=9)
        figure.suptitle(f"Reliability: {title}", fontsize=10)

    return render_png(draw, (2.9 * n_cols + 0.6, 2.7 * n_rows + 0.7))


def _reliability_panel(ax: Axes, group: GroupMetrics, colour: Any) -> None:
    bins = [b for b in group.reliability if b.n > 0]
    xs = [b.mean_score or 0.0 for b in bins]
    ys = [b.observed_rate.value or 0.0 for b in bins]
    errors = [[_below(b.observed_rate) for b in bins], [_above(b.observed_rate) for b in bins]]
    ax.plot([0, 1], [0, 1], color="0.6", lw=1, ls="--")
    ax.errorbar(xs, ys, yerr=errors, marker="o", ms=3, lw=1, capsize=2, color=colour)
    ax.set(xlim=(0, 1), ylim=(0, 1))
    ax.set_title(f"{group.name} (n={group.n:,})", fontsize=8)
    ax.tick_params(labelsize=7)


def _below(value: Estimate) -> float:
    if value.value is None or value.low is None:
        return 0.0
    return max(value.value - value.low, 0.0)


def _above(value: Estimate) -> float:
    if value.value is None or value.high is None:
        return 0.0
    return max(value.high - value.value, 0.0)


def _scores_figure(title: str, groups: list[GroupMetrics], edges: tuple[float, ...]) -> bytes:
    """Score densities per group (histogram counts scaled by group size and bin width)."""

    def draw(figure: Figure) -> None:
        ax = figure.subplots()
        width = edges[1] - edges[0]
        for group, colour in zip(groups, group_colours(len(groups)), strict=True):
            if group.scores is None or group.n == 0:
                continue
            density = [c / (group.n * width) for c in group.scores.histogram_counts]
            ax.stairs(density, edges, color=colour, lw=1.3, label=group.name)
        ax.set(xlim=(0, 1), xlabel="score", ylabel="density")
        ax.set_title(f"Score distribution: {title}", fontsize=10)
        ax.legend(fontsize=7)

    return render_png(draw, (6.5, 4.0))
