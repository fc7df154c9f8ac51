"""The one entry to training: ``train_model`` hands a sharded batch to the configured trainer.

The pieces live beside it: ``device`` (CPU or CUDA, and why), ``cluster`` (the Dask client and its
live workers), ``partitions`` (shards pinned to workers), ``job`` (one request, as the trainers take
it), ``xgboost_dask`` and ``lightgbm_dask`` (the trainers), ``checkpoints`` (resume after a lost
worker), ``failures`` (which errors are worth a retry) and ``faults`` (test-only fault injection).
"""

from __future__ import annotations

from pathlib import Path

from distributed import Client

from evenflow.config.run import ModelParams
from evenflow.records import ShardManifest, TrainingResult
from evenflow.training.job import TrainingJob
from evenflow.training.lightgbm_dask import train_lightgbm
from evenflow.training.partitions import SampleWeights
from evenflow.training.xgboost_dask import train_xgboost


def train_model(
    client: Client,
    manifest: ShardManifest,
    model: ModelParams,
    threads_per_worker: int,
    out_dir: Path,
    *,
    weights: SampleWeights | None = None,
    keep_all_rounds: bool = False,
) -> TrainingResult:
    """Train with ``model.trainer`` on the pinned shards; save the model, score valid and test.

    With ``keep_all_rounds`` every round is kept (a refit whose rounds were chosen elsewhere),
    otherwise the model stops at the best round on valid.
    """
    job = TrainingJob(
        client, manifest, model, threads_per_worker, out_dir, weights, keep_all_rounds
    )
    return train_lightgbm(job) if model.trainer == "lightgbm" else train_xgboost(job)
