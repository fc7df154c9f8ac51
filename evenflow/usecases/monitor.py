"""Monitoring a new batch against a registered model: contract, drift, performance and fairness.

A batch arrives, with or without its labels. The questions, in order:

1. Does it meet the dataset's contract? (Great Expectations; label and split expectations are
   skipped, not failed, when the batch carries no such column.)
2. Has it drifted from the data the monitored model was trained on? The reference is that
   version's own training data, restored by its DVC md5 (``evenflow.data_md5``), never "the latest
   data" (:mod:`evenflow.assess.monitoring` measures and decides).
3. With labels: how does the model perform, overall and per group, next to the figures logged
   with its own evaluation (``reports/metrics.json``, ``groups.json``, ``fairness/fairness.json``)?
   (:mod:`evenflow.govern.monitoring` compares.)

This module is the story: it reads the model and its evidence from MLflow, the batch and the
reference from disk, and wires the assessment; per-group figures come from
:mod:`evenflow.assess.evaluation` and :mod:`evenflow.assess.fairness`, never from Evidently's
``GroupBy``.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from evenflow import layout
from evenflow.assess.evaluation import evaluate, groups_to_records, json_safe
from evenflow.assess.fairness import fairness_report
from evenflow.assess.monitoring import Scorer, assess_drift, drift_breaches, sample_rows
from evenflow.assess.predictions import LABEL_COLUMN as LABEL
from evenflow.assess.predictions import SCORE_COLUMN as SCORE
from evenflow.config.monitor import DriftPolicy
from evenflow.config.run import EvalParams, RunParams
from evenflow.config.settings import EvenflowSettings
from evenflow.contracts import validation
from evenflow.data import versioning
from evenflow.data.datasets import content_md5, read_table
from evenflow.data.features import label_values
from evenflow.errors import DataError, EvenflowError
from evenflow.govern.comparison import compare_metrics, group_rule
from evenflow.govern.monitoring import (
    ChampionEvaluation,
    MonitoredModel,
    MonitoringReport,
    PerformanceResult,
    group_deltas,
    summary_deltas,
)
from evenflow.io import atomic_path, write_json_atomic
from evenflow.records import RawBatch, ShardManifest, ValidationReport
from evenflow.registry import store as registry
from evenflow.reports.fairness_html import write_fairness_report
from evenflow.reports.summaries import monitoring_headline

logger = logging.getLogger(__name__)


class DriftDetected(EvenflowError):
    """A batch drifted beyond the monitoring policy; the message names each breach."""

    def __init__(self, summary: str, breaches: list[str]) -> None:
        super().__init__("\n".join([summary, *breaches]))
        self.summary = summary
        self.breaches = breaches


# --- the model and its evidence -------------------------------------------------------------


FROM_MANIFEST = ("features", "target", "positive_label", "sensitive")
"""What a monitored model takes, as is, from its training data's shard manifest."""


def resolve_model(settings: EvenflowSettings, name: str, alias: str) -> MonitoredModel:
    """The version behind ``name@alias`` and what its training run recorded.

    Raises:
        ModelNotFound: No such model or alias.
        DataError: Its run lacks the data md5, run parameters or manifest needed to rebuild the
            reference.
    """
    client = registry.client_for(settings)
    version = registry.version_for_alias(client, name, alias)
    run_id = str(version.run_id)
    data_md5 = version.tags.get(layout.DATA_MD5_TAG) or client.get_run(run_id).data.tags.get(
        layout.DATA_MD5_TAG
    )
    if not data_md5 or data_md5 == "pending":
        raise DataError(
            f"{name} version {version.version} (run {run_id}) has no {layout.DATA_MD5_TAG} tag; "
            "its training data cannot be restored as the drift reference"
        )
    with tempfile.TemporaryDirectory(prefix="evenflow-monitor-") as scratch:
        params_doc = _artifact_json(client, run_id, layout.RUN_PARAMS, Path(scratch))
        manifest_doc = _artifact_json(client, run_id, layout.MANIFEST, Path(scratch))
    if params_doc is None or manifest_doc is None:
        raise DataError(
            f"{name} version {version.version} (run {run_id}) lacks "
            f"{layout.RUN_PARAMS} or {layout.MANIFEST}; it cannot be monitored"
        )
    params = RunParams.from_mapping(
        without_retired_keys(params_doc), source=f"run {run_id} {layout.RUN_PARAMS}"
    )
    manifest = ShardManifest.model_validate(manifest_doc)
    return MonitoredModel(
        name=name,
        version=str(version.version),
        alias=alias,
        run_id=run_id,
        data_md5=data_md5,
        split_column=params.dataset.split_column,
        threshold=params.evaluation.threshold,
        fairness=params.fairness,
        **{field: getattr(manifest, field) for field in FROM_MANIFEST},
    )


