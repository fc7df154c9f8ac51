"""Plots as PNG bytes: drawn on a fresh Agg-backed figure, so no pyplot state and no backend switch.

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
