"""Distributed XGBoost on Dask: early stopping on valid, checkpoints every few rounds, resume after a lost worker."""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import Any

import pandas as pd
import xgboost as xgb
import xgboost.dask as dxgb
from distributed import Client

from evenflow import layout
from evenflow.config.run import ModelParams
from evenflow.io import atomic_path, write_parquet_atomic
from evenflow.records import ShardManifest, TrainingResult
from evenflow.training.boosters import tree_settings
from evenflow.training.checkpoints import (
    CHECKPOINT_FILE,
    Checkpoint,
    ResumedEarlyStopping,
    SaveCheckpoint,
    checkpoint_fingerprint,
    finished,
    load_checkpoint,
)
from evenflow.training.cluster import live_workers
from evenflow.training.device import Device, resolve_device
from evenflow.training.failures import WorkerLost
from evenflow.training.faults import fault_callbacks
from evenflow.training.job import TrainingJob
from evenflow.training.partitions import LABEL, SCORE, WEIGHT, pinned_frame

logger = logging.getLogger(__name__)

PROGRESS_LOGGER = "evenflow.training.engine.progress"
"""Round-by-round progress, forwarded from the workers (its name predates this module: kept)."""


class _LogProgress(xgb.callback.TrainingCallback):
    """Log the validation metric every ``every`` rounds from rank 0 (forwarded to the driver)."""

    def __init__(self, every: int) -> None:
        self.every = every

    def before_training(self, model: Any) -> Any:
        # Runs on the worker, whose loggers default to WARNING: let progress reach the forwarder.
        logging.getLogger(PROGRESS_LOGGER).setLevel(logging.INFO)
        return model

    def after_iteration(self, model: Any, epoch: int, evals_log: dict[str, Any]) -> bool:
        if epoch % self.every == 0 and xgb.collective.get_rank() == 0:
            auc = evals_log.get("valid", {}).get("auc", [float("nan")])[-1]
            logging.getLogger(PROGRESS_LOGGER).info("round %d: valid AUC %.4f", epoch, auc)
        return False


def booster_params(model: ModelParams, device: Device, threads: int) -> dict[str, Any]:
    """XGBoost parameters for a binary classifier with native categorical support."""
    tree = tree_settings(model)
    return {
        "objective": "binary:logistic",
        "eval_metric": ["logloss", "auc"],
        "tree_method": tree.pop("tree_method"),
        "device": device,
        **tree,
        "seed": model.seed,
        "nthread": threads,
    }


# --- surviving worker loss: checkpoints, resume, and which failures are worth a retry ------------


def train_xgboost(job: TrainingJob) -> TrainingResult:
    """Train with early stopping on valid, save the booster, score the valid and test splits.

    Every ``model.checkpoint_every`` rounds the booster is saved to ``out_dir``; a later call
    with the same data and parameters (a retry after a lost worker) resumes from it.
    """
    client, manifest, model, out_dir = job.client, job.manifest, job.model, job.out_dir
    device, reason = resolve_device(model.device)
    logger.info("training on %s (%s)", device, reason)
    client.forward_logging(PROGRESS_LOGGER, level=logging.INFO)
    train, placement = pinned_frame(client, manifest, "train", keep=[], weights=job.weights)
    params = booster_params(model, device, job.threads_per_worker)
    n_workers = len(live_workers(client))
    fingerprint = _fingerprint(job, params, placement=placement, n_workers=n_workers)
    started = time.perf_counter()
    booster_all, aucs, done_rounds = _boost(
        job, train=train, params=params, fingerprint=fingerprint
    )
    seconds = time.perf_counter() - started
    best = (
        booster_all.num_boosted_rounds() - 1
        if job.keep_all_rounds
        else int(booster_all.best_iteration)
    )
    booster = booster_all[: best + 1]  # keep the early-stopped model only
    result = TrainingResult(
        model_path=_save_booster(booster, out_dir / "model.ubj"),
        params=params,
        device=device,
        device_reason=reason,
        n_workers=n_workers,
        partition_workers=placement,
        seed=model.seed,
        best_iteration=best,
        num_boosted_rounds=booster.num_boosted_rounds(),
        valid_auc=float(aucs[best]),
        predictions_path=_write_predictions(client, booster, manifest, "test", out_dir),
        valid_predictions_path=_write_predictions(client, booster, manifest, "valid", out_dir),
        train_seconds=seconds,
        resumed_from_round=done_rounds,
    )
    (out_dir / CHECKPOINT_FILE).unlink(missing_ok=True)  # the finished model supersedes it
    return result


def _fingerprint(
    job: TrainingJob, params: dict[str, Any], *, placement: dict[str, int], n_workers: int
) -> str:
    """What makes a checkpoint reusable: booster params, data, placement, stopping, weights."""
    manifest, model, weights = job.manifest, job.model, job.weights
    return checkpoint_fingerprint(
        params,
        manifest.data_md5,
        [s.md5 for s in manifest.shards],
        placement,
        n_workers,
        model.num_boost_round,
        model.early_stopping_rounds,
        weights.model_dump(mode="json") if weights is not None else None,
    )