# Keys that older runs logged and the one rule for small groups replaced (section, key).
RETIRED_KEYS = (("evaluation", "min_group_size"), ("gates", "min_group_positives"))


def without_retired_keys(params_doc: Mapping[str, Any]) -> dict[str, Any]:
    """A logged run configuration without the keys the small-group rule retired (logged)."""
    doc = dict(params_doc)
    for section, key in RETIRED_KEYS:
        part = doc.get(section)
        if isinstance(part, Mapping) and key in part:
            logger.info(
                "run configuration: %s.%s is retired (small groups follow fairness.min_cell, "
                "min_positives, min_negatives); ignored",
                section,
                key,
            )
            doc[section] = {k: v for k, v in part.items() if k != key}
    return doc


def champion_evaluation(settings: EvenflowSettings, model: MonitoredModel) -> ChampionEvaluation:
    """The version's logged metrics, per-group metrics and fairness report (None where absent)."""
    client = registry.client_for(settings)
    with tempfile.TemporaryDirectory(prefix="evenflow-monitor-") as scratch:
        docs = {
            path: _artifact_json(client, model.run_id, path, Path(scratch))
            for path in (layout.METRICS, layout.GROUPS, layout.FAIRNESS)
        }
    return ChampionEvaluation(
        metrics=docs[layout.METRICS],
        groups=docs[layout.GROUPS],
        fairness=docs[layout.FAIRNESS],
    )


def load_scorer(model: MonitoredModel) -> Scorer:
    """Score raw rows with the registered version itself (its MLflow pyfunc)."""
    import mlflow.pyfunc  # noqa: PLC0415  (loading MLflow's model flavours is slow; only here)

    loaded = mlflow.pyfunc.load_model(model.uri)
    names = [f.name for f in model.features]

    def score(frame: pd.DataFrame) -> np.ndarray:
        predicted = loaded.predict(frame.loc[:, names])
        return np.asarray(predicted[SCORE], dtype=np.float64)

    return score


def _artifact_json(client: MlflowClient, run_id: str, path: str, scratch: Path) -> Any:
    """A JSON artifact of the run, or None when the run has none (older runs lack some)."""
    try:
        return registry.download_json(client, run_id, path, scratch)
    except (MlflowException, OSError):
        logger.info("run %s has no artifact %s", run_id, path)
        return None


# --- the batch and its contract -------------------------------------------------------------


def optional_columns(model: MonitoredModel) -> tuple[str, ...]:
    """Columns a monitoring batch may lack: the label, and the dataset's split column."""
    return (model.target, *((model.split_column,) if model.split_column else ()))


