"""Model stages: distributed training, evaluation, explanation, gate and registration."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from prefect import Task, get_run_logger, task
from prefect.client.schemas.objects import State, TaskRun
from prefect.runtime import flow_run

from evenflow import layout
from evenflow.assess import explain
from evenflow.config.run import RunParams
from evenflow.config.settings import EvenflowSettings
from evenflow.errors import GateFailed
from evenflow.govern import lineage
from evenflow.govern.gates import GateDecision, describe_failures
from evenflow.records import (
    EvalReport,
    ModelVersionRef,
    ShardManifest,
    TrainingResult,
    ValidationReport,
)
from evenflow.registry import store as registry
from evenflow.reports.mitigation_html import TradeoffFiles
from evenflow.training.failures import is_infrastructure_failure
from evenflow.usecases import register
from evenflow.usecases import train as pipeline
from tasks.caching import Inputs, StageCache, digest
from tasks.isolation import project_lock, publish, published, run_dir, run_work_dir
from tasks.progress import stage

# The core module each cached stage calls: its import closure is the code in the stage's key.
ENTRY = pipeline.__name__


def _train_inputs(inputs: Inputs) -> dict[str, str]:
    manifest: ShardManifest = inputs["manifest"]
    params: RunParams = inputs["params"]
    settings: EvenflowSettings = inputs["settings"]
    weighting = params.mitigation if params.mitigation.method == "reweighing" else "unweighted"
    return {
        "data": manifest.data_md5,
        "params": digest(params.model, params.cluster, weighting),
        "cluster": settings.dask_address or "local",
    }


def _evaluate_inputs(inputs: Inputs) -> dict[str, str]:
    params: RunParams = inputs["params"]
    return {
        "training": digest(inputs["training"]),
        "params": digest(params.evaluation, params.fairness, params.mitigation),
    }


def _explain_inputs(inputs: Inputs) -> dict[str, str]:
    return {"training": digest(inputs["training"]), "params": digest(inputs["params"].explain)}


# Each file named in ``done`` is written last by its stage: a failed attempt never counts as done.
TRAIN = StageCache("train", ENTRY, _train_inputs, done=(layout.VALID_PREDICTIONS_FILE,))
EVALUATE = StageCache("evaluate", ENTRY, _evaluate_inputs, done=(layout.METRICS,))
EXPLAIN = StageCache("explain", ENTRY, _explain_inputs, done=(layout.EXPLANATIONS,))

TRAIN_RETRIES = 2


def retry_on_infrastructure(task: Task[Any, Any], task_run: TaskRun, state: State[Any]) -> bool:
    """Retry a failed attempt only for a lost worker or connection, never a code or data error."""
    try:
        error = state.result(raise_on_failure=False)
    except Exception:
        return False
    retry = isinstance(error, BaseException) and is_infrastructure_failure(error)
    kind = "infrastructure" if retry else "code or data"
    get_run_logger_safe().warning(
        "%s failed (%s error: %s): %s",
        task.name,
        kind,
        type(error).__name__,
        "retrying, resuming from the last checkpoint" if retry else "not retrying",
    )
    return retry


def get_run_logger_safe() -> logging.Logger | logging.LoggerAdapter[logging.Logger]:
    """The run logger inside a run, else this module's logger."""
    try:
        return get_run_logger()
    except Exception:
        return logging.getLogger(__name__)


