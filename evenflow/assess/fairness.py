"""Fairness report: per-group rates, calibration and score distributions, each with an interval.

Groups differ in base rates, so no single parity number says a model is fair. The report shows
parity, error-rate balance and calibration side by side, for every sensitive column and every
intersection of them, each value with a seeded percentile bootstrap interval. It holds aggregates
only. Small groups follow the one rule of :mod:`evenflow.assess.small_groups`; every slice counts
the groups and rows it left out. The tallies and the bootstrap live in
:mod:`evenflow.assess.fairness_tally`; this module turns them into the report's records.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from pydantic import Field

from evenflow.assess.arrays import FloatArray, IntArray, ObjectArray
from evenflow.assess.bootstrap import percentile_interval
from evenflow.assess.estimates import Estimate
from evenflow.assess.fairness_tally import (
    GROUP_METRICS,
    MIN_GROUPS,
    Rows,
    Slice,
    bootstrap_stats,
    check_input,
    driving_metric,
    group_stats,
    make_slices,
    prepare,
    score_histograms,
    score_quantiles,
    summary_values,
    tally,
)
from evenflow.assess.group_rates import bin_edges
from evenflow.assess.impact_ratio import impact_ratio_report
from evenflow.assess.impact_tables import ImpactRatioReport
from evenflow.assess.small_groups import (
    LEFT_OUT,
    PRIVATE,
    REPORTED,
    CellStatus,
    cell_reason,
    cell_status,
    cell_statuses,
)
from evenflow.config.fairness import FairnessParams
from evenflow.records import Record

logger = logging.getLogger(__name__)

__all__ = [  # Estimate is re-exported: the report's figures, defined apart for the impact ratios
    "BootstrapInfo",
    "Disparity",
    "Estimate",
    "FairnessReport",
    "GroupMetrics",
    "LeftOut",
    "LeftOutCell",
    "ReliabilityBin",
    "ScoreDistribution",
    "SliceReport",
    "SliceSummary",
    "fairness_report",
    "report_to_json",
]


class Disparity(Estimate):
    """A between-group summary, naming the groups at its two ends."""

    highest: str | None = Field(default=None, description="Group with the largest value.")
    lowest: str | None = Field(default=None, description="Group with the smallest value.")


class ReliabilityBin(Record):
    """One bin of a reliability curve: mean score against observed positive rate."""

    lower: float
    upper: float
    n: int
    mean_score: float | None
    observed_rate: Estimate


class ScoreDistribution(Record):
    """A group's scores as quantiles and histogram counts (edges live on the report)."""

    quantiles: dict[str, float] = Field(description="Quantile level (e.g. 'p50') -> score.")
    histogram_counts: tuple[int, ...]


class GroupMetrics(Record):
    """Counts, rates and calibration of one group, with its status under the small-group rule.

    A ``private`` group shows only ``n``: its positives, negatives and rates are None. An
    ``insufficient`` group shows everything, with its (wide) intervals, but no summary uses it.
    """

    name: str
    values: dict[str, str] = Field(description="Sensitive column -> value defining the group.")
    n: int
    n_pos: int | None = Field(description="Positive labels; None for a private group.")
    n_neg: int | None = Field(description="Negative labels; None for a private group.")
    n_pred_pos: int | None
    status: CellStatus = Field(description="private, insufficient or reported (cell_status).")
    reason: str | None = Field(default=None, description="Why it is private or insufficient.")
    base_rate: Estimate | None = None
    selection_rate: Estimate | None = None
    tpr: Estimate | None = None
    fpr: Estimate | None = None
    fnr: Estimate | None = None
    precision: Estimate | None = None
    accuracy: Estimate | None = None
    ece: Estimate | None = None
    mean_score: Estimate | None = None
    reliability: tuple[ReliabilityBin, ...] = ()
    scores: ScoreDistribution | None = None


class LeftOut(Record):
    """Groups of one status kept out of a slice's summaries, and their rows."""

    status: CellStatus
    groups: int
    rows: int


def _between(definition: str) -> Any:
    """An optional between-group summary field; its definition goes into the JSON schema."""
    return Field(default=None, description=definition)


