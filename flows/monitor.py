"""The monitoring flow: validate a new batch → restore the model's reference → drift → performance."""

from __future__ import annotations

from prefect import flow, get_run_logger

from evenflow.config.monitor import MonitorParams
from evenflow.config.run import RunParams
from evenflow.config.settings import EvenflowSettings
from evenflow.errors import EvenflowError
from evenflow.govern.monitoring import MonitoringReport
from evenflow.usecases.monitor import breach_error
from flows.train_and_register import train_and_register
from tasks.artifacts import publish_monitoring, publish_validation
from tasks.data import record_validation
from tasks.monitoring import (
    assess_batch,
    record_monitoring,
    record_retraining,
    resolve_model,
    restore_reference,
    start_monitoring,
    validate_batch,
)
from tasks.tracking import finish_tracking


@flow(name="monitor")
def monitor_batch(params: MonitorParams) -> MonitoringReport:
    """Check a new batch against the model behind an alias (``champion`` by default).

    Stages: the batch is validated against its contract (label expectations skipped when it
    has no labels); the model's own training data is restored by its DVC md5 as the reference;
    every feature's drift is measured with the policy's statistic and threshold, and the
    model's score distribution on both; with labels, performance and fairness per group are
    compared with the model's logged evaluation. Everything is logged to the MLflow experiment
    ``<dataset>-monitoring``. Drift beyond the policy fails the run, naming each drifted column
    with its statistic, value and threshold, after training a new candidate if ``retrain`` is on.
    """
    settings = EvenflowSettings()
    run_id = start_monitoring(params, settings)
    try:
        model = resolve_model(params, settings, run_id)
        # Validate: a batch that breaks its contract stops here.
        batch, validation_report, skipped = validate_batch(params, settings, model, run_id)
        publish_validation(params.dataset, validation_report)
        record_validation(settings, run_id, validation_report)
        # Reference: the data this model version was trained on, pinned by its DVC md5.
        reference = restore_reference(settings, model, params)
        # Drift, prediction drift and, with labels, performance and fairness deltas.
        report = assess_batch(
            params,
            settings,
            run_id,
            model=model,
            batch=batch,
            validation_report=validation_report,
            skipped=skipped,
            reference_path=reference,
        )
        record_monitoring(settings, run_id, report)
        publish_monitoring(report)
        # Decide: drift beyond the policy fails the run (after retraining, if configured).
        if not report.passed:
            retraining = _retrain(params) if params.retrain else None
            if retraining is not None:
                record_retraining(settings, run_id, retraining)
            raise breach_error(report, retraining)
    except BaseException:
        finish_tracking(settings, run_id, failed=True)
        raise
    finish_tracking(settings, run_id, failed=False)
    return report


def _retrain(params: MonitorParams) -> str:
    """Run the training flow as a subflow; return what came of it (a failure is reported)."""
    assert params.retrain_config is not None, "MonitorParams requires it when retrain is on"
    try:
        version = train_and_register(RunParams.from_yaml(params.retrain_config))
    except EvenflowError as exc:
        get_run_logger().error("retraining failed: %s", str(exc).splitlines()[0])
        return f"failed: {str(exc).splitlines()[0]}"
    if version.existing:
        return (
            f"nothing new: {version.name} version {version.version} already holds this data, "
            "parameters, code and environment"
        )
    return f"{version.name} version {version.version} (run {version.run_id})"