@TRAIN.task(
    "train-model",
    retries=TRAIN_RETRIES,
    retry_delay_seconds=[2, 10],  # backoff: a loaded machine gets time to settle
    retry_condition_fn=retry_on_infrastructure,
)
def train_model(
    manifest: ShardManifest, params: RunParams, settings: EvenflowSettings
) -> TrainingResult:
    """Train XGBoost on Dask with early stopping on the valid split."""
    where = settings.dask_address or f"local cluster of {params.cluster.n_workers} workers"
    weighting = ", reweighed" if params.mitigation.method == "reweighing" else ""
    shared = TRAIN.out_dir({"manifest": manifest, "params": params, "settings": settings})
    # The stage's lock is held (StageCache.task): a run that waited finds the result published.
    with stage(
        "train", f"{params.model.trainer} on {where}, device {params.model.device}{weighting}"
    ) as done:
        finished = published(shared, TrainingResult)
        if finished is not None:
            done.summary = "the same training was finished by another run meanwhile: reused"
            return finished
        # Checkpoints live in this flow run's folder: its retries resume, other runs never do.
        work = run_work_dir(settings, "train")
        result = publish(work, shared, pipeline.train(manifest, params, settings, work))
        resumed = (
            f", resumed at round {result.resumed_from_round} (rounds not redone)"
            if result.resumed_from_round
            else ""
        )
        chosen = (
            f"{len(result.fold_best_iterations)} fold models (best rounds "
            f"{', '.join(str(i + 1) for i in result.fold_best_iterations)}), refit on every row "
            f"for {result.best_iteration + 1} rounds, mean fold valid AUC {result.valid_auc:.4f}"
            if result.fold_best_iterations
            else f"best iteration {result.best_iteration}, valid AUC {result.valid_auc:.4f}"
        )
        done.summary = f"{chosen} on {result.device} ({result.device_reason}){resumed}"
    return result


@task(name="record-training")
def record_training(settings: EvenflowSettings, run_id: str, result: TrainingResult) -> None:
    """Log training figures, device, and which worker read which shard."""
    registry.log_metrics(
        settings,
        run_id,
        {
            "valid_auc": result.valid_auc,
            "best_iteration": result.best_iteration,
            "train_seconds": result.train_seconds,
            "training.rounds_saved_by_checkpoint": result.resumed_from_round,
        },
    )
    registry.set_tags(
        settings,
        run_id,
        {
            layout.DEVICE_TAG: result.device,
            layout.DEVICE_REASON_TAG: result.device_reason,
            layout.N_WORKERS_TAG: str(result.n_workers),
        },
    )
    registry.log_json(settings, run_id, result.partition_workers, layout.PARTITION_WORKERS)
    registry.log_json(settings, run_id, result.params, layout.BOOSTER_PARAMS)
    if result.fold_best_iterations:
        registry.log_json(
            settings,
            run_id,
            {
                "fold_best_iterations": list(result.fold_best_iterations),
                "refit_rounds": result.best_iteration + 1,
                "rule": "median of the folds' best rounds",
            },
            layout.CROSS_FIT,
        )


@EVALUATE.task("evaluate-model")
def evaluate_model(
    manifest: ShardManifest, training: TrainingResult, params: RunParams, settings: EvenflowSettings
) -> EvalReport:
    """Evaluate on the test split: metrics, groups, fairness with intervals, drift."""
    out_dir = EVALUATE.out_dir({"training": training, "params": params, "settings": settings})
    where = (
        f"{manifest.evaluated_rows:,} rows out of fold ({manifest.plan.folds}-fold cross-fitting)"
        if manifest.cross_fitted
        else f"{manifest.evaluated_rows:,} test rows"
    )
    with stage("evaluate", where) as done:
        report = pipeline.evaluate(manifest, training, params, out_dir)
        done.summary = (
            f"{'out-of-fold' if manifest.cross_fitted else 'test'} AUC "
            f"{report.metrics['roc_auc']:.4f}, accuracy {report.metrics['accuracy']:.4f}"
        )
    return report


@task(name="record-evaluation")
def record_evaluation(settings: EvenflowSettings, run_id: str, report: EvalReport) -> None:
    """Log test metrics, fairness figures, reports and predictions with the run.

    Each headline metric is logged with its bootstrap bounds: ``test_<metric>``,
    ``test_<metric>_low`` and ``test_<metric>_high`` (undefined values are skipped). Fairness
    summaries and reported groups' rates follow ``fairness.<slice>.…`` with ``.low`` / ``.high``
    (:mod:`evenflow.layout`), so the MLflow UI charts them across runs.
    """
    registry.log_metrics(settings, run_id, {f"test_{k}": v for k, v in report.metrics.items()})
    register.log_fairness(settings, run_id, report)
    registry.log_artifact(settings, run_id, report.report_dir, layout.REPORTS_DIR)
    registry.log_artifact(settings, run_id, report.predictions_path, layout.PREDICTIONS_DIR)


