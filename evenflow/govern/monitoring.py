"""The monitoring report: a batch's drift, and its performance beside the model's own evaluation.

With labels, performance and fairness on the batch are compared with the figures the monitored
version logged with its evaluation. Records and pure comparisons only: reading that evaluation
from MLflow and scoring the batch are the use case's (:mod:`evenflow.usecases.monitor`).
Per-group figures follow the one rule for small groups, as in review
(:mod:`evenflow.govern.comparison`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import Field

from evenflow.assess.fairness import FairnessReport
from evenflow.assess.monitoring import DriftResult
from evenflow.assess.small_groups import PRIVATE
from evenflow.config.fairness import FairnessParams
from evenflow.config.monitor import DriftPolicy
from evenflow.govern.comparison import (
    Comparison,
    GroupComparison,
    group_row,
    group_status,
    paired_groups,
)
from evenflow.numbers import finite_number
from evenflow.records import FeatureSpec, RawBatch, Record, ValidationReport

# Per-group metrics compared with the champion's groups.json.
GROUP_DELTA_METRICS = ("roc_auc", "accuracy", "tpr", "fpr", "precision", "selection_rate")
# Between-group summaries compared with the champion's fairness report.
FAIRNESS_SUMMARIES = (
    "demographic_parity_difference",
    "equalized_odds_difference",
    "equal_opportunity_difference",
    "predictive_parity_difference",
    "calibration_gap",
)


class MonitoredModel(Record):
    """The registered version being monitored, and what its own training run recorded."""

    name: str
    version: str
    alias: str
    run_id: str
    data_md5: str = Field(description="DVC md5 of the version's training data (the reference).")
    features: tuple[FeatureSpec, ...]
    target: str
    positive_label: str
    sensitive: tuple[str, ...]
    split_column: str | None
    threshold: float = Field(description="The score cut the model was evaluated with.")
    fairness: FairnessParams = Field(
        description="The version's fairness parameters: the small-group rule and the bootstrap."
    )

    @property
    def uri(self) -> str:
        """MLflow model URI of exactly this version."""
        return f"models:/{self.name}/{self.version}"


class SummaryDelta(Record):
    """A between-group fairness summary of one slice, on the batch and in the evaluation."""

    slice: str
    summary: str
    value: float | None
    champion: float | None
    difference: float | None


class PerformanceResult(Record):
    """Performance and fairness on the labelled batch, compared with the model's evaluation."""

    n_rows: int
    metrics: tuple[Comparison, ...]
    groups: tuple[GroupComparison, ...]
    fairness: tuple[SummaryDelta, ...]
    fairness_json: Path
    fairness_html: Path
    missing: tuple[str, ...] = Field(
        default=(), description="Champion artifacts that were not found (no comparison there)."
    )


class ChampionEvaluation(Record):
    """The monitored version's own evaluation artifacts, as logged with its run."""

    metrics: dict[str, Any] | None = None
    groups: list[dict[str, Any]] | None = None
    fairness: dict[str, Any] | None = None


class MonitoringReport(Record):
    """Everything one monitoring run found, and whether the batch is within the policy."""

    dataset: str
    model: MonitoredModel
    batch: RawBatch
    labelled: bool
    validation: ValidationReport | None = None
    skipped_expectations: tuple[str, ...] = ()
    policy: DriftPolicy
    drift: DriftResult
    performance: PerformanceResult | None
    passed: bool
    breaches: tuple[str, ...] = Field(description="One line per breach of the policy.")
    seconds: dict[str, float] = Field(default_factory=dict, description="Time per step.")
    json_path: Path | None = None
    html_path: Path | None = None


def group_deltas(
    groups: Sequence[Mapping[str, Any]],
    champion: Sequence[Mapping[str, Any]] | None,
    metrics: Sequence[str] = GROUP_DELTA_METRICS,
    *,
    rule: FairnessParams | None = None,
    champion_rule: FairnessParams | None = None,
) -> tuple[GroupComparison, ...]:
    """Per (column, group): each metric on the batch, in the champion's groups.json, and the delta.

    Groups present on one side only are listed with the other side empty. Each side's status
    follows the small-group rule (``rule`` for the batch, ``champion_rule`` for records older than
    the rule; defaults when not given); a private side contributes no figure.
    """
    ours_rule, theirs_rule = rule or FairnessParams(), champion_rule or FairnessParams()
    rows = []
    for key, mine, other in paired_groups(groups, champion):
        status = group_status(mine, ours_rule)
        theirs = None if other is None else group_status(other, theirs_rule)
        figures = (
            _delta(
                m,
                None if status == PRIVATE else finite_number(mine.get(m)),
                None if other is None or theirs == PRIVATE else finite_number(other.get(m)),
            )
            for m in metrics
        )
        rows.append(group_row(key, mine, other, (status, theirs), figures))
    return tuple(rows)


def summary_deltas(
    report: FairnessReport, champion: Mapping[str, Any] | None
) -> tuple[SummaryDelta, ...]:
    """Between-group summaries of every slice on the batch beside the champion's report."""
    theirs = {
        str(item.get("name")): item.get("summary", {})
        for item in (champion or {}).get("slices", ())
    }
    rows = []
    for item in report.slices:
        summary = item.summary.model_dump(mode="json")
        other = theirs.get(item.name)
        for name in FAIRNESS_SUMMARIES:
            value = finite_number((summary.get(name) or {}).get("value"))
            champ = None if other is None else finite_number((other.get(name) or {}).get("value"))
            rows.append(
                SummaryDelta(
                    slice=item.name,
                    summary=name,
                    value=value,
                    champion=champ,
                    difference=None if value is None or champ is None else value - champ,
                )
            )
    return tuple(rows)


def _delta(name: str, value: float | None, champion: float | None) -> Comparison:
    difference = None if value is None or champion is None else value - champion
    return Comparison(name=name, value=value, champion=champion, difference=difference)


def drift_metrics(report: MonitoringReport) -> dict[str, float]:
    """The figures logged as MLflow metrics: drift per column, share, prediction, performance."""
    figures = {
        "drift.share": report.drift.drifted_share,
        "drift.n_drifted": float(len(report.drift.drifted_columns)),
        "drift.prediction": report.drift.prediction.value,
        "score.mean_batch": report.drift.mean_score_batch,
        "score.mean_reference": report.drift.mean_score_reference,
        "rows.batch": float(report.batch.n_rows),
    }
    figures.update({f"drift.{_metric_key(c.column)}": c.value for c in report.drift.columns})
    for item in report.performance.metrics if report.performance else ():
        if item.value is not None:
            figures[f"batch_{item.name}"] = item.value
        if item.difference is not None:
            figures[f"delta_{item.name}"] = item.difference
    return figures


def _metric_key(column: str) -> str:
    """MLflow metric names allow letters, digits, ``_ - . / space``; replace anything else."""
    return "".join(ch if ch.isalnum() or ch in "_-./ " else "_" for ch in column)
