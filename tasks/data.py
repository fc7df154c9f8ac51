"""Data stages: contract, validation, sharding and DVC versioning."""

from __future__ import annotations

from prefect import get_run_logger, task

from evenflow import pipeline, registry, validation
from evenflow.errors import ValidationFailed
from evenflow.params import DatasetSpec, RunParams
from evenflow.records import RawBatch, ShardManifest, ValidationReport
from evenflow.settings import EvenflowSettings
from tasks.progress import stage


@task(name="prepare-contract")
def prepare_contract(spec: DatasetSpec, settings: EvenflowSettings) -> str:
    """Find the dataset's expectation suite, inferring a starter one if there is none."""
    path, inferred = pipeline.ensure_contract(spec, settings)
    if inferred:
        get_run_logger().warning(
            "no expectation suite for '%s': inferred a starter suite at %s — review and commit it",
            spec.name,
            path,
        )
    return str(path)


@task(name="validate-batch")
def validate_batch(
    spec: DatasetSpec, settings: EvenflowSettings, run_id: str
) -> tuple[RawBatch, ValidationReport]:
    """Validate the batch against its contract; stop the flow if any expectation fails."""
    with stage("validate", f"{spec.path.name} against expectations/{spec.name}.json") as done:
        batch, report = pipeline.validate_batch(spec, settings)
        registry.log_artifact(settings, run_id, report.result_path.parent, "validation")
        registry.log_metrics(settings, run_id, {"validation.success": float(report.success)})
        if not report.success:
            summary, failures = validation.failure_summary(report)
            raise ValidationFailed(summary, failures)
        done.summary = f"{report.n_rows:,} rows, {report.n_expectations} expectations passed"
    return batch, report


@task(name="shard-dataset")
def shard_dataset(
    params: RunParams, settings: EvenflowSettings, batch: RawBatch, run_id: str
) -> ShardManifest:
    """Split, shard and version the batch with DVC; tag the run with the data hash."""
    with stage(
        "shard", f"{batch.n_rows:,} rows into {params.shards.n_shards} shards per split"
    ) as done:
        manifest = pipeline.shard_and_version(params, settings, batch)
        out_dir = settings.state_dir / "runs" / run_id
        registry.log_artifact(settings, run_id, pipeline.write_manifest(manifest, out_dir), "data")
        registry.set_tags(settings, run_id, {"evenflow.data_md5": manifest.data_md5})
        rows = {s: manifest.split_rows(s) for s in ("train", "valid", "test")}
        done.summary = (
            f"{len(manifest.shards)} shards, data md5 {manifest.data_md5} "
            f"(train {rows['train']:,} / valid {rows['valid']:,} / test {rows['test']:,})"
        )
    return manifest
