"""The stages of a training run as plain functions; Prefect tasks wrap them one to one.

Each stage takes and returns small records (paths, hashes, ids), never DataFrames, so a stage can
be cached on its inputs and re-run alone.
"""

from __future__ import annotations

import json
import logging
import math
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from evenflow.assess import baselines, drift, evaluation, explain, mitigation
from evenflow.assess.fairness import DECISION_COLUMN, Estimate, FairnessReport, fairness_report
from evenflow.config.run import DatasetSpec, RunParams
from evenflow.config.settings import EvenflowSettings
from evenflow.contracts import suite as contracts
from evenflow.contracts import validation
from evenflow.data import versioning
from evenflow.data.datasets import describe_batch, is_parquet, iter_chunks, load_batch
from evenflow.data.features import label_values, typed_features
from evenflow.data.sharding import (
    plan_split,
    shard_key,
    shipped_has_valid,
    time_cuts,
    write_shard_chunks,
)
from evenflow.errors import ConfigError, DataError
from evenflow.govern.gates import BASELINE, GateDecision, describe_failures, gate_failures
from evenflow.io import write_json_atomic, write_parquet_atomic, write_text_atomic
from evenflow.records import (
    EvalReport,
    FeatureSpec,
    ModelVersionRef,
    RawBatch,
    ShardInfo,
    ShardManifest,
    SplitPlan,
    SplitSummary,
    TrainingResult,
    ValidationReport,
)
from evenflow.registry import store as registry
from evenflow.reports.fairness_html import write_fairness_report
from evenflow.reports.mitigation_html import TradeoffFiles, write_tradeoff
from evenflow.reports.model_card import (
    DataSummary,
    DriftOverview,
    Lineage,
    ModelCardInputs,
    write_model_card,
)
from evenflow.serving import load_booster
from evenflow.training import crossfit
from evenflow.training.engine import (
    LABEL,
    SCORE,
    SampleWeights,
    dask_client,
    train_model,
)

logger = logging.getLogger(__name__)

THRESHOLD_POLICY_FILE = "threshold_policy.json"
BASELINES_FILE = "baselines.json"
BASELINE_GROUPS_FILE = "baseline_groups.json"
BASELINE_PREDICTIONS_FILE = "baseline_predictions.parquet"


def contract_path(settings: EvenflowSettings, spec: DatasetSpec) -> Path:
    """Where the dataset's expectation suite lives."""
    return contracts.contract_path(settings, spec.name)


def ensure_contract(spec: DatasetSpec, settings: EvenflowSettings) -> tuple[Path, bool]:
    """Return the dataset's suite, inferring a starter suite first if none exists (and say so).

    Inference streams over the batch's chunks, so a large parquet batch is never read whole.
    """
    path = contract_path(settings, spec)
    if path.is_file():
        return path, False
    chunks = iter_chunks(spec.path, spec.chunk_rows)
    contracts.write_suite(contracts.infer_suite_from_chunks(chunks, spec), path)
    return path, True


def batch_dir(settings: EvenflowSettings, dataset: str, raw_md5: str) -> Path:
    """Folder of one input batch under data/: its shards and, beside them, its validation."""
    return settings.data_root / dataset / raw_md5[:12]


def validate_batch(
    spec: DatasetSpec, settings: EvenflowSettings
) -> tuple[RawBatch, ValidationReport]:
    """Check the input file against its contract; the file is only read."""
    suite = contracts.load_suite(contract_path(settings, spec))
    if is_parquet(spec.path):
        # Out of core: validated chunk by chunk, the batch is never held whole.
        batch = describe_batch(spec)
        out_dir = batch_dir(settings, spec.name, batch.md5) / "validation"
        report = validation.validate_parquet(
            spec.path,
            suite,
            out_dir,
            dataset=spec.name,
            chunk_rows=spec.chunk_rows,
            workers=validation.worker_count(spec.validation_workers),
        )
        return batch, report
    batch, frame = load_batch(spec)
    out_dir = batch_dir(settings, spec.name, batch.md5) / "validation"
    return batch, validation.validate_frame(frame, suite, out_dir, dataset=spec.name)


