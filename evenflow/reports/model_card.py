"""Model card: one self-contained HTML page and a Markdown twin for each registered version.

The card reports and does not judge. It opens with what a reviewer decides on: the verdict
(gates passed or failed, candidate or not) and every gate clause as a table row (limit, observed
value with its interval, result), then a contents list. Then what the model is for, the data it
saw, its metrics with intervals, fairness tables side by side, the mitigation chosen and what the
alternatives cost, drift, SHAP importance, the proxy check, the lineage that rebuilds it, the
groups left out of summaries under the one rule for small groups (private: only n; insufficient
evidence: shown, marked), and the gate's details. A section whose input was not given says so
instead of disappearing.

This module holds what a card is made from (``ModelCardInputs``); ``card_content`` turns it into
sections once, and ``model_card.html.j2`` / ``model_card.md.j2`` lay them out. The HTML embeds its
plots as base64 PNG, each captioned, wraps every table so a wide one scrolls, and links nothing
outside itself, so it opens offline and can be logged to MLflow as one artifact. The Markdown
refers to plot files by relative path.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator

from evenflow import layout
from evenflow.assess.explain import Explanations
from evenflow.assess.fairness import Estimate, FairnessReport
from evenflow.govern.gates import GateDecision
from evenflow.io import write_text_atomic
from evenflow.records import ValidationReport
from evenflow.reports.card_content import (
    GATE_DETAILS_HEADING,
    IMPACT_HEADING,
    NOT_PROVIDED,
    VERDICT_HEADING,
    card_content,
)
from evenflow.reports.fairness_html import LEFT_OUT_HEADING
from evenflow.reports.render import render_html, render_markdown

if TYPE_CHECKING:
    from evenflow.assess.drift import DriftSummary

logger = logging.getLogger(__name__)

__all__ = [
    "HTML_NAME",
    "MARKDOWN_NAME",
    "NOT_PROVIDED",
    "SECTIONS",
    "Cell",
    "DataSummary",
    "DriftOverview",
    "Lineage",
    "ModelCardInputs",
    "render_model_card",
    "write_model_card",
]

HTML_NAME = layout.CARD_HTML_FILE
MARKDOWN_NAME = layout.CARD_MARKDOWN_FILE

SECTIONS = (
    VERDICT_HEADING,
    "Intended use",
    "Out-of-scope use",
    "Data",
    "Metrics",
    "Fairness",
    IMPACT_HEADING,
    "Mitigation",
    "Drift",
    "Explanations (SHAP)",
    "Proxy check",
    "Lineage",
    LEFT_OUT_HEADING,
    GATE_DETAILS_HEADING,
)
"""The card's sections in order: the verdict first, then each one the contents list links to."""

Cell = str | int | float | bool | None


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DataSummary(_Record):
    """The data a model was trained and tested on."""

    dataset: str
    data_md5: str = Field(description="DVC hash of the shard directory.")
    rows: dict[str, int] = Field(description="Split (or fold) -> rows.")
    evaluation: str | None = Field(
        default=None,
        description="How the figures were obtained: a held-out test split or cross-fitting, and why.",
    )
    validation: ValidationReport | None = None


class DriftOverview(_Record):
    """The drift figures a card shows (the full report is logged beside it)."""

    drifted_count: int
    n_columns: int
    drifted_share: float
    drift_share_threshold: float
    dataset_drift: bool
    drifted_columns: tuple[str, ...]

    @classmethod
    def from_summary(cls, summary: DriftSummary) -> DriftOverview:
        """Take the card's figures from an ``evenflow.assess.drift.DriftSummary``.

        Every field but ``n_columns`` has the summary's name; ``n_columns`` counts its columns.
        """
        copied = {name: getattr(summary, name) for name in cls.model_fields if name != "n_columns"}
        return cls(n_columns=len(summary.columns), **copied)


