"""The stages of a training run as plain functions; Prefect tasks wrap them one to one.

Each stage takes and returns small records (paths, hashes, ids), never DataFrames, so a stage can
be cached on its inputs and re-run alone.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from evenflow import contracts, drift, evaluation, registry, validation, versioning
from evenflow.datasets import load_batch, read_table
from evenflow.errors import DataError
from evenflow.io import write_json_atomic
from evenflow.params import DatasetSpec, RunParams
from evenflow.records import (
    EvalReport,
    ModelVersionRef,
    RawBatch,
    ShardManifest,
    TrainingResult,
    ValidationReport,
)
from evenflow.settings import EvenflowSettings
from evenflow.sharding import feature_specs, shard_key, write_shards
from evenflow.training import dask_client, train_model

logger = logging.getLogger(__name__)


def contract_path(settings: EvenflowSettings, spec: DatasetSpec) -> Path:
    """Where the dataset's expectation suite lives."""
    return settings.expectations_dir / f"{spec.name}.json"


def ensure_contract(spec: DatasetSpec, settings: EvenflowSettings) -> tuple[Path, bool]:
    """Return the dataset's suite, inferring a starter suite first if none exists (and say so)."""
    path = contract_path(settings, spec)
    if path.is_file():
        return path, False
    frame = read_table(spec.path)
    contracts.write_suite(contracts.infer_suite(frame, spec), path)
    return path, True


def batch_dir(settings: EvenflowSettings, dataset: str, raw_md5: str) -> Path:
    """Folder of one input batch under data/: its shards and, beside them, its validation."""
    return settings.data_root / dataset / raw_md5[:12]


def validate_batch(
    spec: DatasetSpec, settings: EvenflowSettings
) -> tuple[RawBatch, ValidationReport]:
    """Check the input file against its contract; the file is only read."""
    batch, frame = load_batch(spec)
    suite = contracts.load_suite(contract_path(settings, spec))
    out_dir = batch_dir(settings, spec.name, batch.md5) / "validation"
    return batch, validation.validate_frame(frame, suite, out_dir, dataset=spec.name)


def shard_and_version(
    params: RunParams, settings: EvenflowSettings, batch: RawBatch
) -> ShardManifest:
    """Split and shard the validated batch under data/, version it with DVC, describe it."""
    batch_now, frame = load_batch(params.dataset)
    if batch_now.md5 != batch.md5:
        raise DataError(f"{batch.path} changed after it was validated; run again")
    shard_dir = (
        batch_dir(settings, batch.dataset, batch.md5)
        / f"shards-{shard_key(params.split, params.shards)}"
    )
    shards = write_shards(frame, params.dataset, params.split, params.shards, shard_dir)
    versioning.ensure_repo(settings.project_root, settings.dvc_remote)
    data_md5 = versioning.version_directory(settings.project_root, settings.data_root, shard_dir)
    spec = params.dataset
    return ShardManifest(
        dataset=spec.name,
        raw_md5=batch.md5,
        data_md5=data_md5,
        shard_dir=shard_dir,
        shards=tuple(shards),
        features=feature_specs(frame, spec),
        target=spec.target,
        positive_label=spec.positive_label,
        sensitive=spec.sensitive,
    )


def train(
    manifest: ShardManifest, params: RunParams, settings: EvenflowSettings, out_dir: Path
) -> TrainingResult:
    """Train on the configured Dask cluster (a local one unless an address is set)."""
    with dask_client(settings.dask_address, params.cluster) as client:
        return train_model(
            client, manifest, params.model, params.cluster.threads_per_worker, out_dir
        )


def evaluate(
    manifest: ShardManifest, training: TrainingResult, params: RunParams, out_dir: Path
) -> EvalReport:
    """Metrics overall and per group, drift of test vs train, and the classification report."""
    predictions = pd.read_parquet(training.predictions_path)
    report_dir = out_dir / "reports"
    report = evaluation.write_evaluation(
        predictions,
        manifest.sensitive,
        params.evaluation,
        report_dir,
        predictions_path=training.predictions_path,
    )
    rows = params.evaluation.drift_sample_rows
    numeric = [f.name for f in manifest.features if f.kind == "numeric"]
    categorical = [f.name for f in manifest.features if f.kind == "categorical"]
    drift.data_drift_report(
        sample_split(manifest, "train", rows),
        sample_split(manifest, "test", rows),
        numeric,
        categorical,
        report_dir,
    )
    drift.classification_report(predictions, report_dir, params.evaluation.threshold)
    return report


def sample_split(manifest: ShardManifest, split: str, n_rows: int, seed: int = 0) -> pd.DataFrame:
    """Up to ``n_rows`` rows of a split's feature columns, sampled shard by shard (bounded memory)."""
    total = manifest.split_rows(split)  # type: ignore[arg-type]
    fraction = min(1.0, n_rows / max(total, 1))
    columns = [f.name for f in manifest.features]
    rng = np.random.default_rng(seed)
    parts = []
    for path in manifest.split_paths(split):  # type: ignore[arg-type]
        shard = pd.read_parquet(path, columns=columns)
        parts.append(shard[rng.random(len(shard)) < fraction])
    return pd.concat(parts, ignore_index=True)


def input_example(manifest: ShardManifest, n_rows: int = 5) -> pd.DataFrame:
    """A few raw test rows, feature columns only, in the data's own dtypes: the input example."""
    first = manifest.split_paths("test")[0]
    return pd.read_parquet(first, columns=[f.name for f in manifest.features]).head(n_rows)


def write_manifest(manifest: ShardManifest, out_dir: Path) -> Path:
    """Write the manifest as JSON for the run's artifacts."""
    return write_json_atomic(out_dir / "manifest.json", manifest.model_dump(mode="json"))


def register(
    settings: EvenflowSettings,
    run_id: str,
    *,
    params: RunParams,
    manifest: ShardManifest,
    training: TrainingResult,
    tags: dict[str, str],
) -> ModelVersionRef:
    """Log and register the model under the dataset's name with lineage tags; alias candidate."""
    return registry.register_model(
        settings,
        run_id,
        model_name=params.dataset.name,
        training=training,
        manifest=manifest,
        input_example=input_example(manifest),
        threshold=params.evaluation.threshold,
        tags=tags,
    )
