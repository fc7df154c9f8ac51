"""Plots as PNG bytes: drawn on a fresh Agg-backed figure, so no pyplot state and no backend switch.

Each kind of plot evenflow draws also has, here, the sentence that says what its axes are
(``figure_caption``), so a page captions a plot by its title without redrawing or re-wording it.
matplotlib is imported inside the functions: importing a report module costs nothing and selects
no backend.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure

_TAB10 = 10

# What each kind of plot shows, by the start of its title (the title is the plot's alt text).
_CAPTIONS = (
    (
        "Rates by group",
        "One panel per rate (selection rate, TPR, FPR, precision, ECE, base rate): the rate on "
        "the x axis, one group per row on the y axis, bars are bootstrap intervals. Groups "
        "marked (insufficient) are shown but left out of summaries and gates; private groups "
        "are not plotted.",
    ),
    (
        "Reliability",
        "One panel per group: mean score in each bin (x) against the observed positive rate "
        "(y), bars are bootstrap intervals; the dashed diagonal is perfect calibration.",
    ),
    (
        "Score distribution",
        "Density of the model's score (x, 0 to 1) for each group (y: density, so groups of "
        "different sizes compare).",
    ),
    (
        "SHAP summary",
        "One row per top feature; each dot is a test row placed by its SHAP value (x, margin "
        "units: right raises the score), coloured by the feature's value (blue low, red high, "
        "grey missing).",
    ),
    (
        "Mean |SHAP| by group",
        "One panel per sensitive column: mean |SHAP| (x) of the top features (y), one bar per "
        "group.",
    ),
    (
        "Mitigation",
        "One panel per sensitive column: demographic parity difference (x) against accuracy "
        "(y) for each mitigation compared, bars are bootstrap intervals.",
    ),
)


def figure_caption(title: str) -> str:
    """What the axes of a plot with this title show; empty for a title of no known kind."""
    return next((text for start, text in _CAPTIONS if title.startswith(start)), "")


def render_png(
    draw: Callable[[Figure], None], size: tuple[float, float], *, dpi: int = 90
) -> bytes:
    """Let ``draw`` fill a new figure of ``size`` inches and return it as PNG bytes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: PLC0415
    from matplotlib.figure import Figure  # noqa: PLC0415

    figure = Figure(figsize=size, dpi=dpi, layout="constrained")
    FigureCanvasAgg(figure)  # the Agg backend, for this figure only
    draw(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def group_colours(n: int) -> list[Any]:
    """One colour per group: tab10 up to ten groups, tab20 (repeating) beyond."""
    from matplotlib import colormaps  # noqa: PLC0415

    cmap = colormaps["tab10" if n <= _TAB10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]