class Lineage(_Record):
    """What rebuilds the model: data hash, code commit, parameters, environment, flow run."""

    data_md5: str
    git_commit: str
    git_dirty: bool
    params_hash: str
    env_hash: str
    flow_run_id: str

    @classmethod
    def from_tags(cls, tags: Mapping[str, str]) -> Lineage:
        """Read the ``evenflow.*`` lineage tags of a run (see ``evenflow.govern.lineage``)."""
        return cls(
            data_md5=tags[layout.DATA_MD5_TAG],
            git_commit=tags[layout.GIT_COMMIT_TAG],
            git_dirty=tags[layout.GIT_DIRTY_TAG].lower() == "true",
            params_hash=tags[layout.PARAMS_HASH_TAG],
            env_hash=tags[layout.ENV_HASH_TAG],
            flow_run_id=tags[layout.FLOW_RUN_ID_TAG],
        )


class ModelCardInputs(_Record):
    """Everything a model card shows; optional parts render as 'Not provided.'."""

    model_name: str
    model_version: str | None = None
    run_id: str | None = None
    intended_use: str = Field(description="From configuration.")
    out_of_scope_use: str = Field(description="From configuration.")
    data: DataSummary
    metrics: dict[str, Estimate] = Field(
        description="Overall test metrics; headline metrics with their bootstrap intervals."
    )
    baselines: dict[str, dict[str, Estimate]] = Field(
        default_factory=dict,
        description="Baseline name (prior, logistic) -> its headline metrics on the same rows.",
    )
    threshold: float | None = Field(default=None, description="Score cut for a positive.")
    fairness: FairnessReport | None = None
    fairness_html: Path | None = Field(
        default=None, description="The report's HTML page already rendered (saves redrawing)."
    )
    mitigation: str = Field(default="none", description="The mitigation chosen in configuration.")
    tradeoff: tuple[dict[str, Cell], ...] | None = Field(
        default=None, description="Trade-off table of the mitigations compared, one row each."
    )
    tradeoff_plot: Path | None = None
    drift: DriftOverview | None = None
    explanations: Explanations | None = None
    shap_plots: tuple[Path, ...] = Field(default=(), description="PNG files to embed.")
    lineage: Lineage
    gate: GateDecision | None = None

    @field_validator("metrics", mode="before")
    @classmethod
    def _plain_numbers_are_estimates(cls, value: Any) -> Any:
        if isinstance(value, Mapping):
            return {k: _as_estimate(v) for k, v in value.items()}
        return value

    @field_validator("tradeoff", mode="before")
    @classmethod
    def _frame_to_records(cls, value: Any) -> Any:
        if isinstance(value, pd.DataFrame):
            value = value.to_dict(orient="records")
        if isinstance(value, Iterable) and not isinstance(value, str | bytes | Mapping):
            return tuple({str(k): _cell(v) for k, v in dict(row).items()} for row in value)
        return value


def _as_estimate(value: Any) -> Any:
    if isinstance(value, Estimate | Mapping):
        return value
    number = float(value)
    return Estimate(value=number if math.isfinite(number) else None)


def _cell(value: Any) -> Cell:
    """A table cell as a JSON-safe scalar: numpy unboxed, NaN and NA as None."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or value is pd.NA:
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, str | int | float | bool):
        return value
    return str(value)


def render_model_card(inputs: ModelCardInputs, relative_to: Path | None = None) -> tuple[str, str]:
    """Render the card as (self-contained HTML, Markdown).

    Args:
        inputs: What the card shows.
        relative_to: Folder the Markdown will live in; plot paths are written relative to it.

    Returns:
        The HTML document and the Markdown document.
    """
    card = card_content(inputs, relative_to)
    return render_html("model_card.html.j2", card=card), render_markdown(
        "model_card.md.j2", card=card
    )


def write_model_card(inputs: ModelCardInputs, out_dir: Path) -> tuple[Path, Path]:
    """Write ``model_card.html`` and ``model_card.md`` atomically into ``out_dir``."""
    page, markdown = render_model_card(inputs, relative_to=out_dir)
    html_path = write_text_atomic(out_dir / HTML_NAME, page)
    md_path = write_text_atomic(out_dir / MARKDOWN_NAME, markdown)
    logger.info("model card written to %s", out_dir)
    return html_path, md_path
