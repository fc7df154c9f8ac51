"""The model stages of a training run: train, evaluate, explain, gate, compare mitigations.

Each stage takes and returns small records (paths, hashes, ids), never DataFrames, so a stage can
be cached on its inputs and re-run alone; its cache key covers this module's import closure. The
data stages before them are in :mod:`evenflow.usecases.prepare`, registration and the model card
after them in :mod:`evenflow.usecases.register`.
"""

from __future__ import annotations

import json
import logging
import math
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from evenflow import layout
from evenflow.assess import (
    baselines,
    drift,
    evaluation,
    explain,
    mitigation,
    proxy,
    reductions,
)
from evenflow.assess.fairness import FairnessReport, fairness_report
from evenflow.assess.group_metrics import group_metrics
from evenflow.assess.predictions import DECISION_COLUMN
from evenflow.assess.reweighing import cell_counts, reweighing_table
from evenflow.config.run import RunParams
from evenflow.config.settings import EvenflowSettings
from evenflow.data.features import label_values, typed_features
from evenflow.errors import ConfigError, DataError
from evenflow.govern.gates import BASELINE, GateDecision, gate_failures
from evenflow.io import write_json_atomic, write_parquet_atomic, write_text_atomic
from evenflow.records import EvalReport, ShardManifest, TrainingResult
from evenflow.registry import store as registry
from evenflow.reports.explanations import write_explanations
from evenflow.reports.fairness_html import write_fairness_report
from evenflow.reports.mitigation_html import TradeoffFiles, write_tradeoff
from evenflow.serving import load_booster
from evenflow.training import crossfit
from evenflow.training.cluster import dask_client
from evenflow.training.engine import train_model
from evenflow.training.partitions import LABEL, SCORE, SampleWeights

logger = logging.getLogger(__name__)


def train(
    manifest: ShardManifest, params: RunParams, settings: EvenflowSettings, out_dir: Path
) -> TrainingResult:
    """Train on the configured Dask cluster (a local one unless an address is set).

    A cross-fitted batch trains one model per fold and refits on every row (``crossfit``).
    """

    def weights_for(rows: ShardManifest) -> SampleWeights | None:
        reweigh = params.mitigation.method == "reweighing"
        return reweighing(rows, params) if reweigh else None

    with dask_client(settings.dask_address, params.cluster, params.model) as client:
        if manifest.cross_fitted:
            return crossfit.train_cross_fitted(
                client,
                manifest,
                params.model,
                params.cluster.threads_per_worker,
                out_dir,
                weights_for=weights_for,
            )
        return train_model(
            client,
            manifest,
            params.model,
            params.cluster.threads_per_worker,
            out_dir,
            weights=weights_for(manifest),
        )


def reweighing(manifest: ShardManifest, params: RunParams) -> SampleWeights:
    """Reweighing weights from the train split's label and sensitive column only (small reads)."""
    column = mitigation.target_column(params.mitigation, manifest.sensitive)
    counts: Counter[tuple[str, int]] = Counter()
    for path in manifest.split_paths("train"):
        shard = pd.read_parquet(path, columns=[manifest.target, column])
        labels = label_values(shard[manifest.target], manifest.positive_label)
        counts.update(cell_counts(labels, shard[column]))
    return SampleWeights(column=column, table=reweighing_table(counts))


def evaluate(
    manifest: ShardManifest, training: TrainingResult, params: RunParams, out_dir: Path
) -> EvalReport:
    """Metrics overall and per group, fairness report, drift, and classification report.

    With ``mitigation.method: threshold`` the fairness report describes the decisions of per-group
    thresholds fitted on the valid split: the policy the registered model applies.
    """
    predictions = pd.read_parquet(training.predictions_path)
    report_dir = out_dir / layout.REPORTS_DIR
    policy_path = None
    if params.mitigation.method == "threshold":
        policy = mitigation.fit_threshold_policy(
            pd.read_parquet(training.valid_predictions_path),
            manifest.sensitive,
            params.mitigation,
            default_threshold=params.evaluation.threshold,
        )
        policy_path = write_text_atomic(report_dir / layout.THRESHOLD_POLICY_FILE, policy.to_json())
        predictions = mitigation.with_decisions(predictions, policy, params.mitigation.seed)
    report = evaluation.write_evaluation(
        predictions,
        manifest.sensitive,
        params.evaluation,
        report_dir,
        predictions_path=training.predictions_path,
        fairness=params.fairness,
    )
    fairness = fairness_report(predictions, manifest.sensitive, params.fairness)
    fairness_files = write_fairness_report(fairness, report_dir / layout.FAIRNESS_DIR)
    write_baselines(manifest, params, report_dir)
    drift_path = None
    if manifest.cross_fitted:
        # Folds are random draws of one batch: a train-vs-test drift report would say nothing.
        logger.info("cross-fitted: no train-vs-test drift report (the folds share one batch)")
    else:
        drift_summary = _drift(manifest, params, report_dir)
        drift_path = write_json_atomic(
            report_dir / layout.DRIFT_SUMMARY_FILE, drift_summary.model_dump(mode="json")
        )
    drift.classification_report(predictions, report_dir, params.evaluation.threshold)
    return report.model_copy(
        update={
            "report_dir": report_dir,
            "fairness_path": fairness_files.json_path,
            "drift_path": drift_path,
            "threshold_policy_path": policy_path,
        }
    )


