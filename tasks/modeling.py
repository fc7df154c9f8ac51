"""Model stages: distributed training, evaluation and registration."""

from __future__ import annotations

from prefect import task
from prefect.runtime import flow_run

from evenflow import lineage, pipeline, registry
from evenflow.params import RunParams
from evenflow.records import EvalReport, ModelVersionRef, ShardManifest, TrainingResult
from evenflow.settings import EvenflowSettings
from tasks.progress import stage


@task(name="train-model")
def train_model(
    manifest: ShardManifest, params: RunParams, settings: EvenflowSettings, run_id: str
) -> TrainingResult:
    """Train XGBoost on Dask with early stopping on the valid split."""
    where = settings.dask_address or f"local cluster of {params.cluster.n_workers} workers"
    with stage("train", f"xgboost on {where}, device {params.model.device}") as done:
        result = pipeline.train(manifest, params, settings, settings.state_dir / "runs" / run_id)
        registry.log_metrics(
            settings,
            run_id,
            {
                "valid_auc": result.valid_auc,
                "best_iteration": result.best_iteration,
                "train_seconds": result.train_seconds,
            },
        )
        registry.set_tags(
            settings,
            run_id,
            {
                "evenflow.device": result.device,
                "evenflow.device_reason": result.device_reason,
                "evenflow.n_workers": str(result.n_workers),
            },
        )
        registry.log_json(
            settings, run_id, result.partition_workers, "training/partition_workers.json"
        )
        registry.log_json(settings, run_id, result.params, "training/booster_params.json")
        done.summary = (
            f"best iteration {result.best_iteration}, valid AUC {result.valid_auc:.4f} "
            f"on {result.device} ({result.device_reason})"
        )
    return result


@task(name="evaluate-model")
def evaluate_model(
    manifest: ShardManifest,
    training: TrainingResult,
    params: RunParams,
    settings: EvenflowSettings,
    run_id: str,
) -> EvalReport:
    """Evaluate on the test split; log metrics, group metrics, reports and predictions."""
    with stage("evaluate", f"{manifest.split_rows('test'):,} test rows") as done:
        report = pipeline.evaluate(manifest, training, params, settings.state_dir / "runs" / run_id)
        registry.log_metrics(settings, run_id, {f"test_{k}": v for k, v in report.metrics.items()})
        registry.log_artifact(settings, run_id, report.report_dir, "reports")
        registry.log_artifact(settings, run_id, report.predictions_path, "predictions")
        done.summary = (
            f"test AUC {report.metrics['roc_auc']:.4f}, accuracy {report.metrics['accuracy']:.4f}"
        )
    return report


@task(name="register-model")
def register_model(
    params: RunParams,
    settings: EvenflowSettings,
    run_id: str,
    manifest: ShardManifest,
    training: TrainingResult,
) -> ModelVersionRef:
    """Register the model with lineage tags on run and version; alias it ``candidate``."""
    with stage("register", f"model '{params.dataset.name}'") as done:
        code = lineage.code_version(settings.code_root)
        tags = lineage.lineage_tags(
            manifest.data_md5, code, params.params_hash(), str(flow_run.get_id())
        )
        registry.set_tags(settings, run_id, tags)
        version = pipeline.register(
            settings, run_id, params=params, manifest=manifest, training=training, tags=tags
        )
        done.summary = f"{version.name} version {version.version} (alias candidate), run {run_id}"
    return version
