"""The training flow: validate → shard + version → train → evaluate → explain → gate → register."""

from __future__ import annotations

from prefect import flow

from evenflow.config.run import RunParams
from evenflow.config.settings import EvenflowSettings
from evenflow.errors import GateFailed
from evenflow.govern.gates import describe_failures
from evenflow.records import ModelVersionRef
from tasks.artifacts import (
    publish_evaluation,
    publish_gate,
    publish_model_version,
    publish_shards,
    publish_validation,
)
from tasks.data import (
    prepare_contract,
    record_shards,
    record_validation,
    shard_dataset,
    validate_batch,
)
from tasks.modeling import (
    RunEvidence,
    evaluate_model,
    explain_model,
    gate_model,
    record_evaluation,
    record_explanations,
    record_training,
    register_model,
    train_model,
)
from tasks.modeling import compare_mitigations as compare_mitigations_task
from tasks.tracking import finish_tracking, start_tracking


@flow(name="train-and-register")
def train_and_register(
    params: RunParams, compare_mitigations: bool = False, force: bool = False
) -> ModelVersionRef:
    """Train a model from one batch of data and register it with full lineage and a model card.

    Stages: Great Expectations validation, DVC-versioned sharding, XGBoost on Dask, evaluation
    (metrics, fairness by group with intervals, drift), SHAP and proxy check, the gate policy, MLflow
    registration. A model that passes becomes ``candidate``; one that fails is registered without
    it and the flow fails naming the clauses. Never sets ``champion``. Validation, sharding,
    training, evaluation and explanation are cached on content hashes (data, parameters, code), so
    a re-run with nothing changed reuses them and logs why. With
    ``compare_mitigations`` every mitigation is trained too, and the trade-off table joins the card.
    When a version already holds the same data, parameters, code and environment, nothing new is
    registered and that version is returned; ``force`` registers anyway.
    """
    settings = EvenflowSettings()
    run_id = start_tracking(params, settings)
    try:
        # Validate: a batch that breaks its contract stops here, before any data is written.
        prepare_contract(params.dataset, settings)
        batch, validation_report = validate_batch(params.dataset, settings)
        publish_validation(params.dataset.name, validation_report)
        record_validation(settings, run_id, validation_report)
        # Shard and version
        manifest = shard_dataset(params, settings, batch)
        record_shards(settings, run_id, manifest, batch)
        publish_shards(manifest)
        # Train
        training = train_model(manifest, params, settings)
        record_training(settings, run_id, training)
        # Evaluate and explain
        report = evaluate_model(manifest, training, params, settings)
        record_evaluation(settings, run_id, report)
        publish_evaluation(params.dataset.name, report)
        explanations = explain_model(manifest, training, params, settings)
        record_explanations(settings, run_id, explanations)
        tradeoff = (
            compare_mitigations_task(manifest, training, params, settings, run_id)
            if compare_mitigations
            else None
        )
        # Gate, then register (a failed model is registered too, without the candidate alias)
        decision = gate_model(params, settings, report, run_id)
        publish_gate(params.dataset.name, decision)
        evidence = RunEvidence(
            manifest, training, report, validation_report, explanations, decision, tradeoff
        )
        version = register_model(params, settings, run_id, evidence, force=force)
        publish_model_version(settings, version)
        if not decision.passed:
            raise GateFailed(
                f"{version.name} version {version.version} failed its gates and is not a candidate",
                describe_failures(decision),
            )
    except BaseException:
        finish_tracking(settings, run_id, failed=True)
        raise
    finish_tracking(settings, run_id, failed=False)
    return version
