"""What a model card says, built once as data: sections of text, tables, plots.

The first section is the verdict: whether the gates passed, whether the version is a candidate,
and every gate clause as a table row (limit, observed value with its interval, result); a
contents list follows it. ``model_card.html.j2`` and ``model_card.md.j2`` lay the same sections
out; the only differences are the medium's: the HTML embeds plots and the fairness report's own
tables and plots, the Markdown links plot files by relative path and shows the fairness tables
itself. Every cell here is already text (numbers through ``evenflow.reports.render.num``; a figure
with its interval is a ``FigureCell``), so the templates only arrange.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from markupsafe import Markup

from evenflow import layout
from evenflow.assess.fairness import FairnessReport, SliceReport
from evenflow.govern.gates import GateDecision
from evenflow.reports.card_rows import (
    IMPACT_HEADER,
    CellText,
    clause_detail_rows,
    clause_result,
    data_rows,
    drift_rows,
    excluded_rows,
    gate_table,
    group_importance_table,
    impact_disclosure,
    impact_rows,
    importance_rows,
    is_figure,
    left_out_rows,
    lineage_rows,
    metric_table,
    overview_rows,
    policy_rows,
    proxy_rows,
    rows_left_out,
    slice_group_rows,
    slice_summary_rows,
    tradeoff_table,
    validation_rows,
)
from evenflow.reports.fairness_html import (
    LEFT_OUT_HEADING,
    PLOTTED_RATES,
    fairness_fragment,
    slice_note,
)
from evenflow.reports.figures import figure_caption
from evenflow.reports.render import num

if TYPE_CHECKING:
    from evenflow.reports.model_card import ModelCardInputs

logger = logging.getLogger(__name__)

NOT_PROVIDED = "Not provided."
BASELINE_NOTE = (
    "Baselines are fitted on the model's own training rows and scored on the same rows: the prior "
    "(the training base rate) and an L2-regularised logistic regression."
)
PROXY_NOTE = (
    "Out-of-fold AUC of predicting each sensitive column from the other features "
    "(0.5: no signal). Reported, not a gate."
)
_ITEM_VALUE = ("Item", "Value")
_LEFT_OUT_HEADER = ("Slice", "Group", "Status", "n", "Positives", "Negatives", "Reason")
_ROWS_LEFT_OUT_HEADER = ("Slice", "Rows compared", "Insufficient evidence", "Private")
_EXCLUDED_HEADER = ("Clauses", "Slice", "Group", "Status", "n", "Reason")
_CLAUSE_DETAIL_HEADER = ("Clause", "Result", "Detail")
_PROXY_HEADER = ("Sensitive column", "AUC", "Kind", "Rows", "Classes", "Top features", "Note")
_SUMMARY_HEADER = ("Summary", "Value", "Highest", "Lowest")
VERDICT_HEADING = "Verdict and gate decision"
GATE_DETAILS_HEADING = "Gate details"
IMPACT_HEADING = "Impact ratios"
FAIRNESS_LEGEND = (
    "Rows shaded yellow are groups with insufficient evidence (too few positives or negatives): "
    "shown with their wide intervals, marked, and left out of the summaries and the gate. Grey "
    "rows are private groups: only n is shown. Every group left out is counted in the section "
    "Groups left out of summaries."
)
# The card's titles for the plot files it embeds (the caption follows from the title).
_PLOT_TITLES = {
    layout.SHAP_SUMMARY_PLOT_FILE: "SHAP summary",
    layout.SHAP_BY_GROUP_PLOT_FILE: "Mean |SHAP| by group",
    layout.MITIGATIONS_PLOT_FILE: "Mitigation trade-off",
}

Only = Literal["", "html", "markdown"]
"""Which rendering shows a block: both (``""``), or only the one named."""


@dataclass(frozen=True, kw_only=True)
class _Block:
    """What every block has: the renderings that show it, and its kind for the templates."""

    only: Only = ""

    @property
    def kind(self) -> str:
        """What the templates switch on: the class name in lower case (``text``, ``plot``...)."""
        return type(self).__name__.lower()


@dataclass(frozen=True)
class Text(_Block):
    """A paragraph (blank lines split it); ``strong`` follows in bold."""

    text: str
    strong: str = ""


@dataclass(frozen=True)
class Heading(_Block):
    """A sub-heading inside a section."""

    text: str


@dataclass(frozen=True)
class Verdict(_Block):
    """The outcome at the top of the card: ``passed`` is None when no gate decision was given.

    ``notes`` say why, one paragraph each; ``details`` is the heading of the section that tells
    every clause in words (empty when there is none).
    """

    passed: bool | None
    headline: str
    notes: Sequence[str]
    details: str = ""

    @property
    def details_anchor(self) -> str:
        """The id the link to the details points at."""
        return anchor_of(self.details)

    @property
    def outcome(self) -> str:
        """``passed``, ``failed`` or ``none``: the banner's class in the HTML."""
        return "none" if self.passed is None else ("passed" if self.passed else "failed")


