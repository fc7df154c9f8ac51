"""Data stages: contract, validation, sharding and DVC versioning (cached on content hashes)."""

from __future__ import annotations

from typing import Any

from prefect import get_run_logger, task

from evenflow import layout
from evenflow.config.run import DatasetSpec, RunParams
from evenflow.config.settings import EvenflowSettings
from evenflow.contracts import suite as contracts
from evenflow.contracts import validation
from evenflow.data.datasets import content_md5
from evenflow.data.sharding import plan_split
from evenflow.errors import ValidationFailed
from evenflow.io import file_md5
from evenflow.records import RawBatch, ShardManifest, ValidationReport
from evenflow.registry import store as registry
from evenflow.usecases import prepare, register
from tasks.caching import Inputs, StageCache, digest
from tasks.isolation import run_dir
from tasks.progress import stage


@task(name="prepare-contract")
def prepare_contract(spec: DatasetSpec, settings: EvenflowSettings) -> str:
    """Find the dataset's expectation suite, inferring a starter one if there is none."""
    path, inferred = prepare.ensure_contract(spec, settings)
    if inferred:
        get_run_logger().warning(
            "no expectation suite for '%s': inferred a starter suite at %s — review and commit it",
            spec.name,
            path,
        )
    return str(path)


def _validation_inputs(inputs: Inputs) -> dict[str, str]:
    spec: DatasetSpec = inputs["spec"]
    return {
        "data": content_md5(spec.path),
        "suite": file_md5(contracts.contract_path(inputs["settings"], spec.name)),
    }


# Validation only reads the batch: its key names the project's data folder as its outputs, and
# no file there marks it done.
VALIDATE = StageCache(
    "validate",
    prepare.__name__,
    _validation_inputs,
    outputs=lambda inputs: inputs["settings"].data_root,
)


@VALIDATE.task("validate-batch")
def validate_batch(
    spec: DatasetSpec, settings: EvenflowSettings
) -> tuple[RawBatch, ValidationReport]:
    """Validate the batch against its contract (the file is only read)."""
    with stage("validate", f"{spec.path.name} against expectations/{spec.name}.json") as done:
        batch, report = prepare.validate_batch(spec, settings)
        outcome = "passed" if report.success else f"{len(report.failures)} failed"
        done.summary = f"{report.n_rows:,} rows, {report.n_expectations} expectations, {outcome}"
    return batch, report


@task(name="record-validation")
def record_validation(settings: EvenflowSettings, run_id: str, report: ValidationReport) -> None:
    """Log the GX result with the run; stop the flow if any expectation failed."""
    registry.log_artifact(settings, run_id, report.result_path.parent, layout.VALIDATION_DIR)
    registry.log_metrics(settings, run_id, {"validation.success": float(report.success)})
    if not report.success:
        summary, failures = validation.failure_summary(report)
        get_run_logger().error("✖ validate: %s", summary)
        raise ValidationFailed(summary, failures)


def _shard_inputs(inputs: Inputs) -> dict[str, str]:
    params: RunParams = inputs["params"]
    batch: RawBatch = inputs["batch"]
    return {
        "data": batch.md5,
        # Where the batch lies does not change its shards (its md5 is the "data" part).
        "params": digest(
            _without_path(params.dataset),
            params.split,
            params.shards,
            {"cross_fit_below_rows": params.evaluation.cross_fit_below_rows},
            {"folds": params.evaluation.folds},
        ),
    }


def _without_path(spec: DatasetSpec) -> dict[str, Any]:
    """The spec as JSON with ``path`` blanked (the key it always had, without a typed None)."""
    return {**spec.model_dump(mode="json"), "path": None}


# Sharding writes one folder per batch and plan (DVC tracks it): present means done.
SHARD = StageCache(
    "shard",
    prepare.__name__,
    _shard_inputs,
    outputs=lambda inputs: prepare.shard_directory(
        inputs["settings"], inputs["params"], inputs["batch"]
    ),
    done=(),
)


@SHARD.task("shard-dataset")
def shard_dataset(params: RunParams, settings: EvenflowSettings, batch: RawBatch) -> ShardManifest:
    """Split, shard and version the batch with DVC."""
    plan = plan_split(params.dataset, params.evaluation, batch.n_rows)
    unit = f"per fold ({plan.folds} folds)" if plan.evaluation == "cross_fit" else "per split"
    with stage(
        "shard", f"{batch.n_rows:,} rows into {params.shards.n_shards} shards {unit}"
    ) as done:
        manifest = prepare.shard_and_version(params, settings, batch)
        done.summary = (
            f"{len(manifest.shards)} shards, data md5 {manifest.data_md5} "
            f"({' / '.join(f'{s.name} {s.rows:,}' for s in manifest.split_report)}); "
            f"{manifest.plan.reason}"
        )
    return manifest


@task(name="record-shards")
def record_shards(
    settings: EvenflowSettings, run_id: str, manifest: ShardManifest, batch: RawBatch
) -> None:
    """Log the manifest with the run, tag it with the data hash, and log the data as its input.

    The dataset input (digest = the DVC md5, source = the batch) is what the MLflow UI lists
    under the run's datasets.
    """
    manifest_path = prepare.write_manifest(manifest, run_dir(settings, run_id))
    registry.log_artifact(settings, run_id, manifest_path, layout.DATA_DIR)
    registry.log_json(
        settings,
        run_id,
        [summary.model_dump(mode="json") for summary in manifest.split_report],
        layout.SPLIT_REPORT,
    )
    registry.set_tags(
        settings,
        run_id,
        {layout.DATA_MD5_TAG: manifest.data_md5, layout.EVALUATION_TAG: manifest.plan.evaluation},
    )
    register.log_dataset(settings, run_id, manifest, batch.path)