def write_baselines(manifest: ShardManifest, params: RunParams, report_dir: Path) -> Path:
    """Fit the prior and the logistic baseline on the model's training rows; write their figures.

    ``baselines.json`` holds each baseline's headline metrics with intervals (the gate compares
    the model with the logistic one), ``baseline_groups.json`` their per-group metrics, and
    ``baseline_predictions.parquet`` every evaluated row's baseline scores, so anyone can recompute.
    """
    frame = baselines.baseline_predictions(
        manifest, params.evaluation.baseline_max_rows, params.split.seed
    )
    write_parquet_atomic(frame, report_dir / layout.BASELINE_PREDICTIONS_FILE)
    summary: dict[str, object] = {}
    groups: dict[str, object] = {}
    for name in baselines.BASELINES:
        scored = frame.drop(columns=[f"score_{b}" for b in baselines.BASELINES if b != name])
        scored = scored.rename(columns={f"score_{name}": SCORE})
        summary[name] = evaluation.json_safe(
            evaluation.headline_metrics(
                scored[LABEL], scored[SCORE], None, params.evaluation.threshold, params.fairness
            )
        )
        groups[name] = evaluation.groups_to_records(
            group_metrics(scored, manifest.sensitive, params.evaluation.threshold, params.fairness)
        )
    write_json_atomic(report_dir / layout.BASELINE_GROUPS_FILE, groups)
    return write_json_atomic(report_dir / layout.BASELINES_FILE, summary)


def _drift(manifest: ShardManifest, params: RunParams, report_dir: Path) -> drift.DriftSummary:
    rows = params.evaluation.drift_sample_rows
    columns = [f.name for f in manifest.features]
    return drift.data_drift_report(
        sample_split(manifest, "train", rows, columns),
        sample_split(manifest, "test", rows, columns),
        [f.name for f in manifest.features if f.kind == "numeric"],
        [f.name for f in manifest.features if f.kind == "categorical"],
        report_dir,
    )


def sample_split(
    manifest: ShardManifest, split: str, n_rows: int, columns: list[str], seed: int = 0
) -> pd.DataFrame:
    """Up to ``n_rows`` rows of a split's ``columns``, sampled shard by shard (bounded memory)."""
    total = manifest.split_rows(split)  # type: ignore[arg-type]
    fraction = min(1.0, n_rows / max(total, 1))
    rng = np.random.default_rng(seed)
    parts = []
    for path in manifest.split_paths(split):  # type: ignore[arg-type]
        shard = pd.read_parquet(path, columns=columns)
        parts.append(shard[rng.random(len(shard)) < fraction])
    return pd.concat(parts, ignore_index=True)


def explain_model(
    manifest: ShardManifest, training: TrainingResult, params: RunParams, out_dir: Path
) -> explain.ExplanationFiles:
    """TreeSHAP on a sample of test rows (global and per group) and the proxy check on train."""
    sensitive = list(manifest.sensitive)
    columns = list(dict.fromkeys([*(f.name for f in manifest.features), *sensitive]))
    seed = params.explain.seed
    test = sample_split(manifest, manifest.evaluated_split, params.explain.shap_rows, columns, seed)
    booster = load_booster(str(training.model_path), training.trainer)
    features = typed_features(test, manifest.features)
    shap = (
        explain.lightgbm_shap_values(booster, features)
        if training.trainer == "lightgbm"
        else explain.shap_values(booster, features)
    )
    summary = explain.explanation_summary(shap, test[sensitive])
    train = sample_split(manifest, "train", params.explain.proxy_rows, columns, seed)
    others = [f for f in manifest.features if f.name not in manifest.sensitive]
    proxies = proxy.proxy_check(typed_features(train, others), train[sensitive], seed)
    return write_explanations(
        shap, features, summary, proxies, out_dir / layout.EXPLANATIONS_DIR, seed=seed
    )


