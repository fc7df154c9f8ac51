"""Monitoring stages: resolve the model, validate the batch, restore the reference, assess, record."""

from __future__ import annotations

from pathlib import Path

from prefect import get_run_logger, task
from prefect.runtime import flow_run

from evenflow import layout
from evenflow.config.monitor import MonitorParams
from evenflow.config.settings import EvenflowSettings
from evenflow.contracts import suite as contracts
from evenflow.data.datasets import read_table
from evenflow.errors import DataError
from evenflow.govern import lineage
from evenflow.govern.monitoring import MonitoredModel, MonitoringReport, drift_metrics
from evenflow.records import RawBatch, ValidationReport
from evenflow.registry import store as registry
from evenflow.reports.monitoring_html import write_monitoring_html
from evenflow.usecases import champion
from evenflow.usecases import monitor as monitoring
from tasks.isolation import run_dir
from tasks.progress import stage
from tasks.tracking import open_run


def experiment_name(params: MonitorParams) -> str:
    """The MLflow experiment of a dataset's monitoring runs."""
    return f"{params.dataset}-monitoring"


def _out_dir(settings: EvenflowSettings, run_id: str) -> Path:
    return run_dir(settings, run_id) / layout.MONITORING_DIR


@task(name="start-monitoring")
def start_monitoring(params: MonitorParams, settings: EvenflowSettings) -> str:
    """Create the monitoring run in ``<dataset>-monitoring`` with code lineage and the policy."""
    code = lineage.code_version(settings.code_root)
    tags = {
        **lineage.lineage_tags("pending", code, params.params_hash(), str(flow_run.get_id())),
        layout.MODEL_NAME_TAG: params.model_name,
        layout.MODEL_ALIAS_TAG: params.alias,
    }
    run_name = f"{params.dataset}-monitor-{str(flow_run.get_name() or 'local')}"
    run_id = open_run(settings, experiment_name(params), run_name, tags)
    registry.log_params(settings, run_id, params.model_dump(mode="json"))
    return run_id


@task(name="resolve-model")
def resolve_model(params: MonitorParams, settings: EvenflowSettings, run_id: str) -> MonitoredModel:
    """Find the version behind the alias and tag the run with it and its reference data md5.

    A ``champion`` that the promotion ledger did not set is refused before anything is tagged.
    """
    with stage("model", f"{params.model_name}@{params.alias}") as done:
        model = monitoring.resolve_model(settings, params.model_name, params.alias)
        champion.guard_alias(settings, model.name, model.alias, model.version)
        registry.set_tags(
            settings,
            run_id,
            {
                layout.MODEL_VERSION_TAG: model.version,
                layout.REFERENCE_DATA_MD5_TAG: model.data_md5,
                layout.DATA_MD5_TAG: model.data_md5,
                layout.MODEL_RUN_ID_TAG: model.run_id,
            },
        )
        done.summary = f"{model.name} version {model.version}, reference data {model.data_md5}"
    return model


@task(name="validate-monitoring-batch")
def validate_batch(
    params: MonitorParams, settings: EvenflowSettings, model: MonitoredModel, run_id: str
) -> tuple[RawBatch, ValidationReport, tuple[str, ...]]:
    """Validate the batch against expectations/NAME.json; label expectations skipped if absent."""
    suite_path = contracts.contract_path(settings, params.dataset)
    with stage("validate", f"{params.data.name} against {suite_path.name}") as done:
        suite = contracts.load_suite(suite_path)
        out_dir = _out_dir(settings, run_id).parent / layout.VALIDATION_DIR
        batch, report, skipped = monitoring.validate_batch(
            params.data, suite, model, out_dir, dataset=params.dataset
        )
        registry.set_tags(settings, run_id, {layout.BATCH_MD5_TAG: batch.md5})
        outcome = "passed" if report.success else f"{len(report.failures)} failed"
        done.summary = (
            f"{report.n_rows:,} rows, {report.n_expectations} expectations, {outcome}"
            + (f", {len(skipped)} skipped (no such column)" if skipped else "")
        )
    return batch, report, skipped


@task(name="restore-reference")
def restore_reference(
    settings: EvenflowSettings, model: MonitoredModel, params: MonitorParams
) -> str:
    """The model's train split, restored by its DVC md5 and sampled, as a parquet path."""
    with stage("reference", f"data {model.data_md5} of {model.name} v{model.version}") as done:
        path = monitoring.reference_sample(
            settings, model, params.drift.max_rows, params.drift.seed
        )
        done.summary = f"sample at {path.name}"
    return str(path)


@task(name="assess-batch")
def assess_batch(
    params: MonitorParams,
    settings: EvenflowSettings,
    run_id: str,
    *,
    model: MonitoredModel,
    batch: RawBatch,
    validation_report: ValidationReport,
    skipped: tuple[str, ...],
    reference_path: str,
) -> MonitoringReport:
    """Drift per column and of the predictions; with labels, performance and fairness deltas."""
    with stage("assess", f"{batch.n_rows:,} rows vs {model.name} v{model.version}") as done:
        batch_now, frame = monitoring.load_monitoring_batch(params.data, params.dataset)
        if batch_now.md5 != batch.md5:
            raise DataError(f"{batch.path} changed after it was validated; run again")
        out_dir = _out_dir(settings, run_id)
        report = monitoring.assess(
            frame,
            read_table(Path(reference_path)),
            batch=batch,
            model=model,
            policy=params.drift,
            scorer=monitoring.load_scorer(model),
            champion=monitoring.champion_evaluation(settings, model),
            out_dir=out_dir,
            validation_report=validation_report,
            skipped_expectations=skipped,
        )
        html = write_monitoring_html(report, out_dir)
        report = report.model_copy(update={"html_path": html})
        d = report.drift
        done.summary = (
            f"{len(d.drifted_columns)} of {len(d.columns)} columns drifted "
            f"{list(d.drifted_columns)}, prediction {d.prediction.statistic} "
            f"{d.prediction.value:.4f}"
            + (
                f", batch AUC {_auc(report):.4f}"
                if report.performance is not None and _auc(report) is not None
                else ""
            )
        )
    return report


def _auc(report: MonitoringReport) -> float | None:
    perf = report.performance
    found = next((m for m in perf.metrics if m.name == "roc_auc"), None) if perf else None
    return None if found is None else found.value


@task(name="record-monitoring")
def record_monitoring(settings: EvenflowSettings, run_id: str, report: MonitoringReport) -> None:
    """Log the figures, the HTML and JSON reports, and the verdict with the monitoring run."""
    registry.log_metrics(settings, run_id, drift_metrics(report))
    registry.log_artifact(settings, run_id, _out_dir(settings, run_id), layout.MONITORING_DIR)
    registry.set_tags(
        settings,
        run_id,
        {
            layout.MONITORING_TAG: "passed" if report.passed else "drift",
            layout.DRIFTED_COLUMNS_TAG: ",".join(report.drift.drifted_columns)[:4000],
            layout.LABELLED_TAG: str(report.labelled).lower(),
        },
    )
    if not report.passed:
        get_run_logger().error("✖ drift: %s", "; ".join(report.breaches))


@task(name="record-retraining")
def record_retraining(settings: EvenflowSettings, run_id: str, outcome: str) -> None:
    """Note on the monitoring run what the triggered retraining produced."""
    registry.set_tags(settings, run_id, {layout.RETRAINING_TAG: outcome[:4000]})
