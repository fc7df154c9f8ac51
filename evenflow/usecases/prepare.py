"""The data stages of a training run: the contract, validation, shards and their DVC version.

Each stage takes and returns small records (paths, hashes), never DataFrames, so a stage can be
cached on its inputs and re-run alone; its cache key covers this module's import closure, which
holds no training code.
"""

from __future__ import annotations

from pathlib import Path

from evenflow import layout
from evenflow.config.run import DatasetSpec, RunParams
from evenflow.config.settings import EvenflowSettings
from evenflow.contracts import suite as contracts
from evenflow.contracts import validation
from evenflow.data import versioning
from evenflow.data.datasets import describe_batch, is_parquet, iter_chunks, load_batch
from evenflow.data.sharding import (
    plan_split,
    shard_key,
    shipped_has_valid,
    time_cuts,
    write_shard_chunks,
)
from evenflow.errors import DataError
from evenflow.io import write_json_atomic
from evenflow.records import (
    FeatureSpec,
    RawBatch,
    ShardInfo,
    ShardManifest,
    SplitPlan,
    SplitSummary,
    ValidationReport,
)


def ensure_contract(spec: DatasetSpec, settings: EvenflowSettings) -> tuple[Path, bool]:
    """Return the dataset's suite, inferring a starter suite first if none exists (and say so).

    Inference streams over the batch's chunks, so a large parquet batch is never read whole.
    """
    path = contracts.contract_path(settings, spec.name)
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
    suite = contracts.load_suite(contracts.contract_path(settings, spec.name))
    if is_parquet(spec.path):
        # Out of core: validated chunk by chunk, the batch is never held whole.
        batch = describe_batch(spec)
        out_dir = batch_dir(settings, spec.name, batch.md5) / layout.VALIDATION_DIR
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
    out_dir = batch_dir(settings, spec.name, batch.md5) / layout.VALIDATION_DIR
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
    personal = list(spec.personal_columns)  # never written to the shards
    written = write_shard_chunks(
        (chunk.drop(columns=personal) for chunk in iter_chunks(spec.path, spec.chunk_rows)),
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


def write_manifest(manifest: ShardManifest, out_dir: Path) -> Path:
    """Write the manifest as JSON for the run's artifacts."""
    return write_json_atomic(out_dir / layout.MANIFEST_FILE, manifest.model_dump(mode="json"))