def gate(
    params: RunParams, settings: EvenflowSettings, report: EvalReport, out_dir: Path
) -> GateDecision:
    """Apply the configured gate policy; the decision records every clause with its numbers.

    The logistic-regression baseline's metrics come from ``baselines.json`` beside the reports
    when evaluation wrote one; without it the baseline clause is recorded as not evaluated.
    """
    if report.fairness_path is None:
        raise DataError("the gate needs the fairness report; evaluation did not write one")
    fairness = FairnessReport.model_validate_json(report.fairness_path.read_text(encoding="utf-8"))
    candidate_groups = json.loads(report.groups_path.read_text(encoding="utf-8"))
    champion_groups = registry.champion_groups(settings, params.dataset.name)
    decision = gate_failures(
        params.gates,
        report.metrics,
        fairness,
        champion_groups,
        candidate_groups,
        baseline_metrics=_logistic_baseline(report.report_dir / layout.BASELINES_FILE),
    )
    write_json_atomic(out_dir / layout.DECISION, decision.model_dump(mode="json"))
    return decision


def _logistic_baseline(path: Path) -> dict[str, float] | None:
    """The logistic baseline's headline metrics from ``baselines.json``; None if not written."""
    if not path.is_file():
        return None
    written = json.loads(path.read_text(encoding="utf-8"))
    logistic = written.get(BASELINE) if isinstance(written, dict) else None
    if not isinstance(logistic, dict):
        raise DataError(f"{path} holds no '{BASELINE}' baseline")
    return {str(k): math.nan if v is None else float(v) for k, v in logistic.items()}


def compare_mitigations(
    manifest: ShardManifest,
    training: TrainingResult,
    params: RunParams,
    settings: EvenflowSettings,
    out_dir: Path,
) -> TradeoffFiles:
    """Train or fit every mitigation and write one trade-off table and plot.

    ``none`` and ``reweighing`` train on the cluster (reusing ``training`` where its method
    matches), ``threshold`` fits per-group thresholds on the unmitigated model's valid scores, and
    ``reductions`` fits Fairlearn's ExponentiatedGradient on one node on a train sample.
    """
    if manifest.cross_fitted:
        raise ConfigError(
            "--compare-mitigations needs a held-out test split, and this batch is cross-fitted "
            f"({manifest.plan.reason}); set evaluation.cross_fit_below_rows: 0 to hold one out"
        )
    method = params.mitigation.method
    compare_dir = out_dir / layout.MITIGATIONS_DIR
    plain = (
        training
        if method != "reweighing"
        else train(manifest, _with_method(params, "none"), settings, compare_dir / "none")
    )
    reweighed = (
        training
        if method == "reweighing"
        else train(
            manifest, _with_method(params, "reweighing"), settings, compare_dir / "reweighing"
        )
    )
    baseline = pd.read_parquet(plain.predictions_path)
    policy = mitigation.fit_threshold_policy(
        pd.read_parquet(plain.valid_predictions_path),
        manifest.sensitive,
        params.mitigation.model_copy(update={"method": "threshold"}),
        default_threshold=params.evaluation.threshold,
    )
    results = {
        "none": baseline,
        "reweighing": pd.read_parquet(reweighed.predictions_path),
        "threshold": mitigation.with_decisions(baseline, policy, params.mitigation.seed),
        "reductions": _reductions_predictions(manifest, params, baseline),
    }
    table = mitigation.compare_mitigations(
        results, manifest.sensitive, params.fairness, params.evaluation.threshold
    )
    return write_tradeoff(table, compare_dir)


def _with_method(params: RunParams, method: str) -> RunParams:
    return params.model_copy(
        update={"mitigation": params.mitigation.model_copy(update={"method": method})}
    )


def _reductions_predictions(
    manifest: ShardManifest, params: RunParams, baseline: pd.DataFrame
) -> pd.DataFrame:
    """Test predictions of ExponentiatedGradient, trained on a sample of train (one node)."""
    settings = params.mitigation.model_copy(update={"method": "reductions"})
    columns = list(
        dict.fromkeys([*(f.name for f in manifest.features), manifest.target, *manifest.sensitive])
    )
    train = sample_split(manifest, "train", settings.reductions_max_rows, columns, settings.seed)
    train[LABEL] = label_values(train[manifest.target], manifest.positive_label)
    model = reductions.fit_reductions(
        train, manifest.features, manifest.sensitive, settings, params.model
    )
    test = (
        pd.concat(
            [pd.read_parquet(path) for path in manifest.split_paths("test")], ignore_index=True
        )
        .set_index(manifest.row_id)
        .loc[baseline[manifest.row_id]]
    )
    return baseline.assign(
        **{
            SCORE: model.score(test),
            DECISION_COLUMN: model.decide(test, settings.seed),
        }
    )