def _boost(
    job: TrainingJob, *, train: Any, params: dict[str, Any], fingerprint: str
) -> tuple[xgb.Booster, list[float], int]:
    """Boost the rounds still to do after this training's checkpoint, if there is one.

    Returns the booster, the valid AUC of every round and the round it resumed from.
    """
    client, manifest, model = job.client, job.manifest, job.model
    checkpoint = job.out_dir / CHECKPOINT_FILE
    resumed = load_checkpoint(checkpoint, fingerprint) if model.checkpoint_every else None
    start_booster, record = resumed if resumed is not None else (None, None)
    done_rounds = record.rounds if record is not None else 0
    if record is not None:
        logger.info("resuming from the checkpoint at round %d", done_rounds)
    if resumed is not None and finished(resumed[1], model):
        return resumed[0], list(resumed[1].valid_auc), done_rounds
    valid, _ = pinned_frame(client, manifest, "valid", keep=[])
    features = [f.name for f in manifest.features]
    dtrain = dxgb.DaskQuantileDMatrix(
        client,
        train[features],
        train[LABEL],
        weight=train[WEIGHT] if job.weights is not None else None,
        enable_categorical=True,
    )
    dvalid = dxgb.DaskQuantileDMatrix(
        client, valid[features], valid[LABEL], ref=dtrain, enable_categorical=True
    )
    output = _train_watched(
        client,
        params=params,
        dtrain=dtrain,
        num_boost_round=model.num_boost_round - done_rounds,
        evals=[(dvalid, "valid")],
        callbacks=_callbacks(model, checkpoint, fingerprint, record),
        verbose_eval=False,
        xgb_model=start_booster,
    )
    aucs = [*(record.valid_auc if record else ()), *output["history"]["valid"]["auc"]]
    return output["booster"], aucs, done_rounds


def _callbacks(
    model: ModelParams, checkpoint: Path, fingerprint: str, record: Checkpoint | None
) -> list[xgb.callback.TrainingCallback]:
    """Progress, early stopping (resumed), checkpoints when asked for, test-only faults."""
    callbacks: list[xgb.callback.TrainingCallback] = [
        _LogProgress(every=50),
        ResumedEarlyStopping(model.early_stopping_rounds, record),
    ]
    if model.checkpoint_every:
        checkpoint.parent.mkdir(parents=True, exist_ok=True)
        history = record.valid_auc if record is not None else ()
        callbacks.append(
            SaveCheckpoint(str(checkpoint), model.checkpoint_every, fingerprint, history)
        )
    return [*callbacks, *fault_callbacks()]


def _train_watched(client: Client, **kwargs: Any) -> dict[str, Any]:
    """``xgboost.dask.train`` that fails fast with ``WorkerLost`` when a worker leaves.

    The survivors would otherwise wait on the dead peer inside the collective.
    """
    expected = set(live_workers(client))
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="evenflow-train")
    running = pool.submit(dxgb.train, client, **kwargs)
    try:
        while True:
            try:
                return running.result(timeout=0.5)  # type: ignore[no-any-return]
            except FutureTimeout:
                gone = expected - set(live_workers(client))
                if gone:
                    raise WorkerLost(
                        f"Dask worker(s) {', '.join(sorted(gone))} left during training"
                    ) from None
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def _save_booster(booster: xgb.Booster, target: Path) -> Path:
    with atomic_path(target) as tmp:
        tmp.write_bytes(booster.save_raw("ubj"))
    return target


def _write_predictions(
    client: Client, booster: xgb.Booster, manifest: ShardManifest, split: str, out_dir: Path
) -> Path:
    """Score ``split`` on the workers into ``predictions.parquet`` (test) or ``valid_predictions``."""
    name = layout.PREDICTIONS_FILE if split == "test" else f"{split}_{layout.PREDICTIONS_FILE}"
    return write_parquet_atomic(predict_split(client, booster, manifest, split), out_dir / name)


def predict_split(
    client: Client, booster: xgb.Booster, manifest: ShardManifest, split: str
) -> pd.DataFrame:
    """Score a split on the workers; return row id, label, score and the sensitive columns."""
    keep = [manifest.row_id, *manifest.sensitive]
    frame, _ = pinned_frame(client, manifest, split, keep=keep)
    features = [f.name for f in manifest.features]
    scores = dxgb.inplace_predict(client, booster, frame[features])
    scored = frame[[manifest.row_id, LABEL, *manifest.sensitive]].assign(**{SCORE: scores})
    result = scored.compute().reset_index(drop=True)
    result[SCORE] = result[SCORE].astype("float64")
    for column in manifest.sensitive:
        result[column] = result[column].astype("string")
    return result.sort_values(manifest.row_id, kind="stable").reset_index(drop=True)
