"""Short texts about a run for people: the monitoring headline, a run's and a version's description.

The figures come from the records (:class:`~evenflow.govern.monitoring.MonitoringReport`, the
evaluation, the fairness report and the gate decision), gathered into :class:`ReviewFacts`; the
wording lives in the templates ``monitoring_headline.txt.j2``, ``version_description.md.j2`` and
``mlflow_run_description.md.j2`` (Markdown that the MLflow UI renders).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from evenflow.assess.evaluation import HEADLINE_METRICS
from evenflow.assess.fairness import Estimate
from evenflow.govern.gates import GateDecision, describe_failures
from evenflow.govern.ledger import TRUNCATED
from evenflow.govern.monitoring import MonitoringReport
from evenflow.registry.store import DESCRIPTION_LIMIT
from evenflow.registry.surface import Gap
from evenflow.reports.render import render_markdown, signed

_BLANK_LINES = re.compile(r"\n{3,}")


def monitoring_headline(report: MonitoringReport) -> str:
    """One line: within the policy, or how far beyond it the batch is."""
    return render_markdown("monitoring_headline.txt.j2", report=report)


@dataclass(frozen=True)
class Link:
    """A link the MLflow UI follows: a label and a UI-relative address."""

    label: str
    href: str


@dataclass(frozen=True)
class ChampionChange:
    """What changed since the champion: headline metrics side by side, and whether the data did."""

    version: str
    rows: list[list[str]]
    """metric, this version, champion, difference (all as text)."""
    same_data: bool
    data_md5: str


@dataclass(frozen=True)
class ReviewFacts:
    """Everything the run's and the version's descriptions show, gathered from the records."""

    model: str
    run_id: str
    dataset: str
    data_md5: str
    source: str
    rows: Mapping[str, int]
    cross_fitted: bool
    decision: GateDecision
    metrics: Mapping[str, Estimate]
    gaps: list[Gap]
    left_out: int
    confidence_level: float
    links: list[Link]
    version: str | None = None
    candidate: bool = False
    champion: ChampionChange | None = None
    failures: list[str] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "failures", describe_failures(self.decision))

    @property
    def passed(self) -> bool:
        """The gate's verdict."""
        return self.decision.passed

    @property
    def n_clauses(self) -> int:
        """Clauses the gate checked."""
        return len(self.decision.clauses)

    @property
    def evaluation(self) -> str:
        """Which rows the figures come from, in words."""
        return "out-of-fold predictions of every row" if self.cross_fitted else "the test split"

    @property
    def evaluation_title(self) -> str:
        """The figures' heading word."""
        return "Out-of-fold" if self.cross_fitted else "Test"

    @property
    def confidence(self) -> str:
        """The intervals' level, e.g. ``95%`` bootstrap."""
        return f"{self.confidence_level:.0%} bootstrap"


def headline_estimates(metrics: Mapping[str, float]) -> dict[str, Estimate]:
    """The evaluation's headline metrics with their bootstrap bounds, in their usual order."""
    return {
        name: Estimate(
            value=_finite(metrics.get(name)),
            low=_finite(metrics.get(f"{name}_low")),
            high=_finite(metrics.get(f"{name}_high")),
        )
        for name in HEADLINE_METRICS
        if name in metrics
    }


def champion_rows(ours: Mapping[str, Estimate], theirs: Mapping[str, float]) -> list[list[str]]:
    """Headline metrics beside the champion's logged ones (``test_<metric>``), with the difference."""
    rows = []
    for name, estimate in ours.items():
        value = estimate.value
        other = _finite(theirs.get(f"test_{name}"))
        diff = None if value is None or other is None else value - other
        rows.append([name, _text(value), _text(other), signed(diff)])
    return rows


def run_description(facts: ReviewFacts) -> str:
    """A training run's description: verdict, data, metrics, gaps, links (Markdown)."""
    return _tidy(render_markdown("mlflow_run_description.md.j2", facts=facts))


def version_description(facts: ReviewFacts, limit: int = DESCRIPTION_LIMIT) -> str:
    """What a reviewer sees first on the version page: verdict, figures, gaps, champion, links.

    Sections are dropped from the least needed (champion, then gaps) while the text is longer
    than ``limit``; what is still too long is cut and marked.
    """
    for sections in ({"gaps": True, "champion": True}, {"gaps": True, "champion": False}, {}):
        text = _render_version(facts, sections)
        if len(text) <= limit:
            return text
    return text[: limit - len(TRUNCATED)] + TRUNCATED


def _render_version(facts: ReviewFacts, sections: Mapping[str, bool]) -> str:
    full = {"gaps": False, "champion": False, **sections}
    return _tidy(render_markdown("version_description.md.j2", facts=facts, sections=full))


def _tidy(markdown: str) -> str:
    """One blank line between blocks at most, none at either end."""
    return _BLANK_LINES.sub("\n\n", markdown).strip()


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def _text(value: float | None) -> str:
    return "–" if value is None else f"{value:.4f}"
