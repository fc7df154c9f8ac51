"""Render the mitigation trade-off for people: one self-contained HTML page with one plot.

Kept apart from ``evenflow.assess.mitigation`` so that module stays about numbers; this one only draws
and lays out tables it is given. The plot uses matplotlib's Agg canvas on a fresh ``Figure`` (no
pyplot, no global backend switch) and is embedded as base64 PNG, so the page opens offline.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from matplotlib.axes import Axes

Triple = tuple[float, float, float]

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem;color:#1f2328;max-width:1200px}
h1{font-size:1.6rem}h2{font-size:1.25rem;margin-top:2.2rem;border-bottom:1px solid #d0d7de}
table{border-collapse:collapse;margin:.6rem 0 1rem;font-size:.85rem}
th,td{border:1px solid #d0d7de;padding:.25rem .5rem;text-align:right;white-space:nowrap}
th{background:#f6f8fa}td:first-child,th:first-child{text-align:left}
.note{color:#57606a;font-size:.9rem;max-width:70rem}
img{max-width:100%;display:block;margin:.5rem 0 1.2rem}
"""


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
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: PLC0415
    from matplotlib.figure import Figure  # noqa: PLC0415

    n = max(1, len(panels))
    figure = Figure(figsize=(4.6 * n, 3.8), dpi=90, layout="constrained")
    FigureCanvasAgg(figure)  # the Agg backend, for this figure only
    axes = figure.subplots(1, n, squeeze=False)[0]
    for ax, (column, points) in zip(axes, panels.items(), strict=False):
        _panel(ax, column, points)
    figure.suptitle("Mitigations: accuracy against demographic parity difference", fontsize=10)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


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


def render_tradeoff_html(
    sections: Sequence[tuple[str, pd.DataFrame]], png: bytes, notes: Sequence[str]
) -> str:
    """One HTML document: the notes, the plot and each (heading, table of strings) section."""
    image = base64.b64encode(png).decode("ascii")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8"><title>Mitigation trade-offs</title>',
        f"<style>{_CSS}</style></head><body>",
        "<h1>Mitigation trade-offs</h1>",
        *(f'<p class="note">{html.escape(line)}</p>' for line in notes),
        f'<img alt="accuracy against demographic parity difference" '
        f'src="data:image/png;base64,{image}">',
    ]
    for heading, table in sections:
        parts.extend([f"<h2>{html.escape(heading)}</h2>", _table(table)])
    parts.append("</body></html>")
    return "\n".join(parts)


def _table(table: pd.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in table.columns)
    rows = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>"
        for row in table.itertuples(index=False)
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"