@dataclass(frozen=True)
class Table(_Block):
    """Rows of cells; a ``pairs`` table (key, value) has no header row in HTML.

    ``row_classes`` (one per row, may be empty) colour rows in the HTML: a failed clause, a
    group with insufficient evidence.
    """

    header: Sequence[str]
    rows: Sequence[Sequence[CellText]]
    pairs: bool = False
    row_classes: Sequence[str] = ()

    @property
    def figure_columns(self) -> tuple[bool, ...]:
        """Per column: whether it holds figures (right-aligned), i.e. every filled cell does."""
        columns = range(len(self.header))
        filled = [[str(row[i]) != "" for row in self.rows] for i in columns]
        return tuple(
            not self.pairs
            and any(filled[i])
            and all(
                is_figure(row[i]) for row, full in zip(self.rows, filled[i], strict=True) if full
            )
            for i in columns
        )


@dataclass(frozen=True)
class Plot(_Block):
    """A PNG file: embedded in the HTML (``png`` is None when unreadable), linked in Markdown.

    ``alt`` is the plot's title; ``caption`` says what its axes show.
    """

    name: str
    alt: str
    png: bytes | None
    link: str
    caption: str = ""


@dataclass(frozen=True, kw_only=True)
class Fragment(_Block):
    """Markup made by another page's template (the fairness report), for the HTML only."""

    html: Markup
    only: Only = "html"


Block = Verdict | Text | Heading | Table | Plot | Fragment


@dataclass(frozen=True)
class Section:
    """One ``##`` section of the card."""

    heading: str
    blocks: Sequence[Block]

    @property
    def anchor(self) -> str:
        """The HTML id (and the Markdown anchor GitHub makes for the same heading)."""
        return anchor_of(self.heading)


def anchor_of(heading: str) -> str:
    """A heading's id: lower case, runs of other characters as one dash."""
    text = "".join(c if c.isascii() and c.isalnum() else "-" for c in heading.lower())
    return "-".join(part for part in text.split("-") if part)


@dataclass(frozen=True)
class Card:
    """The whole card: its title, the overview pairs and the sections in order, verdict first."""

    title: str
    overview: Table
    sections: Sequence[Section]


def card_content(inputs: ModelCardInputs, relative_to: Path | None = None) -> Card:
    """Build the card's content; plot links in Markdown are relative to ``relative_to``."""
    version = f" version {inputs.model_version}" if inputs.model_version else ""
    data = inputs.data
    sections = [
        Section(VERDICT_HEADING, _verdict(inputs.gate)),
        Section("Intended use", [Text(inputs.intended_use.strip())]),
        Section("Out-of-scope use", [Text(inputs.out_of_scope_use.strip())]),
        Section(
            "Data",
            [
                Table(_ITEM_VALUE, data_rows(data), pairs=True),
                Heading("Validation"),
                Table(_ITEM_VALUE, validation_rows(data.validation, NOT_PROVIDED), pairs=True),
            ],
        ),
        Section("Metrics", _metrics(inputs)),
        Section("Fairness", _fairness(inputs)),
        Section(IMPACT_HEADING, _impact_ratios(inputs.fairness)),
        Section("Mitigation", _mitigation(inputs, relative_to)),
        Section("Drift", _drift(inputs)),
        Section("Explanations (SHAP)", _shap(inputs, relative_to)),
        Section("Proxy check", _proxy(inputs)),
        Section("Lineage", [Table(_ITEM_VALUE, lineage_rows(inputs.lineage), pairs=True)]),
        Section(LEFT_OUT_HEADING, _left_out(inputs.fairness)),
        Section(GATE_DETAILS_HEADING, _gate_details(inputs.gate)),
    ]
    overview = Table(("", ""), overview_rows(inputs), pairs=True)
    return Card(f"Model card: {inputs.model_name}{version}", overview, sections)


def _metrics(inputs: ModelCardInputs) -> list[Block]:
    if not inputs.metrics:
        return [Text(NOT_PROVIDED)]
    return [Table(*metric_table(inputs.metrics, inputs.baselines)), Text(BASELINE_NOTE)]