@EXPLAIN.task("explain-model")
def explain_model(
    manifest: ShardManifest, training: TrainingResult, params: RunParams, settings: EvenflowSettings
) -> explain.ExplanationFiles:
    """TreeSHAP summary (overall and per group) and the proxy check."""
    out_dir = EXPLAIN.out_dir({"training": training, "params": params, "settings": settings})
    rows = "rows" if manifest.cross_fitted else "test rows"
    with stage("explain", f"TreeSHAP on up to {params.explain.shap_rows:,} {rows}") as done:
        files = pipeline.explain_model(manifest, training, params, out_dir)
        proxies = explain.read_explanations(files.json_path).proxies
        done.summary = "proxy AUC " + ", ".join(
            f"{k} {v.auc:.3f}" if v.auc is not None else f"{k} n/a" for k, v in proxies.items()
        )
    return files


@task(name="record-explanations")
def record_explanations(
    settings: EvenflowSettings, run_id: str, files: explain.ExplanationFiles
) -> None:
    """Log the explanation JSON and plots with the run."""
    registry.log_artifact(settings, run_id, files.json_path.parent, layout.EXPLANATIONS_DIR)


@task(name="compare-mitigations")
def compare_mitigations(
    manifest: ShardManifest,
    training: TrainingResult,
    params: RunParams,
    settings: EvenflowSettings,
    run_id: str,
) -> TradeoffFiles:
    """Train every mitigation and log one trade-off table and plot with the run."""
    with stage("compare", "mitigations none, reweighing, threshold, reductions") as done:
        files = pipeline.compare_mitigations(
            manifest, training, params, settings, run_dir(settings, run_id)
        )
        for path in (files.json_path, files.html_path, files.png_path):
            registry.log_artifact(settings, run_id, path, layout.MITIGATIONS_DIR)
        done.summary = f"trade-off table at {files.html_path.name}"
    return files


def _gate_plan(params: RunParams) -> str:
    """The gate's clauses in a few words, for the stage line."""
    gates = params.gates
    bound = " (lower bound)" if gates.use_interval_bound == "upper" else ""
    parts = [f"AUC ≥ {gates.min_auc}{bound}"]
    if gates.min_auc_lower_bound is not None:
        parts.append(f"AUC lower bound > {gates.min_auc_lower_bound}")
    if gates.max_auc_below_baseline is not None:
        parts.append(f"AUC at most {gates.max_auc_below_baseline} below the logistic baseline")
    parts.append(f"{len(gates.max_disparity) + len(gates.min_ratio)} fairness limits")
    return ", ".join(parts)


@task(name="gate-model")
def gate_model(
    params: RunParams, settings: EvenflowSettings, report: EvalReport, run_id: str
) -> GateDecision:
    """Decide, by the configured policy, whether the model may become a candidate."""
    with stage("gate", _gate_plan(params)) as done:
        decision = pipeline.gate(params, settings, report, run_dir(settings, run_id))
        registry.log_json(settings, run_id, decision.model_dump(mode="json"), layout.DECISION)
        registry.set_tags(settings, run_id, register.gate_tags(decision))
        done.summary = (
            f"passed {len(decision.clauses)} clauses"
            if decision.passed
            else f"FAILED {len(decision.failed)} of {len(decision.clauses)} clauses: "
            + ", ".join(c.name for c in decision.failed)
        )
    return decision


@dataclass(frozen=True)
class RunEvidence:
    """What a training run found, as registration and the model card read it."""

    manifest: ShardManifest
    training: TrainingResult
    report: EvalReport
    validation: ValidationReport
    explanations: explain.ExplanationFiles
    decision: GateDecision
    tradeoff: TradeoffFiles | None = None
    """The mitigation trade-off table, when the run compared mitigations."""


