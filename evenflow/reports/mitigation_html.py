"""Write the mitigation trade-off for people and machines: JSON, one plot, one HTML page.

``evenflow.assess.mitigation`` computes the table (one row per method: accuracy, AUC, parity and
error-rate gaps with their intervals, per-group precision and recall); this module only writes it.
The plot is drawn by ``evenflow.reports.figures`` (Agg canvas, no pyplot, no global backend switch)
and ``templates/mitigations.html.j2`` embeds it as base64 PNG, so the page opens offline.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from pydantic import BaseModel, ConfigDict

from evenflow import layout
from evenflow.assess.evaluation import json_safe
from evenflow.assess.mitigation import (
    AUC_DECISIONS_ONLY,
    dpd_column,
    eod_column,
    tradeoff_columns,
)
from evenflow.io import atomic_path, write_json_atomic, write_text_atomic
from evenflow.reports.figures import render_png
from evenflow.reports.render import fixed, render_html

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

logger = logging.getLogger(__name__)

Triple = tuple[float, float, float]


@dataclass(frozen=True)
class PanelPoint:
    """One method in one panel: (value, low, high) of accuracy and of the parity difference."""

    method: str
    accuracy: Triple
    dpd: Triple


def tradeoff_png(panels: Mapping[str, Sequence[PanelPoint]]) -> bytes:
    """Accuracy against demographic parity difference, one panel per sensitive column.

    Error bars are the bootstrap intervals; a method without an interval is drawn without bars.
    """
    n = max(1, len(panels))

    def draw(figure: Figure) -> None:
        axes = figure.subplots(1, n, squeeze=False)[0]
        for ax, (column, points) in zip(axes, panels.items(), strict=False):
            _panel(ax, column, points)
        figure.suptitle("Mitigations: accuracy against demographic parity difference", fontsize=10)

    return render_png(draw, (4.6 * n, 3.8))


def _panel(ax: Axes, column: str, points: Sequence[PanelPoint]) -> None:
    from matplotlib import colormaps  # noqa: PLC0415

    cmap = colormaps["tab10"]
    for index, point in enumerate(points):
        x, y = point.dpd, point.accuracy
        if not (math.isfinite(x[0]) and math.isfinite(y[0])):
            continue
        ax.errorbar(
            x[0],
            y[0],
            xerr=_bar(x),
            yerr=_bar(y),
            fmt="o",
            capsize=3,
            color=cmap(index % cmap.N),
            label=point.method,
        )
        ax.annotate(point.method, (x[0], y[0]), textcoords="offset points", xytext=(5, 5))
    ax.set_xlabel(f"Demographic parity difference ({column})", fontsize=9)
    ax.set_ylabel("Accuracy", fontsize=9)
    ax.grid(alpha=0.3)


def _bar(value: Triple) -> list[list[float]] | None:
    point, low, high = value
    if not (math.isfinite(low) and math.isfinite(high)):
        return None
    return [[max(0.0, point - low)], [max(0.0, high - point)]]


class TradeoffFiles(BaseModel):
    """Where the trade-off table was written."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    json_path: Path
    html_path: Path
    png_path: Path


def write_tradeoff(table: pd.DataFrame, out_dir: Path) -> TradeoffFiles:
    """Write ``mitigations.json``, a self-contained ``mitigations.html`` and the plot, atomically."""
    columns = tradeoff_columns(table)
    notes = tradeoff_notes(table)
    png = tradeoff_png({c: _panel_points(table, c) for c in columns})
    payload = {
        "sensitive": columns,
        "columns": [str(c) for c in table.columns],
        "rows": [json_safe(_plain_keys(r)) for r in table.to_dict(orient="records")],
        "notes": list(notes),
    }
    json_path = write_json_atomic(out_dir / layout.MITIGATIONS_TABLE_FILE, payload)
    png_path = out_dir / layout.MITIGATIONS_PLOT_FILE
    with atomic_path(png_path) as tmp:
        tmp.write_bytes(png)
    sections = [
        ("Summary", *_cells(_summary_display(table, columns))),
        ("Precision and recall by group", *_cells(_groups_display(table))),
    ]
    page = render_html("mitigations.html.j2", notes=notes, png=png, sections=sections)
    html_path = write_text_atomic(out_dir / layout.MITIGATIONS_HTML_FILE, page)
    logger.info("mitigation trade-off written to %s", out_dir)
    return TradeoffFiles(json_path=json_path, html_path=html_path, png_path=png_path)