def monitoring_suite(
    suite: Mapping[str, Any], present: Sequence[str], optional: Sequence[str]
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The suite with the expectations of absent optional columns skipped.

    An expectation on a column in ``optional`` that the batch lacks is removed, and the column
    is removed from ``expect_table_columns_to_match_set``; every other expectation stays.

    Returns:
        The adjusted suite and one line per skipped (or narrowed) expectation.
    """
    absent = [c for c in optional if c not in set(present)]
    kept, skipped = [], []
    for expectation in suite.get("expectations", []):
        kwargs = expectation.get("kwargs", {})
        kind = str(expectation.get("type"))
        if kwargs.get("column") in absent:
            skipped.append(f"{kind} on column '{kwargs['column']}' (column absent)")
            continue
        column_set = kwargs.get("column_set")
        if isinstance(column_set, list) and any(c in column_set for c in absent):
            narrowed = [c for c in column_set if c not in absent]
            removed = [c for c in column_set if c in absent]
            skipped.append(f"{kind}: not requiring {removed} (absent)")
            kept.append({**expectation, "kwargs": {**kwargs, "column_set": narrowed}})
            continue
        kept.append(expectation)
    return {**suite, "expectations": kept}, tuple(skipped)


def load_monitoring_batch(path: Path, dataset: str) -> tuple[RawBatch, pd.DataFrame]:
    """Read the batch and describe it (content md5, rows, columns).

    Raises:
        DataError: The file cannot be read or has no rows.
    """
    frame = read_table(path)
    if frame.empty:
        raise DataError(f"{path}: the batch has no rows")
    batch = RawBatch(
        dataset=dataset,
        path=path.resolve(),
        md5=content_md5(path),
        n_rows=len(frame),
        columns=tuple(str(c) for c in frame.columns),
    )
    return batch, frame


def validate_batch(
    path: Path,
    suite: Mapping[str, Any],
    model: MonitoredModel,
    out_dir: Path,
    *,
    dataset: str,
) -> tuple[RawBatch, ValidationReport, tuple[str, ...]]:
    """Validate the batch against its contract, skipping the expectations of absent labels.

    Returns:
        The batch, the validation report (``success`` says whether the contract holds) and the
        skipped expectations.
    """
    batch, frame = load_monitoring_batch(path, dataset)
    adjusted, skipped = monitoring_suite(suite, batch.columns, optional_columns(model))
    report = validation.validate_frame(frame, adjusted, out_dir, dataset=dataset)
    if skipped:
        logger.info("batch %s: skipped %d expectations: %s", path, len(skipped), skipped)
    return batch, report, skipped


# --- the reference --------------------------------------------------------------------------


def reference_sample(
    settings: EvenflowSettings, model: MonitoredModel, max_rows: int | None, seed: int
) -> Path:
    """The monitored version's train split (sampled to ``max_rows``) as one parquet file.

    The data is restored by the version's DVC md5, so the reference is exactly what the model
    was trained on. The sample is content-addressed (md5, rows, seed) under ``.evenflow/`` and
    reused by later runs.

    Raises:
        VersioningError: The data is in neither the DVC cache nor the remote.
        DataError: The restored data holds no train rows.
    """
    key = f"{model.data_md5.replace('.', '-')}-{max_rows or 'all'}-{seed}"
    target = settings.state_dir / "monitoring" / "reference" / f"{key}.parquet"
    if target.is_file():
        return target
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="reference-", dir=settings.state_dir) as scratch:
        restored = versioning.restore_directory(
            settings.project_root, model.data_md5, Path(scratch) / "data"
        )
        paths = sorted((restored / "train").glob("*.parquet"))
        if not paths:
            raise DataError(f"data {model.data_md5} holds no train shards to compare with")
        keep = [f.name for f in model.features]
        frame = pd.concat([pd.read_parquet(p, columns=keep) for p in paths], ignore_index=True)
    sample = sample_rows(frame, max_rows, seed)
    with atomic_path(target) as tmp:
        sample.to_parquet(tmp, index=False)
    logger.info(
        "reference %s: %d of %d train rows at %s", model.data_md5, len(sample), len(frame), target
    )
    return target


# --- performance and fairness ---------------------------------------------------------------


def is_labelled(batch: pd.DataFrame, model: MonitoredModel) -> bool:
    """Whether the batch carries the label column with at least one value."""
    return model.target in batch.columns and bool(batch[model.target].notna().any())


def assess_performance(
    batch: pd.DataFrame,
    model: MonitoredModel,
    champion: ChampionEvaluation,
    out_dir: Path,
    *,
    scorer: Scorer,
) -> PerformanceResult:
    """Metrics, per-group metrics and the fairness report on the labelled batch, with deltas.

    Every batch row is scored (no sampling: per-group figures need every labelled row). The
    fairness report is written under ``out_dir/fairness``. Deltas are ``batch - champion``.

    Raises:
        DataError: A sensitive column is missing, or labels are missing or invalid.
    """
    missing = [c for c in model.sensitive if c not in batch.columns]
    if missing:
        raise DataError(f"the labelled batch lacks sensitive column(s) {missing}")
    predictions = pd.DataFrame(
        {
            LABEL: label_values(batch[model.target], model.positive_label).to_numpy(),
            SCORE: scorer(batch),
            **{c: batch[c].to_numpy() for c in model.sensitive},
        }
    )
    eval_params = EvalParams(threshold=model.threshold)
    metrics, _, groups = evaluate(predictions, model.sensitive, eval_params, model.fairness)
    report = fairness_report(predictions, model.sensitive, model.fairness)
    files = write_fairness_report(report, out_dir / layout.FAIRNESS_DIR)
    champion_metrics = (champion.metrics or {}).get("metrics")
    not_found = [
        name
        for name, doc in (
            (layout.METRICS, champion.metrics),
            (layout.GROUPS, champion.groups),
            (layout.FAIRNESS, champion.fairness),
        )
        if doc is None
    ]
    return PerformanceResult(
        n_rows=len(predictions),
        metrics=compare_metrics(
            json_safe(metrics), champion_metrics, report.model_dump(mode="json"), champion.fairness
        ),
        groups=group_deltas(
            groups_to_records(groups),
            champion.groups,
            rule=model.fairness,
            champion_rule=group_rule(champion.fairness),
        ),
        fairness=summary_deltas(report, champion.fairness),
        fairness_json=files.json_path,
        fairness_html=files.html_path,
        missing=tuple(not_found),
    )


# --- the whole assessment -------------------------------------------------------------------


def assess(
    batch_frame: pd.DataFrame,
    reference: pd.DataFrame,
    *,
    batch: RawBatch,
    model: MonitoredModel,
    policy: DriftPolicy,
    scorer: Scorer,
    champion: ChampionEvaluation,
    out_dir: Path,
    validation_report: ValidationReport | None = None,
    skipped_expectations: tuple[str, ...] = (),
) -> MonitoringReport:
    """Drift, and with labels performance and fairness, of one batch; writes ``monitoring.json``.

    The decision (``passed``, ``breaches``) follows :func:`drift_breaches`; the caller decides
    what a breach does (the flow fails the run).
    """
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    drift_result = assess_drift(
        reference, batch_frame, model.features, policy, out_dir, scorer=scorer
    )
    seconds["drift"] = round(time.perf_counter() - started, 3)
    labelled = is_labelled(batch_frame, model)
    performance = None
    if labelled:
        started = time.perf_counter()
        performance = assess_performance(batch_frame, model, champion, out_dir, scorer=scorer)
        seconds["performance"] = round(time.perf_counter() - started, 3)
    breaches = drift_breaches(drift_result)
    report = MonitoringReport(
        dataset=batch.dataset,
        model=model,
        batch=batch,
        labelled=labelled,
        validation=validation_report,
        skipped_expectations=skipped_expectations,
        policy=policy,
        drift=drift_result,
        performance=performance,
        passed=not breaches,
        breaches=tuple(breaches),
        seconds=seconds,
        json_path=out_dir / layout.MONITORING_FILE,
    )
    write_json_atomic(out_dir / layout.MONITORING_FILE, report.model_dump(mode="json"))
    logger.info("%s", monitoring_headline(report))
    return report


def breach_error(report: MonitoringReport, retraining: str | None = None) -> DriftDetected:
    """The error that fails the run: headline, one line per breach, and any retraining."""
    lines = [*report.breaches, *([f"retraining triggered: {retraining}"] if retraining else [])]
    return DriftDetected(monitoring_headline(report), lines)