@task(name="register-model")
def register_model(
    params: RunParams,
    settings: EvenflowSettings,
    run_id: str,
    evidence: RunEvidence,
    *,
    force: bool = False,
) -> ModelVersionRef:
    """Register the model with lineage tags and its model card; alias ``candidate`` if it passed.

    When a version of the model already holds this build (same data, parameters, clean commit and
    environment), nothing is registered: the run is tagged with that version, which is returned
    (and a version that failed its gates fails this run the same way). ``force`` registers anyway.
    """
    decision = evidence.decision
    # One registration of a model at a time in a project: two runs of one build register once.
    with (
        stage("register", f"model '{params.dataset.name}'") as done,
        project_lock(settings, f"register-{params.dataset.name}"),
    ):
        code = lineage.code_version(settings.code_root)
        tags = lineage.lineage_tags(
            evidence.manifest.data_md5, code, params.params_hash(), str(flow_run.get_id())
        )
        registry.set_tags(settings, run_id, tags)
        existing = None if force else _same_build(settings, params.dataset.name, tags, decision)
        if existing is not None:
            version, held_tags = existing
            uri = f"models:/{version.name}/{version.version}"
            registry.set_tags(settings, run_id, {layout.EXISTING_VERSION_TAG: uri})
            done.summary = (
                f"nothing new: {version.name} version {version.version} already holds this "
                "data, parameters, code and environment (use --force to register anyway)"
            )
        else:
            version = _register_new(params, settings, run_id, evidence, tags)
            alias = "alias candidate" if version.aliases else "NOT a candidate: gates failed"
            done.summary = f"{version.name} version {version.version} ({alias}), run {run_id}"
        facts = register.review_facts(
            settings,
            run_id,
            params=params,
            manifest=evidence.manifest,
            report=evidence.report,
            decision=decision,
            version=version,
        )
        register.describe(settings, facts, version=existing is None)
    if existing is not None and held_tags.get(layout.GATE_TAG) == "failed":
        held_failures = held_tags.get(layout.GATE_FAILED_TAG, "").split("; ")
        raise GateFailed(
            f"{version.name} version {version.version} failed its gates and is not a candidate",
            describe_failures(decision) or [f"{name}: failed" for name in held_failures],
        )
    return version


def _register_new(
    params: RunParams,
    settings: EvenflowSettings,
    run_id: str,
    evidence: RunEvidence,
    tags: dict[str, str],
) -> ModelVersionRef:
    """Register a new version and write its model card (described by the caller)."""
    manifest, report, decision = evidence.manifest, evidence.report, evidence.decision
    version = register.register(
        settings,
        run_id,
        params=params,
        manifest=manifest,
        training=evidence.training,
        report=report,
        decision=decision,
        tags=tags,
    )
    html, _ = register.write_card(
        params,
        version=version,
        manifest=manifest,
        validation_report=evidence.validation,
        report=report,
        explanations=evidence.explanations,
        decision=decision,
        tags=tags,
        out_dir=run_dir(settings, run_id),
        tradeoff=evidence.tradeoff,
    )
    registry.log_artifact(settings, run_id, html.parent, layout.MODEL_CARD_DIR)
    return version


def _same_build(
    settings: EvenflowSettings, model_name: str, tags: dict[str, str], decision: GateDecision
) -> tuple[ModelVersionRef, dict[str, str]] | None:
    """The newest version of the model built from the same data, parameters, code and environment.

    A version that passed its gates is not reused by a run whose gate now fails (the champion it is
    compared with changed): that run registers its own version, with the failure on record.
    """
    lookup = {name: tags[name] for name in (*layout.BUILD_TAGS, layout.GIT_DIRTY_TAG)}
    for ref, found in registry.versions_tagged(settings, model_name, lookup):
        gate_now_fails = found.get(layout.GATE_TAG) == "passed" and not decision.passed
        if lineage.same_build(tags, found) and not gate_now_fails:
            return ref.model_copy(update={"existing": True}), found
    return None
