"""The training flow: validate → shard + version → train → evaluate → register."""

from __future__ import annotations

from prefect import flow

from evenflow.params import RunParams
from evenflow.records import ModelVersionRef
from evenflow.settings import EvenflowSettings
from tasks.data import prepare_contract, shard_dataset, validate_batch
from tasks.modeling import evaluate_model, register_model, train_model
from tasks.tracking import finish_tracking, start_tracking


@flow(name="train-and-register")
def train_and_register(params: RunParams) -> ModelVersionRef:
    """Train a candidate model from one batch of data and register it with full lineage.

    Stages: Great Expectations validation, DVC-versioned sharding, XGBoost on Dask, evaluation
    (metrics, groups, drift), MLflow registration as ``candidate``. Never sets ``champion``.
    """
    settings = EvenflowSettings()
    run_id = start_tracking(params, settings)
    try:
        # Validate: a batch that breaks its contract stops here, before any data is written.
        prepare_contract(params.dataset, settings)
        batch = validate_batch(params.dataset, settings, run_id)
        # Shard and version
        manifest = shard_dataset(params, settings, batch, run_id)
        # Train
        training = train_model(manifest, params, settings, run_id)
        # Evaluate
        evaluate_model(manifest, training, params, settings, run_id)
        # Register
        version = register_model(params, settings, run_id, manifest, training)
    except BaseException:
        finish_tracking(settings, run_id, failed=True)
        raise
    finish_tracking(settings, run_id, failed=False)
    return version