def _fairness(inputs: ModelCardInputs) -> list[Block]:
    report = inputs.fairness
    if report is None:
        return [Text(NOT_PROVIDED)]
    page = inputs.fairness_html
    rendered = page.read_text(encoding="utf-8") if page is not None and page.is_file() else None
    fragment = Fragment(html=Markup(fairness_fragment(report, rendered)))
    return [Text(FAIRNESS_LEGEND, only="html"), fragment, *_fairness_tables(report)]


def _fairness_tables(report: FairnessReport) -> list[Block]:
    """The Markdown's fairness tables (the HTML shows the report's own, with plots)."""
    info = report.bootstrap
    blocks: list[Block] = [
        Text(
            f"{report.n_rows:,} rows; threshold {num(report.params.threshold)}; "
            f"{info.confidence_level:.0%} percentile bootstrap intervals from {info.replicates:,} "
            f"replicates (seed {info.seed}). Differences are max minus min over reported groups: "
            f"a group under {report.params.min_cell} rows is private (only n), one with fewer "
            f"than {report.params.min_positives} positives or {report.params.min_negatives} "
            "negatives is marked insufficient evidence and left out.",
            only="markdown",
        )
    ]
    for item in report.slices:
        blocks += _slice_tables(item)
    blocks.append(
        Text(
            "Plots of rates, reliability and scores by group are in the HTML card.", only="markdown"
        )
    )
    return blocks


def _slice_tables(item: SliceReport) -> list[Block]:
    blocks: list[Block] = [
        Heading(item.name, only="markdown"),
        Text(slice_note(item), only="markdown"),
    ]
    if item.summary.note:
        blocks.append(Text(f"Summaries: {item.summary.note}.", only="markdown"))
    else:
        blocks.append(Table(_SUMMARY_HEADER, slice_summary_rows(item), only="markdown"))
    header = ("Group", "n", "Positives", "Negatives", *(label for _, label in PLOTTED_RATES))
    classes = [g.status if g.status != "reported" else "" for g in item.groups]
    blocks.append(Table(header, slice_group_rows(item), only="markdown", row_classes=classes))
    return blocks


def _impact_ratios(report: FairnessReport | None) -> list[Block]:
    """The bias-audit tables (NYC Local Law 144): one per sensitive column and intersection."""
    tables = None if report is None else report.impact_ratios
    if tables is None:
        return [Text(NOT_PROVIDED)]
    limit = num(tables.settings.four_fifths)
    blocks: list[Block] = [
        Text(
            f"Selection rate: the share selected ({tables.selection_rule}); scoring rate: the "
            f"share scored above the median score of all rows ({num(tables.median_score)}). "
            "Impact ratio: a category's rate divided by the highest category's rate, with a "
            f"{tables.confidence_level:.0%} percentile bootstrap interval from "
            f"{tables.replicates:,} replicates. Flag: below four-fifths when the whole interval "
            f"lies under {limit}, insufficient evidence when it straddles {limit} (or the "
            f"category has too few labels), ok when it lies at or above {limit}. A private "
            "category shows only its n."
        ),
    ]
    for table in tables.slices:
        classes = [c.status if c.status != "reported" else "" for c in table.categories]
        blocks += [
            Heading(table.name),
            Text(impact_disclosure(table, tables)),
            Table(IMPACT_HEADER, impact_rows(table), row_classes=classes),
        ]
    return blocks


def _mitigation(inputs: ModelCardInputs, relative_to: Path | None) -> list[Block]:
    blocks: list[Block] = [Text(f"Chosen: {inputs.mitigation}")]
    if inputs.tradeoff:
        blocks.append(Heading("Trade-off of the mitigations compared"))
        blocks.append(Table(*tradeoff_table(inputs.tradeoff)))
    else:
        blocks.append(Text("Trade-off table: " + NOT_PROVIDED))
    if inputs.tradeoff_plot is not None:
        blocks.append(_plot(inputs.tradeoff_plot, relative_to))
    return blocks


def _drift(inputs: ModelCardInputs) -> list[Block]:
    if inputs.drift is None:
        return [Text(NOT_PROVIDED)]
    return [Table(_ITEM_VALUE, drift_rows(inputs.drift), pairs=True)]