class SliceSummary(Record):
    """Between-group summaries over the reported groups of a slice (max - min, or min/max)."""

    n_groups_compared: int
    n_rows_compared: int = Field(description="Rows of the groups the summaries compare.")
    n_rows_left_out: int = Field(description="Rows of private and insufficient groups.")
    left_out: tuple[LeftOut, ...] = Field(
        description="Per status (private, insufficient): groups and rows left out of summaries."
    )
    note: str | None = None
    demographic_parity_difference: Disparity | None = _between("Max - min selection rate.")
    demographic_parity_ratio: Disparity | None = _between("Min / max selection rate.")
    equalized_odds_difference: Disparity | None = _between("The larger of the TPR, FPR gaps.")
    equal_opportunity_difference: Disparity | None = _between("Max - min true positive rate.")
    false_positive_rate_difference: Disparity | None = _between("Max - min false positive rate.")
    predictive_parity_difference: Disparity | None = _between("Max - min precision.")
    calibration_gap: Disparity | None = _between("Max - min expected calibration error.")
    base_rate_difference: Disparity | None = _between("Max - min base rate (of the data).")


class SliceReport(Record):
    """One sensitive column or one intersection of them, with its groups and summaries."""

    name: str
    columns: tuple[str, ...]
    groups: tuple[GroupMetrics, ...]
    summary: SliceSummary


class LeftOutCell(Record):
    """A group kept out of summaries and gates: its status, counts (n only if private) and why."""

    slice: str
    group: str
    values: dict[str, str]
    status: CellStatus
    n: int
    n_pos: int | None
    n_neg: int | None
    reason: str

    @classmethod
    def of(cls, slice_name: str, group: GroupMetrics) -> LeftOutCell:
        """The group's values, status and counts as it reported them, named with its slice."""
        shared = group.model_dump(include={"values", "status", "n", "n_pos", "n_neg"})
        return cls(
            slice=slice_name, group=group.name, reason=group.reason or group.status, **shared
        )


class BootstrapInfo(Record):
    """How the intervals were made."""

    replicates: int
    confidence_level: float
    seed: int
    method: str = "Poisson(1) row weights, percentile intervals"

    @classmethod
    def of(cls, params: FairnessParams) -> BootstrapInfo:
        """The bootstrap that ``params`` asks for."""
        return cls(
            replicates=params.n_bootstrap,
            confidence_level=params.confidence_level,
            seed=params.seed,
        )


class FairnessReport(Record):
    """Per-group and between-group fairness figures of one set of predictions; aggregates only."""

    params: FairnessParams
    sensitive: tuple[str, ...]
    n_rows: int
    n_pos: int
    n_neg: int
    calibration_edges: tuple[float, ...]
    histogram_edges: tuple[float, ...]
    bootstrap: BootstrapInfo
    overall: GroupMetrics
    slices: tuple[SliceReport, ...]
    left_out: tuple[LeftOutCell, ...] = Field(
        description="Every private or insufficient group of every slice, with its reason."
    )
    impact_ratios: ImpactRatioReport | None = Field(
        default=None,
        description=(
            "Impact-ratio tables (NYC Local Law 144): per category the selection and scoring "
            "rates, their ratio to the highest category's, and the four-fifths flag; None in "
            "reports written before they existed."
        ),
    )

    def slice(self, *columns: str) -> SliceReport:
        """Return the slice over exactly these columns (in the order given to the report)."""
        for item in self.slices:
            if set(item.columns) == set(columns) and len(item.columns) == len(columns):
                return item
        raise KeyError(f"no slice over columns {columns!r}")


