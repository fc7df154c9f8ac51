"""What a model card says, built once as data: sections of text, tables, plots.

``model_card.html.j2`` and ``model_card.md.j2`` lay the same sections out; the only differences
are the medium's: the HTML embeds plots and the fairness report's own tables and plots, the
Markdown links plot files by relative path and shows the fairness tables itself. Every cell here
is already text (numbers through ``evenflow.reports.render.num``), so the templates only arrange.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from markupsafe import Markup

from evenflow.assess.fairness import FairnessReport, SliceReport
from evenflow.govern.gates import GateDecision
from evenflow.reports.card_rows import (
    clause_rows,
    data_rows,
    drift_rows,
    excluded_rows,
    group_importance_table,
    importance_rows,
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
_CLAUSE_HEADER = ("Clause", "Result", "Point", "Bound", "Compared", "Limit", "Detail")
_PROXY_HEADER = ("Sensitive column", "AUC", "Kind", "Rows", "Classes", "Top features", "Note")
_SUMMARY_HEADER = ("Summary", "Value", "Interval", "Highest", "Lowest")

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
class Table(_Block):
    """Rows of text cells; a ``pairs`` table (key, value) has no header row in HTML."""

    header: Sequence[str]
    rows: Sequence[Sequence[str]]
    pairs: bool = False


@dataclass(frozen=True)
class Plot(_Block):
    """A PNG file: embedded in the HTML (``png`` is None when unreadable), linked in Markdown."""

    name: str
    alt: str
    png: bytes | None
    link: str


@dataclass(frozen=True, kw_only=True)
class Fragment(_Block):
    """Markup made by another page's template (the fairness report), for the HTML only."""

    html: Markup
    only: Only = "html"


Block = Text | Heading | Table | Plot | Fragment


@dataclass(frozen=True)
class Section:
    """One ``##`` section of the card."""

    heading: str
    blocks: Sequence[Block]

    @property
    def anchor(self) -> str:
        """The HTML id: lower case, runs of other characters as one dash."""
        text = "".join(c if c.isascii() and c.isalnum() else "-" for c in self.heading.lower())
        return "-".join(part for part in text.split("-") if part)


@dataclass(frozen=True)
class Card:
    """The whole card: its title, the overview table and the sections in order."""

    title: str
    overview: Table
    sections: Sequence[Section]


def card_content(inputs: ModelCardInputs, relative_to: Path | None = None) -> Card:
    """Build the card's content; plot links in Markdown are relative to ``relative_to``."""
    version = f" version {inputs.model_version}" if inputs.model_version else ""
    data = inputs.data
    sections = [
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
        Section("Mitigation", _mitigation(inputs, relative_to)),
        Section("Drift", _drift(inputs)),
        Section("Explanations (SHAP)", _shap(inputs, relative_to)),
        Section("Proxy check", _proxy(inputs)),
        Section("Lineage", [Table(_ITEM_VALUE, lineage_rows(inputs.lineage), pairs=True)]),
        Section(LEFT_OUT_HEADING, _left_out(inputs.fairness)),
        Section("Gate decision", _gate(inputs.gate)),
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
    return [fragment, *_fairness_tables(report)]


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
    blocks.append(Table(header, slice_group_rows(item), only="markdown"))
    return blocks


def _mitigation(inputs: ModelCardInputs, relative_to: Path | None) -> list[Block]:
    blocks: list[Block] = [Text(f"Chosen: {inputs.mitigation}")]
    if inputs.tradeoff:
        blocks.append(Heading("Trade-off of the mitigations compared"))
        blocks.append(Table(*tradeoff_table(inputs.tradeoff)))
    else:
        blocks.append(Text("Trade-off table: " + NOT_PROVIDED))
    if inputs.tradeoff_plot is not None:
        blocks.append(_plot(inputs.tradeoff_plot, "Mitigation trade-off", relative_to))
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
        *(_plot(path, path.stem.replace("_", " "), relative_to) for path in inputs.shap_plots),
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
    return [counts, Table(_LEFT_OUT_HEADER, left_out_rows(report))]


def _gate(decision: GateDecision | None) -> list[Block]:
    if decision is None:
        return [Text(NOT_PROVIDED)]
    outcome = "PASSED" if decision.passed else f"FAILED ({len(decision.failed)} clauses)"
    excluded: Block = (
        Table(_EXCLUDED_HEADER, excluded_rows(decision)) if decision.excluded else Text("None.")
    )
    return [
        Text("Outcome: ", strong=outcome),
        Table(_CLAUSE_HEADER, clause_rows(decision.clauses)),
        Heading("Groups the gate left out"),
        excluded,
        Heading("Policy"),
        Table(("Setting", "Value"), policy_rows(decision), pairs=True),
    ]


def _plot(path: Path, alt: str, relative_to: Path | None) -> Plot:
    target = path
    if relative_to is not None:
        target = Path(os.path.relpath(path.resolve(), relative_to.resolve()))
    try:
        png: bytes | None = path.read_bytes()
    except OSError as exc:
        logger.warning("plot %s not embedded: %s", path, exc)
        png = None
    return Plot(name=path.name, alt=alt, png=png, link=target.as_posix())