def _shap(inputs: ModelCardInputs, relative_to: Path | None) -> list[Block]:
    explanations = inputs.explanations
    if explanations is None:
        return [Text(NOT_PROVIDED)]
    summary = explanations.summary
    return [
        Text(
            f"Mean |SHAP| over {summary.n_rows:,} test rows, in {summary.units}; "
            f"base margin {num(summary.expected_margin)}."
        ),
        Heading("Global importance"),
        Table(("Feature", "Mean |SHAP|"), importance_rows(explanations)),
        Heading("Mean |SHAP| by group (top features)"),
        Table(*group_importance_table(explanations)),
        *(_plot(path, relative_to) for path in inputs.shap_plots),
    ]


def _proxy(inputs: ModelCardInputs) -> list[Block]:
    explanations = inputs.explanations
    if explanations is None or not explanations.proxies:
        return [Text(NOT_PROVIDED)]
    return [Text(PROXY_NOTE), Table(_PROXY_HEADER, proxy_rows(explanations))]


def _left_out(report: FairnessReport | None) -> list[Block]:
    if report is None:
        return [Text(NOT_PROVIDED)]
    counts = Table(_ROWS_LEFT_OUT_HEADER, rows_left_out(report))
    if not report.left_out:
        return [counts, Text("No group left out.")]
    classes = [c.status for c in report.left_out]
    return [counts, Table(_LEFT_OUT_HEADER, left_out_rows(report), row_classes=classes)]


def _verdict(decision: GateDecision | None) -> list[Block]:
    """The outcome in one line, why, and every clause as a row: what a reviewer reads first."""
    if decision is None:
        text = "No gate decision was recorded with this card, so the version is not a candidate."
        return [Verdict(None, "No gate decision: not a candidate", [text])]
    clauses = decision.clauses
    skipped = [c for c in clauses if c.skipped]
    if decision.passed:
        headline = "Gates passed: candidate"
        outcome = (
            f"All {len(clauses)} gate clauses passed; the version was registered with the "
            "candidate alias and waits for a person's review before it can become champion."
        )
    else:
        headline = "Gates failed: not a candidate"
        outcome = (
            f"{len(decision.failed)} of {len(clauses)} gate clauses failed "
            f"({', '.join(c.name for c in decision.failed)}); the version was registered "
            "without the candidate alias and can be promoted only with a written override."
        )
    notes = [outcome]
    if skipped:
        names = "; ".join(f"{c.name} ({c.detail})" for c in skipped)
        notes.append(f"Skipped, not evaluable here (they count as passed): {names}.")
    if decision.excluded:
        notes.append(
            f"{_excluded_counts(decision)} left out of the clauses under the rule for small groups."
        )
    header, rows = gate_table(clauses)
    classes = [clause_result(c) for c in clauses]
    return [
        Verdict(decision.passed, headline, notes, details=GATE_DETAILS_HEADING),
        Table(header, rows, row_classes=classes),
    ]


def _excluded_counts(decision: GateDecision) -> str:
    """``2 groups (1 private, 1 insufficient evidence) were``: the groups a gate left out."""
    labels = {"private": "private", "insufficient": "insufficient evidence"}
    counts = {s: sum(e.status == s for e in decision.excluded) for s in labels}
    parts = ", ".join(f"{n} {labels[s]}" for s, n in counts.items() if n)
    n = len(decision.excluded)
    return f"{n} group{'s' if n != 1 else ''} ({parts}) {'were' if n != 1 else 'was'}"


def _gate_details(decision: GateDecision | None) -> list[Block]:
    """Each clause in words, the groups the gate left out and every policy setting it used."""
    if decision is None:
        return [Text(NOT_PROVIDED)]
    excluded: Block = (
        Table(
            _EXCLUDED_HEADER,
            excluded_rows(decision),
            row_classes=[e.status for e in decision.excluded],
        )
        if decision.excluded
        else Text("None.")
    )
    return [
        Heading("Clauses in words"),
        Table(
            _CLAUSE_DETAIL_HEADER,
            clause_detail_rows(decision.clauses),
            row_classes=[clause_result(c) for c in decision.clauses],
        ),
        Heading("Groups the gate left out"),
        excluded,
        Heading("Policy"),
        Table(("Setting", "Value"), policy_rows(decision), pairs=True),
    ]


def _plot(path: Path, relative_to: Path | None) -> Plot:
    target = path
    if relative_to is not None:
        target = Path(os.path.relpath(path.resolve(), relative_to.resolve()))
    try:
        png: bytes | None = path.read_bytes()
    except OSError as exc:
        logger.warning("plot %s not embedded: %s", path, exc)
        png = None
    title = _PLOT_TITLES.get(path.name, path.stem.replace("_", " "))
    return Plot(
        name=path.name, alt=title, png=png, link=target.as_posix(), caption=figure_caption(title)
    )