def fairness_report(
    predictions: pd.DataFrame, sensitive: Sequence[str], params: FairnessParams
) -> FairnessReport:
    """Compute the fairness report of test-split predictions.

    Args:
        predictions: One row per example with ``label`` (0/1), ``score`` (probability in [0, 1]),
            optionally ``_row_id`` (fixes the bootstrap's row order), and the sensitive columns.
        sensitive: Sensitive columns; each one and every intersection of them is reported.
        params: Threshold, bootstrap, binning and small-group settings.

    Returns:
        The report: aggregates only, JSON-serialisable through ``report_to_json``.

    Raises:
        DataError: If a column is missing or labels / scores are out of range.
    """
    columns = tuple(sensitive)
    check_input(predictions, columns)
    data = prepare(predictions, columns, params)
    slices = make_slices(data, columns, params.max_intersection_size)
    counts, sums = tally(data)
    points = [group_stats(counts, sums, s.membership) for s in slices]
    started = time.perf_counter()
    replicates = bootstrap_stats(data, slices, params)
    logger.info(
        "fairness bootstrap: %d replicates, %d rows, %d slices in %.2fs",
        params.n_bootstrap,
        data.keys.size,
        len(slices),
        time.perf_counter() - started,
    )
    reports = [
        _slice_report(data, s, p, r, params)
        for s, p, r in zip(slices, points, replicates, strict=True)
    ]
    n_pos = int(points[0]["n_pos"][0, 0])
    return FairnessReport(
        params=params,
        sensitive=columns,
        n_rows=int(data.keys.size),
        n_pos=n_pos,
        n_neg=int(data.keys.size) - n_pos,
        calibration_edges=bin_edges(params.calibration_bins),
        histogram_edges=bin_edges(params.histogram_bins),
        bootstrap=BootstrapInfo.of(params),
        overall=reports[0].groups[0],
        slices=tuple(reports[1:]),
        left_out=tuple(_left_out_cells(reports)),
        impact_ratios=impact_ratio_report(predictions, columns, params),
    )


def report_to_json(report: FairnessReport) -> dict[str, Any]:
    """Return the report as a JSON-ready dict (undefined values are null)."""
    return report.model_dump(mode="json")


# --- summaries ------------------------------------------------------------------------------


def _left_out_counts(point: dict[str, FloatArray], status: ObjectArray) -> dict[str, Any]:
    """Groups and rows compared, and left out per status: nothing disappears uncounted."""
    rows = point["n"][0]
    left_out = tuple(
        LeftOut(status=s, groups=int((status == s).sum()), rows=int(rows[status == s].sum()))
        for s in LEFT_OUT
    )
    return {
        "n_groups_compared": int((status == REPORTED).sum()),
        "n_rows_compared": int(rows[status == REPORTED].sum()),
        "n_rows_left_out": sum(item.rows for item in left_out),
        "left_out": left_out,
    }


def _summary(
    item: Slice,
    point: dict[str, FloatArray],
    replicates: dict[str, FloatArray] | None,
    status: ObjectArray,
    level: float,
) -> SliceSummary:
    kept = np.asarray(status == REPORTED, dtype=np.bool_)
    counts = _left_out_counts(point, status)
    if int(kept.sum()) < MIN_GROUPS:
        return SliceSummary(**counts, note="fewer than two reported groups")
    values = summary_values(point, kept)
    reps = summary_values(replicates, kept) if replicates is not None else None
    names = [item.group_name(int(i)) for i in np.flatnonzero(kept)]
    fields = {
        name: _disparity(
            value[0],
            None if reps is None else reps[name],
            level,
            point[driving_metric(name, values)][0, kept],
            names,
        )
        for name, value in values.items()
    }
    return SliceSummary(**counts, **fields)


def _disparity(
    value: float,
    replicates: FloatArray | None,
    level: float,
    group_values: FloatArray,
    names: list[str],
) -> Disparity:
    low = high = None
    if replicates is not None:
        lo, hi = percentile_interval(replicates, level)
        low, high = _finite(lo), _finite(hi)
    highest = lowest = None
    if np.isfinite(group_values).any():
        highest = names[int(np.nanargmax(group_values))]
        lowest = names[int(np.nanargmin(group_values))]
    return Disparity(value=_finite(value), low=low, high=high, highest=highest, lowest=lowest)


def _finite(value: Any) -> float | None:
    number = float(value)
    return number if np.isfinite(number) else None


# --- assembling records ---------------------------------------------------------------------


@dataclass(frozen=True)
class _SliceResult:
    """Point statistics, intervals and distributions of one slice, ready to become records."""

    item: Slice
    point: dict[str, FloatArray]
    intervals: dict[str, tuple[FloatArray, FloatArray]] | None
    status: ObjectArray
    histograms: IntArray
    quantiles: FloatArray


