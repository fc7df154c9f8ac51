"""One Jinja2 environment for every page evenflow writes: templates, one stylesheet, shared filters.

Pages are self-contained (the stylesheet is inlined, plots are base64 data URIs, no scripts), so
they open offline and can be logged to MLflow as one artifact each. HTML output is escaped with
``html.escape`` (so quotes read ``&#x27;`` as they always have); Markdown output is not escaped,
but table cells go through the ``md`` filter. Undefined names fail loudly (``StrictUndefined``).
"""

from __future__ import annotations

import base64
import html
import math
from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from evenflow.assess.fairness import Estimate
from evenflow.reports.figures import figure_caption

DASH = "–"
_COUNT_LIKE = 1_000  # whole floats this large are counts, shown in full


def render_html(template: str, **context: Any) -> str:
    """Render an HTML template (autoescaped) to a string."""
    return _environment(html=True).get_template(template).render(**context)


def render_markdown(template: str, **context: Any) -> str:
    """Render a Markdown template (not escaped) to a string."""
    return _environment(html=False).get_template(template).render(**context)


@cache
def _environment(*, html: bool) -> Environment:
    env = Environment(
        loader=PackageLoader("evenflow.reports", "templates"),
        autoescape=html,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        finalize=_escaped if html else None,
    )
    env.filters.update(
        num=num,
        fixed=fixed,
        signed=signed,
        count=count,
        interval=interval,
        with_interval=with_interval,
        md=md,
        data_uri=data_uri,
        figure_caption=figure_caption,
    )
    return env


def _escaped(value: Any) -> Any:
    """Escape as ``html.escape`` does; markup built by a template or macro passes through."""
    if hasattr(value, "__html__"):
        return value
    return Markup(html.escape(str(value), quote=True))


# --- filters: numbers for people ------------------------------------------------------------


def num(value: Any) -> str:
    """Ints with separators, floats to four significant digits, None as a dash."""
    if value is None:
        return DASH
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return _float(value)
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _float(value: float) -> str:
    if not math.isfinite(value):
        return DASH
    if value.is_integer() and abs(value) >= _COUNT_LIKE:  # counts stored as floats
        return f"{int(value):,}"
    return f"{value:.4g}"


def fixed(value: Any, digits: int = 3) -> str:
    """A float with a fixed number of decimals; None and NaN as a dash."""
    if value is None:
        return DASH
    number = float(value)
    return DASH if not math.isfinite(number) else f"{number:.{digits}f}"


def signed(value: float | None, digits: int = 4) -> str:
    """A difference with its sign; None as a dash."""
    return DASH if value is None else f"{value:+.{digits}f}"


def count(value: int | None) -> str:
    """A count with separators; None as a dash."""
    return DASH if value is None else f"{value:,}"


def interval(value: Estimate, digits: int | None = None) -> str:
    """``[low, high]``, or empty when either bound is missing; ``digits`` fixes the decimals."""
    if value.low is None or value.high is None:
        return ""
    if digits is None:
        return f"[{num(value.low)}, {num(value.high)}]"
    return f"[{fixed(value.low, digits)}, {fixed(value.high, digits)}]"


def with_interval(value: Estimate | None, digits: int | None = None) -> str:
    """``0.912 [0.905, 0.919]``: the value and its interval; a dash when there is no value."""
    if value is None or value.value is None:
        return DASH
    shown = num(value.value) if digits is None else fixed(value.value, digits)
    return f"{shown} {interval(value, digits)}".strip()


def md(text: Any) -> str:
    """Text safe inside a Markdown table cell or heading: pipes escaped, one line."""
    return " ".join(str(text).replace("|", "\\|").split())


def data_uri(png: bytes) -> str:
    """PNG bytes as a ``data:`` URI, so the page embeds its plots."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")
