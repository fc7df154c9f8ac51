"""The review and the promotion ledger as terminal text (rich tables) and as an MLflow description.

Domain code (:mod:`evenflow.govern.review`, :mod:`evenflow.govern.ledger`) returns records; this
module only formats them. The terminal gets aligned rich tables; the version's description in the
MLflow UI gets the same rows as Markdown tables (template ``mlflow_review.md.j2``), which the UI
renders and which never run off the right edge.
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from rich.console import Console, RenderableType
from rich.table import Table
from rich.text import Text

from evenflow import layout
from evenflow.assess.small_groups import PRIVATE, CellStatus
from evenflow.govern.comparison import COUNTS, SPLITS, Comparison, DataChange, GroupComparison
from evenflow.govern.ledger import TRUNCATED, LedgerEntry
from evenflow.govern.review import GateSummary, ReviewSummary, VersionInfo
from evenflow.numbers import finite_int
from evenflow.registry.store import DESCRIPTION_LIMIT
from evenflow.reports.render import render_markdown

PRIVATE_CELL = "private (n only)"
_BLANK_LINES = re.compile(r"\n{3,}")
_STATUS_MARK = {"private": " private", "insufficient": " insufficient evidence"}
# Wide enough that no table or line ever wraps: the text is read and searched as it is.
_WIDTH = 10_000


def render_review(summary: ReviewSummary) -> str:
    """The review as aligned plain text for a terminal (and the MLflow description)."""
    return _export(review_renderables(summary))


def review_renderables(summary: ReviewSummary) -> list[RenderableType]:
    """The review as rich renderables: headline, gate, metric tables, data, card and evidence."""
    champion = summary.champion
    against = f"champion v{champion.version}" if champion else "no champion yet"
    aliases = f" ({', '.join(summary.version.aliases)})" if summary.version.aliases else ""
    parts: list[RenderableType] = [
        Text(f"Review: {summary.model} v{summary.version.version}{aliases} vs {against}"),
        Text(""),
        *map(Text, _gate_lines(summary.gate)),
        Text(""),
        Text("Overall test metrics"),
        _table(
            ["metric", "this version", "champion", "difference"],
            [_metric_row(m, champion is not None) for m in summary.metrics],
        ),
        Text(""),
        Text("Per-group test metrics"),
        _table(
            ["column", "group", "n", "metric", "this version", "champion", "difference"],
            _group_rows(summary),
        ),
        *map(Text, _group_legend(summary)),
        Text(""),
        Text("Data"),
        *_data_parts(summary.data, champion),
        Text(""),
        Text(
            f"Model card: run {summary.model_card.run_id}, artifacts {summary.model_card.html} "
            f"and {summary.model_card.markdown}"
        ),
        Text(f"Evidence sha256: {summary.evidence.sha256} ({len(summary.evidence.files)} files)"),
    ]
    if summary.missing:
        parts.append(Text(f"Missing artifacts: {', '.join(summary.missing)}"))
    return parts


def review_description(
    summary: ReviewSummary, limit: int = DESCRIPTION_LIMIT, *, experiment_id: str | None = None
) -> str:
    """The review as Markdown for the MLflow UI: the terminal's rows as Markdown tables.

    With ``experiment_id`` the evidence is linked (the UI's artifact pages). Per-group rows are
    dropped from the end, counted and pointed to, while the text is longer than ``limit``; what is
    still too long is cut and marked.
    """
    groups = _group_rows(summary)
    shown = len(groups)
    while True:
        text = _review_markdown(summary, groups[:shown], len(groups) - shown, experiment_id)
        if len(text) <= limit or shown == 0:
            break
        shown = max(0, shown - max(1, (len(text) - limit) // 60))
    if len(text) <= limit:
        return text
    return text[: limit - len(TRUNCATED)] + TRUNCATED


def _review_markdown(
    summary: ReviewSummary,
    group_rows: Sequence[Sequence[str]],
    groups_left: int,
    experiment_id: str | None,
) -> str:
    champion = summary.champion
    with_champion = champion is not None
    card = summary.model_card
    links = (
        []
        if experiment_id is None
        else [
            ("Model card (HTML)", layout.artifact_page(experiment_id, card.run_id, card.html)),
            (
                "Model card (Markdown)",
                layout.artifact_page(experiment_id, card.run_id, card.markdown),
            ),
            ("Gate decision", layout.artifact_page(experiment_id, card.run_id, layout.DECISION)),
            (
                "Fairness report",
                layout.artifact_page(experiment_id, card.run_id, layout.FAIRNESS_HTML),
            ),
        ]
    )
    text = render_markdown(
        "mlflow_review.md.j2",
        summary=summary,
        aliases=f" ({', '.join(summary.version.aliases)})" if summary.version.aliases else "",
        against=f"champion v{champion.version}" if champion else "no champion yet",
        gate_headline=_gate_headline(summary.gate),
        split="test",
        metrics=_MarkdownTable(
            ["metric", "this version", "champion", "difference"],
            [_metric_row(m, with_champion) for m in summary.metrics],
        ),
        groups=_MarkdownTable(
            ["column", "group", "n", "metric", "this version", "champion", "difference"],
            group_rows,
        ),
        groups_left=groups_left,
        legend=[line.strip() for line in _group_legend(summary)],
        data=_MarkdownTable(
            ["", "this version", "champion", "change"], _data_rows(summary.data, with_champion)
        ),
        data_notes=_data_notes(summary.data, champion),
        links=links,
    )
    return _BLANK_LINES.sub("\n\n", text).strip()


@dataclass(frozen=True)
class _MarkdownTable:
    """A header and rows of text, as the ``md_table`` macro reads them."""

    header: Sequence[str]
    rows: Sequence[Sequence[str]]


def _gate_headline(gate: GateSummary) -> str:
    if gate.passed is None:
        return f"**Gate: unknown** (tag {gate.tag or 'none'}; `{layout.DECISION}` missing)"
    verdict = "passed" if gate.passed else "FAILED"
    return f"**Gate {verdict}** ({gate.n_clauses} clauses checked; tag `{gate.tag or 'none'}`)"


def render_history(entries: Sequence[LedgerEntry], *, hashes: bool = False) -> str:
    """The ledger as an aligned table, oldest first; ``hashes`` adds each entry's chain hashes.

    Hashes are shortened to 12 characters, as the evidence digest; ``-``: written before the
    hash chain.
    """
    if not entries:
        return "No promotion decisions recorded."
    rows = [
        [
            str(e.seq),
            e.at.strftime("%Y-%m-%d %H:%M:%SZ"),
            e.action,
            e.version,
            e.previous_champion or "-",
            e.reviewer,
            (e.evidence_sha256 or "-")[:12],
            *([(e.prev_sha256 or "-")[:12], (e.sha256 or "-")[:12]] if hashes else []),
            e.override or "-",
            e.note,
        ]
        for e in entries
    ]
    headers = ["seq", "at (UTC)", "action", "version", "previous", "reviewer", "evidence"]
    chain = ["prev sha256", "sha256"] if hashes else []
    return _export([_table([*headers, *chain, "override", "note"], rows)])


def _export(parts: Sequence[RenderableType]) -> str:
    """Print to a recording console and return the plain text, trailing spaces removed."""
    console = Console(
        record=True,
        file=io.StringIO(),
        width=_WIDTH,
        color_system=None,
        markup=False,
        emoji=False,
        highlight=False,
    )
    for part in parts:
        console.print(part, soft_wrap=isinstance(part, Text))
    text = console.export_text(styles=False)
    return "\n".join(line.rstrip() for line in text.splitlines())


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> Table:
    """Left-aligned columns two spaces apart, no borders: reads the same in a file or a terminal."""
    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    for header in headers:
        table.add_column(Text(header), no_wrap=True, overflow="ignore")
    for row in rows:
        table.add_row(*(Text(str(cell)) for cell in row))
    return table


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _est(value: float | None, low: float | None, high: float | None) -> str:
    if low is None or high is None or value is None:
        return _fmt(value)
    return f"{value:.4f} [{low:.4f}, {high:.4f}]"


def _champ(item: Comparison) -> str:
    return _est(item.champion, item.champion_low, item.champion_high)


def _diff(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.4f}"


def _group_rows(summary: ReviewSummary) -> list[list[str]]:
    """Three rows per group; the group's name and size are written on its first row only.

    A private side reads "private (n only)", never a rate; an insufficient side's rates carry
    their intervals and the mark "insufficient evidence" beside its n.
    """
    rows = []
    for group in summary.groups:
        label = [group.column, group.group, _group_size(group, summary.champion is not None)]
        for item in group.metrics:
            ours = _est(item.value, item.low, item.high)
            theirs = _champ(item) if summary.champion else "-"
            if group.status == PRIVATE:
                ours = PRIVATE_CELL
            if summary.champion and group.champion_status == PRIVATE:
                theirs = PRIVATE_CELL
            rows.append([*label, item.name, ours, theirs, _diff(item.difference)])
            label = ["", "", ""]
    return rows


def _group_legend(summary: ReviewSummary) -> list[str]:
    """What the marks mean, when any group carries one."""
    marked = {g.status for g in summary.groups} | {g.champion_status for g in summary.groups}
    lines = []
    if "insufficient" in marked:
        lines.append(
            "  insufficient evidence: too few positives or negatives for a stable rate; shown "
            "with its interval, kept out of summaries and gates"
        )
    if PRIVATE in marked:
        lines.append("  private: fewer rows than the privacy floor; only n is shown")
    return lines


def _group_size(group: GroupComparison, with_champion: bool) -> str:
    """'n (champion n)', marking private and insufficient cells."""

    def one(n: int | None, status: CellStatus | None) -> str:
        return ("n/a" if n is None else f"{n:,}") + _STATUS_MARK.get(status or "", "")

    text = one(group.n, group.status)
    if with_champion:
        text += f" ({one(group.champion_n, group.champion_status)})"
    return text


def _metric_row(item: Comparison, with_champion: bool) -> list[str]:
    if item.name in COUNTS:
        count = [_count(finite_int(v)) for v in (item.value, item.champion, item.difference)]
        if item.difference is not None:
            count[2] = f"{int(item.difference):+,}"
        return [item.name, count[0], count[1] if with_champion else "-", count[2]]
    theirs = _champ(item) if with_champion else "-"
    return [item.name, _est(item.value, item.low, item.high), theirs, _diff(item.difference)]


def _gate_lines(gate: GateSummary) -> list[str]:
    if gate.passed is None:
        return [f"Gate: tag {gate.tag or 'none'}; {layout.DECISION} missing"]
    verdict = "passed" if gate.passed else "FAILED"
    lines = [f"Gate: {verdict} ({gate.n_clauses} clauses checked; tag {gate.tag or 'none'})"]
    lines += [f"  failed: {line}" for line in gate.failed]
    return lines


def _data_parts(data: DataChange, champion: VersionInfo | None) -> list[RenderableType]:
    """Rows per split beside the champion's, then what changed in the features."""
    parts: list[RenderableType] = [
        _table(["", "this version", "champion", "change"], _data_rows(data, champion is not None))
    ]
    notes = _data_notes(data, champion)
    parts += [Text(line if i == 0 else f"  {line}") for i, line in enumerate(notes)]
    return parts


def _data_rows(data: DataChange, with_champion: bool) -> list[list[str]]:
    """The data md5 and rows per split, beside the champion's (``-`` without a champion)."""
    rows = [["data md5", data.data_md5 or "n/a", data.champion_data_md5 or "-", ""]]
    for split in SPLITS:
        ours = data.rows.get(split)
        theirs = None if data.champion_rows is None else data.champion_rows.get(split)
        change = "" if ours is None or theirs is None else f"{ours - theirs:+,}"
        shown = _count(theirs) if with_champion else "-"
        rows.append([f"{split} rows", _count(ours), shown, change])
    return rows


def _data_notes(data: DataChange, champion: VersionInfo | None) -> list[str]:
    """Whether the data is the champion's, then each change in the features (none: no champion)."""
    if champion is None:
        return []
    same = "same data as the champion" if data.same_data else "data differs from the champion"
    changes = [
        ("features added", ", ".join(data.features_added)),
        ("features removed", ", ".join(data.features_removed)),
        ("feature kinds changed", "; ".join(data.kind_changed)),
        ("categories added", _categories(data.categories_added)),
        ("categories removed", _categories(data.categories_removed)),
    ]
    return [same] + [f"{label}: {text}" for label, text in changes if text]


def _count(value: int | None) -> str:
    return "n/a" if value is None else f"{value:,}"


def _categories(diff: Mapping[str, Sequence[str]]) -> str:
    return "; ".join(f"{name}: {', '.join(values)}" for name, values in diff.items())
