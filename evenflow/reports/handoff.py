"""Terminal text of a handoff check: PASS/FAIL per expectation, the data diff, the verdict.

The same text goes to the terminal and to ``handoff.txt``, so it is rendered without colour and
without wrapping; data teams' CI scripts read its lines (``PASS  ...``/``FAIL  ...`` and the last
line's verdict).
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence

from rich.console import Console, RenderableType
from rich.table import Table
from rich.text import Text

from evenflow.assess.handoff import ExpectationCheck, HandoffReport
from evenflow.assess.profile_diff import DataDiff, DiffItem, DiffValue

# Numbers at least this large are shown in full (with separators) rather than in 4 digits.
_PLAIN_BELOW = 1e4
# Values quoted in one line.
_MAX_SHOWN = 8
# Wide enough that no line wraps: what is read line by line must stay on its line.
_WIDTH = 10_000

_CHANGE_LABELS: dict[str, str] = {
    "missing_column": "missing from the candidate",
    "new_column": "new in the candidate",
    "type_changed": "type changed",
    "min_below_range": "minimum below the reference range",
    "max_above_range": "maximum above the reference range",
    "mean_shift": "mean shifted",
    "null_fraction": "null fraction changed",
    "categories_added": "categories added:",
    "categories_removed": "categories removed:",
    "cardinality": "category set no longer comparable",
}


def render_handoff(report: HandoffReport) -> str:
    """One PASS/FAIL line per expectation, the Data Docs path, the diff, then the verdict."""
    validation = report.validation
    parts: list[RenderableType] = [
        Text(
            f"Checking {report.path} against suite '{validation.suite_name}' "
            f"({validation.n_rows:,} rows, md5 {report.md5})"
        ),
        _checks_table(report.checks),
        Text(f"Data Docs: {validation.docs_path or 'not built'}"),
        Text(""),
        *(_diff_parts(report.diff) if report.diff is not None else [Text("Data diff: none.")]),
        Text(f"  ({report.diff_note})"),
    ]
    if report.schema_failures:
        parts.append(Text("Schema changes counted as failures:"))
        parts.append(_bullets(report.schema_failures))
    failed = sum(not check.passed for check in report.checks)
    verdict = "PASSED" if report.passed else "FAILED"
    parts += [Text(""), Text(f"{verdict}: {failed} of {len(report.checks)} expectations failed")]
    return _text(parts)


def render_diff(diff: DataDiff) -> str:
    """A headline, then one line per change."""
    return _text(_diff_parts(diff))


def describe_change(item: DiffItem) -> str:
    """One line: column, what changed, reference and candidate values."""
    what = _CHANGE_LABELS[item.change]
    if item.values:
        what = f"{what} {quoted(item.values)}"
    unit = f" {item.unit}" if item.unit else ""
    line = (
        f"column '{item.column}': {what} (reference {_number(item.reference)}{unit}, "
        f"candidate {_number(item.candidate)}{unit})"
    )
    return f"{line}; {item.note}" if item.note else line


def quoted(values: Sequence[str]) -> str:
    """The first few values, quoted, and how many more there are."""
    shown = ", ".join(repr(value) for value in values[:_MAX_SHOWN])
    return shown + (f" and {len(values) - _MAX_SHOWN} more" if len(values) > _MAX_SHOWN else "")


def _diff_parts(diff: DataDiff) -> list[RenderableType]:
    sizes = f"reference {diff.reference_rows:,} rows profiled, candidate {diff.candidate_rows:,}"
    if diff.is_empty:
        return [Text(f"Data diff: no schema or statistics changes ({sizes}).")]
    return [Text(f"Data diff: {len(diff.items)} change(s) ({sizes}):"), _bullets(diff.items)]


def _checks_table(checks: Sequence[ExpectationCheck]) -> Table:
    """``PASS``/``FAIL``, then the expectation, its column and what was observed."""
    table = _grid(gap=2)
    for check in checks:
        where = f" [{check.column}]" if check.column else ""
        status = "PASS" if check.passed else "FAIL"
        table.add_row(Text(status), Text(f"{check.expectation}{where}: {check.observed}"))
    return table


def _bullets(items: Sequence[DiffItem]) -> Table:
    """One ``  - change`` line per item."""
    table = _grid(gap=1)
    for item in items:
        table.add_row(Text("  -"), Text(describe_change(item)))
    return table


def _grid(*, gap: int) -> Table:
    """Two columns, no borders or header, ``gap`` spaces between them (lines stay greppable)."""
    table = Table(
        box=None, show_header=False, show_edge=False, pad_edge=False, padding=(0, 0, 0, gap)
    )
    table.add_column(no_wrap=True)
    table.add_column(no_wrap=True)
    return table


def _number(value: DiffValue) -> str:
    if value is None:
        return "none"
    if isinstance(value, float) and math.isfinite(value):
        if value.is_integer():
            return f"{int(value):,}"
        return f"{value:,.1f}" if abs(value) >= _PLAIN_BELOW else f"{value:.4g}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _text(parts: Sequence[RenderableType]) -> str:
    """Plain text of the parts, one after the other: no colour, no wrapping, no trailing blanks."""
    console = Console(
        file=io.StringIO(), width=_WIDTH, color_system=None, highlight=False, emoji=False
    )
    with console.capture() as captured:
        for part in parts:
            console.print(part, soft_wrap=isinstance(part, Text))
    return "\n".join(line.rstrip() for line in captured.get().splitlines())
