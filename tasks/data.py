"""Data stages: contract, validation, sharding and DVC versioning (cached on content hashes)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from prefect import get_run_logger, task

from evenflow.config.run import DatasetSpec, RunParams
from evenflow.config.settings import EvenflowSettings
from evenflow.contracts import suite as contracts
from evenflow.contracts import validation
from evenflow.data.datasets import content_md5
from evenflow.data.sharding import plan_split
from evenflow.errors import ValidationFailed
from evenflow.io import file_md5
from evenflow.records import RawBatch, ShardManifest, ValidationReport
from evenflow.registry import layout
from evenflow.registry import store as registry
from evenflow.usecases import prepare
from tasks.caching import ContentCache, digest
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


def _validation_key(inputs: Mapping[str, Any]) -> dict[str, str]:
    spec: DatasetSpec = inputs["spec"]
    settings: EvenflowSettings = inputs["settings"]
    return {
        "data": content_md5(spec.path),
        "suite": file_md5(contracts.contract_path(settings, spec.name)),
        "outputs": str(settings.data_root),
    }


@task(
    name="validate-batch",
    cache_policy=ContentCache(
        stage="validate",
        parts=_validation_key,
        entry=prepare.__name__,
    ),
    persist_result=True,
)
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


def _shard_key(inputs: Mapping[str, Any]) -> dict[str, str]:
    params: RunParams = inputs["params"]
    settings: EvenflowSettings = inputs["settings"]
    batch: RawBatch = inputs["batch"]
    shard_dir = prepare.shard_directory(settings, params, batch)
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
        "outputs": str(shard_dir),
    }


def _without_path(spec: DatasetSpec) -> dict[str, Any]:
    """The spec as JSON with ``path`` blanked (the key it always had, without a typed None)."""
    return {**spec.model_dump(mode="json"), "path": None}


def _shard_dir(inputs: Mapping[str, Any]) -> Path:
    return Path(_shard_key(inputs)["outputs"])


@task(
    name="shard-dataset",
    cache_policy=ContentCache(
        stage="shard",
        parts=_shard_key,
        entry=prepare.__name__,
        marker=_shard_dir,
    ),
    persist_result=True,
)
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
def record_shards(settings: EvenflowSettings, run_id: str, manifest: ShardManifest) -> None:
    """Log the manifest with the run and tag it with the data hash."""
    out_dir = settings.state_dir / "runs" / run_id
    registry.log_artifact(
        settings, run_id, prepare.write_manifest(manifest, out_dir), layout.DATA_DIR
    )
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