def tradeoff_notes(table: pd.DataFrame) -> tuple[str, ...]:
    """What a reader needs to interpret the table (shown in the HTML, stored in the JSON)."""
    lines = [
        "Each row is an alternative; none is applied unless configured. Brackets are bootstrap "
        "percentile intervals from the fairness report. DPD: max - min selection rate over the "
        "groups with enough evidence; EOD: the larger of the TPR and FPR gaps.",
        "When base rates differ between groups, parity and error-rate balance cannot in general "
        "both hold: read the gaps together with accuracy, not one number alone.",
        "A dash for a group's precision or recall: the group is private (fewer rows than "
        "fairness.min_cell) or has insufficient evidence (too few positives or negatives) in the "
        "fairness report, or the rate is undefined.",
    ]
    if (table["auc_note"] == AUC_DECISIONS_ONLY).any():
        lines.append(
            f"AUC is blank where decisions come from a decision column ({AUC_DECISIONS_ONLY})."
        )
    return tuple(lines)


def _plain_keys(record: Mapping[Hashable, Any]) -> dict[str, Any]:
    return {str(key): value for key, value in record.items()}


def _cells(display: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    """A display frame as a header and rows of text, for the template's table macro."""
    rows = [[str(v) for v in row] for row in display.itertuples(index=False)]
    return [str(c) for c in display.columns], rows


def _panel_points(table: pd.DataFrame, column: str) -> list[PanelPoint]:
    def triple(row: pd.Series, name: str, low: str, high: str) -> tuple[float, float, float]:
        return float(row[name]), float(row[low]), float(row[high])

    return [
        PanelPoint(
            method=str(row["method"]),
            accuracy=triple(row, "accuracy", "accuracy_low", "accuracy_high"),
            dpd=triple(
                row, dpd_column(column), dpd_column(column, "_low"), dpd_column(column, "_high")
            ),
        )
        for _, row in table.iterrows()
    ]


def _summary_display(table: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """Strings for the summary table: each value with its interval beside it."""
    out = pd.DataFrame(
        {
            "Method": table["method"],
            "Decisions": table["decisions"],
            "n": table["n"],
            "Accuracy": [
                _with_interval(r["accuracy"], r["accuracy_low"], r["accuracy_high"])
                for _, r in table.iterrows()
            ],
            "AUC": [fixed(v) for v in table["auc"]],
        }
    )
    for column in columns:
        for label, name in (("DPD", dpd_column), ("EOD", eod_column)):
            out[f"{label} ({column})"] = [
                _with_interval(r[name(column)], r[name(column, "_low")], r[name(column, "_high")])
                for _, r in table.iterrows()
            ]
    return out


def _groups_display(table: pd.DataFrame) -> pd.DataFrame:
    """Per-group precision and recall: one row per (group, metric), one column per method."""
    rows: dict[str, list[str]] = {}
    for name in table.columns:
        metric, _, group = str(name).partition("[")
        if metric in {"precision", "recall"}:
            rows[f"{group.removesuffix(']')} · {metric}"] = [fixed(v) for v in table[name]]
    display = pd.DataFrame(rows, index=[str(m) for m in table["method"]]).T
    return display.reset_index(names="Group · metric")


def _with_interval(value: Any, low: Any, high: Any) -> str:
    text = fixed(value)
    if math.isfinite(float(low)) and math.isfinite(float(high)):
        text += f" [{float(low):.3f}, {float(high):.3f}]"
    return text
