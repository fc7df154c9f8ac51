"""What a reviewer sees in the MLflow UI, as data: dataset input, fairness metrics, artifact links.

The MLflow UI charts metrics across runs, lists a run's dataset inputs and renders Markdown
descriptions; this module turns evenflow's records into those shapes (names from
:mod:`evenflow.layout`), and :mod:`evenflow.registry.store` writes them. Figures follow the one
rule for small groups: a private or insufficient group never becomes a metric, it is counted.
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from mlflow.data.dataset_source import DatasetSource
from mlflow.data.dataset_source_registry import resolve_dataset_source
from mlflow.data.meta_dataset import MetaDataset
from mlflow.exceptions import MlflowException
from mlflow.types import ColSpec, DataType, Schema

from evenflow import layout
from evenflow.assess.fairness import Disparity, Estimate, FairnessReport, SliceReport
from evenflow.assess.small_groups import REPORTED
from evenflow.config.fairness import JOIN
from evenflow.records import ShardManifest

SUMMARIES = (
    "equalized_odds_difference",
    "demographic_parity_difference",
    "demographic_parity_ratio",
    "equal_opportunity_difference",
    "false_positive_rate_difference",
    "predictive_parity_difference",
    "calibration_gap",
    "base_rate_difference",
)
"""Between-group summaries logged per slice (fields of the report's ``SliceSummary``)."""
GAPS = tuple(
    name
    for name in SUMMARIES
    if name.endswith(("_difference", "_gap")) and name != "base_rate_difference"
)
"""The model's gaps (max - min), largest worst; the base rates' gap is the data's, not ranked."""
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


# --- dataset input ------------------------------------------------------------------------------


class ShardedDataset(MetaDataset):
    """A DVC-versioned batch as MLflow sees it: name, source, digest, schema and row counts.

    Only metadata: the data itself is never read to log it. The digest is the DVC hash of the
    shard folder, so two runs on the same data show the same digest in the UI.
    """

    def __init__(self, manifest: ShardManifest, source: str) -> None:
        self._rows = {s.name: s.rows for s in manifest.split_report} or {
            split: manifest.split_rows(split) for split in ("train", "valid", "test")
        }
        super().__init__(
            source=dataset_source(source, fallback=str(manifest.shard_dir)),
            name=manifest.dataset,
            digest=manifest.data_md5,
            schema=feature_schema(manifest),
        )

    @property
    def profile(self) -> Any:
        """Rows in all and per split: shown beside the dataset in the MLflow UI."""
        rows = {f"{split}_rows": n for split, n in self._rows.items()}
        return {"num_rows": sum(self._rows.values()), **rows}

    def to_dict(self) -> dict[str, str]:
        """MLflow's dataset fields, with the profile (``MetaDataset`` leaves it out)."""
        config = super().to_dict()
        config["profile"] = json.dumps(self.profile)
        return config


def dataset_source(uri: str, *, fallback: str) -> DatasetSource:
    """MLflow's source for a path or URI (local, S3, ...); ``fallback`` where MLflow knows none."""
    with warnings.catch_warnings():
        # A local path matches both local-file sources MLflow registers: either one is right.
        warnings.filterwarnings("ignore", message="The specified dataset source can be interpreted")
        try:
            return resolve_dataset_source(uri)
        except MlflowException:
            return resolve_dataset_source(fallback)


def feature_schema(manifest: ShardManifest) -> Schema:
    """The features with their kinds: numeric as double, categorical as string."""
    kinds = {"numeric": DataType.double, "categorical": DataType.string}
    return Schema([ColSpec(type=kinds[f.kind], name=f.name) for f in manifest.features])


def dataset_input_tags(manifest: ShardManifest) -> dict[str, str]:
    """Tags on the dataset input: what else identifies the data besides its digest."""
    return {
        layout.RAW_MD5_INPUT_TAG: manifest.raw_md5,
        layout.SHARD_DIR_INPUT_TAG: str(manifest.shard_dir),
    }


# --- fairness metrics ---------------------------------------------------------------------------


def metric_part(text: str) -> str:
    """A slice or group name as one metric-name part: letters, digits, ``_`` and ``-`` only."""
    parts = [_UNSAFE.sub("_", p.strip()).strip("_") or "_" for p in text.split(JOIN)]
    return layout.FAIRNESS_NAME_JOIN.join(parts)


def fairness_metrics(report: FairnessReport) -> dict[str, float]:
    """Every slice's summaries and reported groups' rates, each with ``.low`` / ``.high``.

    Names follow :data:`evenflow.layout.FAIRNESS_SUMMARY_METRIC` and
    :data:`evenflow.layout.FAIRNESS_GROUP_METRIC`. Private and insufficient groups are left out
    and counted (``fairness.<slice>.groups_left_out``); an undefined figure is not logged.
    """
    metrics: dict[str, float] = {}
    for item in report.slices:
        name = metric_part(item.name)
        for summary in SUMMARIES:
            key = layout.FAIRNESS_SUMMARY_METRIC.format(slice=name, summary=summary)
            metrics.update(_with_bounds(key, getattr(item.summary, summary)))
        for group in item.groups:
            if group.status != REPORTED:
                continue
            for rate in layout.FAIRNESS_GROUP_RATES:
                key = layout.FAIRNESS_GROUP_METRIC.format(
                    slice=name, group=metric_part(group.name), rate=rate
                )
                metrics.update(_with_bounds(key, getattr(group, rate)))
        metrics[layout.FAIRNESS_GROUPS_COMPARED_METRIC.format(slice=name)] = float(
            item.summary.n_groups_compared
        )
        metrics[layout.FAIRNESS_GROUPS_LEFT_OUT_METRIC.format(slice=name)] = float(
            sum(g.status != REPORTED for g in item.groups)
        )
    return metrics


def _with_bounds(key: str, estimate: Estimate | None) -> dict[str, float]:
    """The value under ``key`` and its interval bounds beside it; nothing for an undefined value."""
    if estimate is None or estimate.value is None:
        return {}
    out = {key: estimate.value}
    if estimate.low is not None and estimate.high is not None:
        out[key + layout.FAIRNESS_LOW_SUFFIX] = estimate.low
        out[key + layout.FAIRNESS_HIGH_SUFFIX] = estimate.high
    return out


@dataclass(frozen=True)
class Gap:
    """One between-group gap of one slice, with the groups at its two ends."""

    slice: str
    summary: str
    estimate: Disparity
    metric: str
    """The gap's metric name on the run, for a reviewer who wants to chart it."""


def worst_gaps(report: FairnessReport, n: int = 5) -> list[Gap]:
    """The ``n`` largest between-group gaps over every slice, largest first."""
    found = sorted(_gaps(report.slices), key=lambda g: g.estimate.value or 0.0, reverse=True)
    return found[:n]


def _gaps(slices: tuple[SliceReport, ...]) -> Iterator[Gap]:
    for item in slices:
        for summary in GAPS:
            estimate = getattr(item.summary, summary)
            if estimate is not None and estimate.value is not None:
                key = layout.FAIRNESS_SUMMARY_METRIC.format(
                    slice=metric_part(item.name), summary=summary
                )
                yield Gap(slice=item.name, summary=summary, estimate=estimate, metric=key)


def left_out_groups(report: FairnessReport) -> int:
    """Groups of every slice kept out of the figures (private or insufficient evidence)."""
    return len(report.left_out)