def shard_directory(settings: EvenflowSettings, params: RunParams, batch: RawBatch) -> Path:
    """Where a batch's shards go: one folder per layout, so layouts never overwrite each other."""
    plan = plan_split(params.dataset, params.evaluation, batch.n_rows)
    return (
        batch_dir(settings, batch.dataset, batch.md5)
        / f"shards-{shard_key(params.split, params.shards, plan)}"
    )


def shard_and_version(
    params: RunParams, settings: EvenflowSettings, batch: RawBatch
) -> ShardManifest:
    """Split (or cut into folds) and shard the validated batch, version it with DVC, describe it."""
    spec = params.dataset
    batch_now = describe_batch(spec)
    if batch_now.md5 != batch.md5:
        raise DataError(f"{batch.path} changed after it was validated; run again")
    cuts = (
        time_cuts(
            (
                c[spec.time_column]
                for c in iter_chunks(spec.path, spec.chunk_rows, columns=[spec.time_column])
            ),
            params.split,
        )
        if spec.time_column
        else None
    )
    plan = plan_split(spec, params.evaluation, batch.n_rows, cuts)
    shard_dir = shard_directory(settings, params, batch)
    # Streamed: one chunk of rows is held at a time (a CSV arrives as one chunk).
    written = write_shard_chunks(
        iter_chunks(spec.path, spec.chunk_rows),
        spec,
        params.split,
        params.shards,
        shard_dir,
        plan=plan,
        has_valid=_ships_valid(spec, batch_now),
    )
    versioning.ensure_repo(settings.project_root, settings.dvc_remote)
    data_md5 = versioning.version_directory(settings.project_root, settings.data_root, shard_dir)
    return describe_shards(
        written.features,
        spec,
        raw_md5=batch.md5,
        data_md5=data_md5,
        shard_dir=shard_dir,
        shards=list(written.shards),
        plan=plan,
        split_report=written.report,
    )


def _ships_valid(spec: DatasetSpec, batch: RawBatch) -> bool | None:
    """Whether the batch's own split column names valid rows (None: no split column, or a CSV)."""
    column = spec.split_column
    if column is None or not is_parquet(spec.path):
        return None
    if column not in batch.columns:
        raise DataError(f"split column '{column}' is not in the data")
    chunks = iter_chunks(spec.path, spec.chunk_rows, columns=[column])
    return shipped_has_valid((chunk[column] for chunk in chunks), column)


def describe_shards(
    features: tuple[FeatureSpec, ...],
    spec: DatasetSpec,
    *,
    raw_md5: str,
    data_md5: str,
    shard_dir: Path,
    shards: list[ShardInfo],
    plan: SplitPlan | None = None,
    split_report: tuple[SplitSummary, ...] = (),
) -> ShardManifest:
    """The manifest of freshly written shards: hashes, shard list and the typed feature schema."""
    extra = {"plan": plan} if plan is not None else {}
    return ShardManifest(
        **extra,
        split_report=split_report,
        dataset=spec.name,
        raw_md5=raw_md5,
        data_md5=data_md5,
        shard_dir=shard_dir,
        shards=tuple(shards),
        features=features,
        target=spec.target,
        positive_label=spec.positive_label,
        sensitive=spec.sensitive,
    )


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
        counts.update(mitigation.cell_counts(labels, shard[column]))
    return SampleWeights(column=column, table=mitigation.reweighing_table(counts))