def _slice_report(
    data: Rows,
    item: Slice,
    point: dict[str, FloatArray],
    replicates: dict[str, FloatArray] | None,
    params: FairnessParams,
) -> SliceReport:
    status = cell_statuses(point["n"][0], point["n_pos"][0], point["n_neg"][0], params)
    result = _SliceResult(
        item=item,
        point=point,
        intervals=_group_intervals(replicates, params.confidence_level),
        status=status,
        histograms=score_histograms(data, item, params.histogram_bins),
        quantiles=score_quantiles(data, item, params.score_quantiles),
    )
    groups = tuple(_group_metrics(result, g, params) for g in range(len(item.group_values)))
    summary = _summary(item, point, replicates, status, params.confidence_level)
    return SliceReport(name=item.name, columns=item.columns, groups=groups, summary=summary)


def _group_intervals(
    replicates: dict[str, FloatArray] | None, level: float
) -> dict[str, tuple[FloatArray, FloatArray]] | None:
    if replicates is None:
        return None
    return {name: percentile_interval(values, level) for name, values in replicates.items()}


def _group_metrics(result: _SliceResult, g: int, params: FairnessParams) -> GroupMetrics:
    point, intervals = result.point, result.intervals
    name, values = result.item.group_name(g), result.item.group_values[g]
    n, n_pos, n_neg = (int(point[k][0, g]) for k in ("n", "n_pos", "n_neg"))
    status = cell_status(n, n_pos, n_neg, params)
    reason = cell_reason(n, n_pos, n_neg, params)
    if status == PRIVATE:  # only n: no positives, no base rate, no rates, no scores
        return GroupMetrics(
            name=name,
            values=values,
            n=n,
            n_pos=None,
            n_neg=None,
            n_pred_pos=None,
            status=status,
            reason=reason,
        )
    rates = {m: _estimate(point[m][0, g], intervals, m, (g,)) for m in GROUP_METRICS}
    quantiles = zip(params.score_quantiles, result.quantiles[g], strict=True)
    return GroupMetrics(
        name=name,
        values=values,
        n=n,
        n_pos=n_pos,
        n_neg=n_neg,
        n_pred_pos=int(point["n_pred_pos"][0, g]),
        status=status,
        reason=reason,
        **rates,
        reliability=_reliability(point, intervals, g, params.calibration_bins),
        scores=ScoreDistribution(
            quantiles={_quantile_key(q): float(v) for q, v in quantiles},
            histogram_counts=tuple(int(c) for c in result.histograms[g]),
        ),
    )


def _estimate(
    value: Any,
    intervals: dict[str, tuple[FloatArray, FloatArray]] | None,
    metric: str,
    index: tuple[int, ...],
) -> Estimate:
    if intervals is None:
        return Estimate(value=_finite(value))
    low, high = intervals[metric]
    return Estimate(value=_finite(value), low=_finite(low[index]), high=_finite(high[index]))


def _reliability(
    point: dict[str, FloatArray],
    intervals: dict[str, tuple[FloatArray, FloatArray]] | None,
    g: int,
    n_bins: int,
) -> tuple[ReliabilityBin, ...]:
    edges = bin_edges(n_bins)
    return tuple(
        ReliabilityBin(
            lower=edges[b],
            upper=edges[b + 1],
            n=int(point["bin_n"][0, g, b]),
            mean_score=_finite(point["bin_mean"][0, g, b]),
            observed_rate=_estimate(
                point["bin_observed"][0, g, b], intervals, "bin_observed", (g, b)
            ),
        )
        for b in range(n_bins)
    )


def _quantile_key(q: float) -> str:
    return f"p{100 * q:g}"


def _left_out_cells(slices: list[SliceReport]) -> Iterator[LeftOutCell]:
    """Every private or insufficient group of every slice (the overall row is not a slice)."""
    for item in slices[1:]:
        for group in item.groups:
            if group.status != REPORTED:
                yield LeftOutCell.of(item.name, group)
