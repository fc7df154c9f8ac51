"""One Dask worker versus two on the built-in example, with the same total threads.

Both runs use the same shards and booster parameters (CPU, early stopping on valid); only the
worker count differs (1 x 2 threads, 2 x 1 thread). Reports each run's time, the ratio, the
best iteration, and how the test metrics and scores differ between the two models.

    .venv/bin/python -m benchmarks.bench_workers
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, log_loss, roc_auc_score

from evenflow.config.run import ClusterParams, RunParams, builtin_example
from evenflow.data.datasets import load_batch
from evenflow.data.features import feature_specs
from evenflow.data.sharding import write_shards
from evenflow.records import ShardManifest, TrainingResult
from evenflow.training.cluster import dask_client
from evenflow.training.engine import train_model
from evenflow.training.partitions import LABEL, SCORE
from evenflow.usecases.prepare import describe_shards

THRESHOLD = 0.5
LAYOUTS = {
    "1_worker": ClusterParams(n_workers=1, threads_per_worker=2),
    "2_workers": ClusterParams(n_workers=2, threads_per_worker=1),
}


def build_manifest(params: RunParams, root: Path) -> ShardManifest:
    """Shard the dataset into ``root`` as the flow does (without DVC: the md5s are placeholders)."""
    batch, frame = load_batch(params.dataset)
    spec = params.dataset
    shard_dir = root / "shards"
    shards = write_shards(frame, spec, params.split, params.shards, shard_dir)
    return describe_shards(
        feature_specs(frame, spec),
        spec,
        raw_md5=batch.md5,
        data_md5="unversioned.dir",
        shard_dir=shard_dir,
        shards=shards,
    )


def timed_training(
    manifest: ShardManifest, params: RunParams, cluster: ClusterParams, out_dir: Path
) -> tuple[TrainingResult, float]:
    """Train on a fresh local cluster; return the result and the wall time, cluster start included."""
    model = params.model.model_copy(update={"device": "cpu"})
    started = time.perf_counter()
    with dask_client(None, cluster) as client:
        result = train_model(client, manifest, model, cluster.threads_per_worker, out_dir)
    return result, time.perf_counter() - started


def split_metrics(predictions: pd.DataFrame) -> dict[str, float]:
    """ROC AUC, accuracy at 0.5 and log loss of one model's test predictions."""
    labels, scores = predictions[LABEL].to_numpy(), predictions[SCORE].to_numpy()
    return {
        "roc_auc": float(roc_auc_score(labels, scores)),
        "accuracy": float(accuracy_score(labels, scores >= THRESHOLD)),
        "log_loss": float(log_loss(labels, scores)),
    }


def compare(one: TrainingResult, two: TrainingResult, row_id: str) -> dict[str, Any]:
    """Metric deltas (2 workers - 1 worker) and the largest score difference on the test split."""
    first = pd.read_parquet(one.predictions_path).set_index(row_id)
    second = pd.read_parquet(two.predictions_path).set_index(row_id).loc[first.index]
    metrics_one, metrics_two = split_metrics(first), split_metrics(second)
    report: dict[str, Any] = {}
    for name, value in metrics_one.items():
        report[f"test_{name}_1_worker"] = round(value, 5)
        report[f"test_{name}_2_workers"] = round(metrics_two[name], 5)
        report[f"delta_test_{name}"] = round(metrics_two[name] - value, 5)
    delta = np.abs(first[SCORE].to_numpy() - second[SCORE].to_numpy())
    report["max_abs_score_delta"] = float(f"{delta.max():.3g}")
    report["mean_abs_score_delta"] = float(f"{delta.mean():.3g}")
    return report


def run() -> dict[str, Any]:
    """Train the built-in example with 1 and with 2 workers and compare the two models."""
    params = builtin_example()
    with tempfile.TemporaryDirectory(prefix="evenflow-bench-workers-") as tmp:
        root = Path(tmp)
        manifest = build_manifest(params, root)
        runs = {
            name: timed_training(manifest, params, cluster, root / name)
            for name, cluster in LAYOUTS.items()
        }
        (one, one_wall), (two, two_wall) = runs["1_worker"], runs["2_workers"]
        return {
            "benchmark": "workers",
            "rows_train": manifest.split_rows("train"),
            "rows_test": manifest.split_rows("test"),
            "total_threads": 2,
            "train_seconds_1_worker": round(one.train_seconds, 2),
            "train_seconds_2_workers": round(two.train_seconds, 2),
            "ratio_train_2_over_1": round(two.train_seconds / one.train_seconds, 2),
            "wall_seconds_1_worker": round(one_wall, 2),
            "wall_seconds_2_workers": round(two_wall, 2),
            "ratio_wall_2_over_1": round(two_wall / one_wall, 2),
            "best_iteration_1_worker": one.best_iteration,
            "best_iteration_2_workers": two.best_iteration,
            **compare(one, two, manifest.row_id),
        }


if __name__ == "__main__":
    print(json.dumps(run()))