def evaluate(
    manifest: ShardManifest, training: TrainingResult, params: RunParams, out_dir: Path
) -> EvalReport:
    """Metrics overall and per group, fairness report, drift, and classification report.

    With ``mitigation.method: threshold`` the fairness report describes the decisions of per-group
    thresholds fitted on the valid split: the policy the registered model applies.
    """
    predictions = pd.read_parquet(training.predictions_path)
    report_dir = out_dir / "reports"
    policy_path = None
    if params.mitigation.method == "threshold":
        policy = mitigation.fit_threshold_policy(
            pd.read_parquet(training.valid_predictions_path),
            manifest.sensitive,
            params.mitigation,
            default_threshold=params.evaluation.threshold,
        )
        policy_path = write_text_atomic(report_dir / THRESHOLD_POLICY_FILE, policy.to_json())
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
    fairness_files = write_fairness_report(fairness, report_dir / "fairness")
    write_baselines(manifest, params, report_dir)
    drift_path = None
    if manifest.cross_fitted:
        # Folds are random draws of one batch: a train-vs-test drift report would say nothing.
        logger.info("cross-fitted: no train-vs-test drift report (the folds share one batch)")
    else:
        drift_summary = _drift(manifest, params, report_dir)
        drift_path = write_json_atomic(
            report_dir / "drift_summary.json", drift_summary.model_dump(mode="json")
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
    write_parquet_atomic(frame, report_dir / BASELINE_PREDICTIONS_FILE)
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
            evaluation.group_metrics(
                scored, manifest.sensitive, params.evaluation.threshold, params.fairness
            )
        )
    write_json_atomic(report_dir / BASELINE_GROUPS_FILE, groups)
    return write_json_atomic(report_dir / BASELINES_FILE, summary)


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
    proxies = explain.proxy_check(typed_features(train, others), train[sensitive], seed)
    return explain.write_explanations(
        shap, features, summary, proxies, out_dir / "explanations", seed=seed
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
        baseline_metrics=_logistic_baseline(report.report_dir / BASELINES_FILE),
    )
    write_json_atomic(out_dir / "gate" / "decision.json", decision.model_dump(mode="json"))
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
    compare_dir = out_dir / "mitigations"
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
    model = mitigation.fit_reductions(
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


def input_example(
    manifest: ShardManifest, n_rows: int = 5, *, decision_columns: tuple[str, ...] = ()
) -> pd.DataFrame:
    """A few raw test rows in the data's own dtypes: the input example, hence the signature.

    ``decision_columns`` are inputs the model decides with but does not score with (the group of
    a threshold policy when sensitive columns are not features): MLflow drops any column the
    signature does not name, which would silently switch the policy off.
    """
    features = [f.name for f in manifest.features]
    columns = features + [c for c in decision_columns if c not in features]
    first = manifest.split_paths(manifest.evaluated_split)[0]
    return pd.read_parquet(first, columns=columns).head(n_rows)


def write_manifest(manifest: ShardManifest, out_dir: Path) -> Path:
    """Write the manifest as JSON for the run's artifacts."""
    return write_json_atomic(out_dir / "manifest.json", manifest.model_dump(mode="json"))


def register(
    settings: EvenflowSettings,
    run_id: str,
    *,
    params: RunParams,
    manifest: ShardManifest,
    training: TrainingResult,
    report: EvalReport,
    decision: GateDecision,
    tags: dict[str, str],
) -> ModelVersionRef:
    """Register the model with lineage and gate tags; only a model that passed becomes candidate."""
    gate_tags = {
        registry.GATE_TAG: "passed" if decision.passed else "failed",
        registry.GATE_FAILED_TAG: "; ".join(c.name for c in decision.failed),
    }
    return registry.register_model(
        settings,
        run_id,
        model_name=params.dataset.name,
        training=training,
        manifest=manifest,
        input_example=input_example(
            manifest,
            decision_columns=(manifest.sensitive if report.threshold_policy_path else ()),
        ),
        threshold=params.evaluation.threshold,
        threshold_policy=report.threshold_policy_path,
        tags={**tags, **gate_tags},
        candidate=decision.passed,
    )


def write_card(
    params: RunParams,
    *,
    version: ModelVersionRef,
    manifest: ShardManifest,
    validation_report: ValidationReport,
    report: EvalReport,
    explanations: explain.ExplanationFiles,
    decision: GateDecision,
    tags: dict[str, str],
    out_dir: Path,
    tradeoff: TradeoffFiles | None = None,
) -> tuple[Path, Path]:
    """Write the version's model card (HTML and Markdown) from the run's own records."""
    fairness = (
        FairnessReport.model_validate_json(report.fairness_path.read_text(encoding="utf-8"))
        if report.fairness_path
        else None
    )
    drift_summary = (
        drift.DriftSummary.model_validate_json(report.drift_path.read_text(encoding="utf-8"))
        if report.drift_path
        else None
    )
    inputs = ModelCardInputs(
        model_name=version.name,
        model_version=version.version,
        run_id=version.run_id,
        intended_use=params.model_card.intended_use,
        out_of_scope_use=params.model_card.out_of_scope_use,
        data=DataSummary(
            dataset=manifest.dataset,
            data_md5=manifest.data_md5,
            rows={s.name: s.rows for s in manifest.split_report}
            or {s: manifest.split_rows(s) for s in ("train", "valid", "test")},
            evaluation=(
                f"out-of-fold predictions of every row ({manifest.plan.reason})"
                if manifest.cross_fitted
                else f"the held-out test split ({manifest.plan.reason})"
            ),
            validation=validation_report,
        ),
        metrics=_metrics_with_intervals(report.metrics, fairness),
        baselines=_baseline_estimates(report.report_dir / BASELINES_FILE),
        threshold=params.evaluation.threshold,
        fairness=fairness,
        fairness_html=report.fairness_path.with_name("fairness.html")
        if report.fairness_path
        else None,
        mitigation=params.mitigation.method,
        tradeoff=_tradeoff_rows(tradeoff),
        tradeoff_plot=tradeoff.png_path if tradeoff else None,
        drift=DriftOverview.from_summary(drift_summary) if drift_summary else None,
        explanations=explain.read_explanations(explanations.json_path),
        shap_plots=(explanations.summary_plot_path, explanations.group_plot_path),
        lineage=Lineage.from_tags(tags),
        gate=decision,
    )
    return write_model_card(inputs, out_dir / "model_card")


def _baseline_estimates(path: Path) -> dict[str, dict[str, object]]:
    """Each baseline's headline metrics as estimates for the card; empty when none were fitted."""
    if not path.is_file():
        return {}
    written = json.loads(path.read_text(encoding="utf-8"))
    return {
        name: {
            metric: {
                "value": _finite(value),
                "low": _finite(figures.get(f"{metric}_low")),
                "high": _finite(figures.get(f"{metric}_high")),
            }
            for metric, value in figures.items()
            if not metric.endswith(("_low", "_high"))
        }
        for name, figures in written.items()
    }


def _metrics_with_intervals(
    metrics: dict[str, float], fairness: FairnessReport | None
) -> dict[str, object]:
    """Overall metrics as estimates, for the card.

    Headline metrics carry their own bootstrap bounds (``<name>_low`` / ``<name>_high``); other
    rates take the fairness report's overall interval where it has the same rate.
    """
    bounds = {f"{name}_{end}" for name in metrics for end in ("low", "high")}
    out: dict[str, object] = {}
    for name, value in metrics.items():
        if name in bounds:
            continue
        if f"{name}_low" in metrics or fairness is None:
            out[name] = {
                "value": _finite(value),
                "low": _finite(metrics.get(f"{name}_low")),
                "high": _finite(metrics.get(f"{name}_high")),
            }
            continue
        estimate = getattr(fairness.overall, name, None)
        out[name] = estimate if isinstance(estimate, Estimate) else value
    return out


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def _tradeoff_rows(tradeoff: TradeoffFiles | None) -> list[dict[str, object]] | None:
    if tradeoff is None:
        return None
    rows: list[dict[str, object]] = json.loads(tradeoff.json_path.read_text(encoding="utf-8"))[
        "rows"
    ]
    return rows


def version_description(
    version: ModelVersionRef,
    report: EvalReport,
    decision: GateDecision,
    card_artifact: str,
    *,
    cross_fitted: bool = False,
) -> str:
    """What a reviewer sees first in the MLflow UI: the gate outcome, key figures, the card."""
    outcome = "passed its gates" if decision.passed else "FAILED its gates (not a candidate)"
    lines = [
        f"**{version.name} v{version.version} {outcome}.**",
        "",
        f"{'Out-of-fold' if cross_fitted else 'Test'} ROC AUC {report.metrics['roc_auc']:.4f}, "
        f"accuracy {report.metrics['accuracy']:.4f}.",
        "",
        *[f"- failed: {line}" for line in describe_failures(decision)],
        "",
        f"Model card: artifact `{card_artifact}` of run `{version.run_id}` "
        "(HTML and Markdown; fairness by group with intervals, SHAP, proxy check, lineage).",
    ]
    return "\n".join(lines)
