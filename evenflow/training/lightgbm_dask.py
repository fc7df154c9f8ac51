"""Distributed LightGBM on Dask: all rounds trained, then cut at the round with the best valid AUC."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from distributed import Client
from sklearn.metrics import roc_auc_score

from evenflow import layout
from evenflow.config.run import ModelParams
from evenflow.errors import ConfigError
from evenflow.io import atomic_path, write_parquet_atomic
from evenflow.records import ShardManifest, TrainingResult
from evenflow.training.cluster import live_workers, ranked_workers
from evenflow.training.job import TrainingJob
from evenflow.training.partitions import (
    LABEL,
    SCORE,
    WEIGHT,
    pinned_frame,
    read_partition,
    split_shards,
)


def lightgbm_params(model: ModelParams, threads: int) -> dict[str, Any]:
    """LightGBM parameters matching ``booster_params``; deterministic so re-runs repeat."""
    return {
        "n_estimators": model.num_boost_round,
        "learning_rate": model.learning_rate,
        "max_depth": model.max_depth,
        "num_leaves": min(2**model.max_depth - 1, 131_072),
        "min_child_weight": max(model.min_child_weight, 1e-3),
        "subsample": model.subsample,
        "subsample_freq": 1 if model.subsample < 1.0 else 0,
        "colsample_bytree": model.colsample_bytree,
        "reg_lambda": model.reg_lambda,
        "max_cat_to_onehot": model.max_cat_to_onehot,
        "max_bin": model.max_bin - 1,
        "random_state": model.seed,
        "n_jobs": threads,
        # LightGBM picks row- or column-wise histograms by timing unless told: fix both.
        "deterministic": True,
        "force_row_wise": True,
        "verbose": -1,
    }


def train_lightgbm(job: TrainingJob) -> TrainingResult:
    """Train ``lightgbm.dask`` on the pinned shards; keep the iteration with the best valid AUC.

    Early stopping is not safe in distributed LightGBM (each worker would judge on its own slice
    of valid), so all rounds are trained with valid as an eval set and the model is truncated at
    the best round afterwards: the same model early stopping would have chosen.
    """
    client, manifest, model, weights = job.client, job.manifest, job.model, job.weights
    if model.device == "cuda":
        raise ConfigError("model.trainer 'lightgbm' runs on CPU here; use device cpu or auto")
    import lightgbm as lgb  # noqa: PLC0415  (only this trainer needs it)

    features = [f.name for f in manifest.features]
    train, placement = pinned_frame(client, manifest, "train", keep=[], weights=weights)
    valid, _ = pinned_frame(client, manifest, "valid", keep=[])
    params = lightgbm_params(model, job.threads_per_worker)
    classifier = lgb.DaskLGBMClassifier(client=client, **params)
    started = time.perf_counter()
    with _who_has_in_rank_order(client, ranked_workers(client)):
        classifier.fit(
            train[features],
            train[LABEL],
            sample_weight=train[WEIGHT] if weights is not None else None,
            eval_set=[(valid[features], valid[LABEL])],
            eval_metric="auc",
        )
    seconds = time.perf_counter() - started
    full = lgb.Booster(model_str=classifier.booster_.model_to_string())
    aucs = _valid_auc_by_round(full, manifest)
    best_rounds = len(aucs) if job.keep_all_rounds else _best_rounds(aucs)
    model_path = job.out_dir / "model.txt"
    with atomic_path(model_path) as tmp:
        tmp.write_text(full.model_to_string(num_iteration=best_rounds), encoding="utf-8")
    local = lgb.Booster(model_file=str(model_path))
    return TrainingResult(
        model_path=model_path,
        trainer="lightgbm",
        params=params,
        device="cpu",
        device_reason="lightgbm trains on CPU",
        n_workers=len(live_workers(client)),
        partition_workers=placement,
        seed=model.seed,
        best_iteration=best_rounds - 1,
        num_boosted_rounds=best_rounds,
        valid_auc=float(aucs[best_rounds - 1]),
        predictions_path=_write_predictions(local, manifest, "test", job.out_dir),
        valid_predictions_path=_write_predictions(local, manifest, "valid", job.out_dir),
        train_seconds=seconds,
    )


def _best_rounds(aucs: Sequence[float]) -> int:
    """The number of rounds that reaches the best valid AUC (the first, on ties)."""
    return int(max(range(len(aucs)), key=aucs.__getitem__)) + 1


def _write_predictions(booster: Any, manifest: ShardManifest, split: str, out_dir: Path) -> Path:
    """Score ``split`` locally; write it where the XGBoost trainer writes its predictions."""
    name = layout.PREDICTIONS_FILE if split == "test" else f"{split}_{layout.PREDICTIONS_FILE}"
    return write_parquet_atomic(_predict_local(booster, manifest, split), out_dir / name)


@contextmanager
def _who_has_in_rank_order(client: Client, workers: Sequence[str]) -> Iterator[None]:
    """Make ``client.who_has`` list keys by worker rank, then by the order they were asked for.

    ``lightgbm.dask`` orders its machines (LightGBM ranks, which decide which worker finds the
    bins of which feature) and picks the worker that returns the model from ``who_has``, which
    lists keys in the order of a Python set: it changes with each process's hash seed, so a
    rebuild in another process trained a different model. Pinned ranks make it repeatable.
    """
    rank = {address: index for index, address in enumerate(workers)}
    original = client.who_has

    def ordered(futures: Any = None, **kwargs: Any) -> dict[Any, Any]:
        found: dict[Any, Any] = original(futures, **kwargs)
        asked = {getattr(f, "key", f): i for i, f in enumerate(futures or [])}

        def position(item: tuple[Any, Any]) -> tuple[int, int]:
            key, holders = item
            first = min((rank.get(w, len(rank)) for w in holders), default=len(rank))
            return first, asked.get(key, len(asked))

        return dict(sorted(found.items(), key=position))

    setattr(client, "who_has", ordered)  # noqa: B010  (an instance attribute, for this block only)
    try:
        yield
    finally:
        delattr(client, "who_has")


def _valid_auc_by_round(booster: Any, manifest: ShardManifest) -> list[float]:
    """Valid AUC after each round on the whole valid split.

    ``lightgbm.dask``'s own eval history comes from one worker's slice of valid only.
    """
    parts = [
        read_partition(
            str(path), manifest.features, manifest.target, manifest.positive_label, [], md5=md5
        )
        for path, md5 in split_shards(manifest, "valid")
    ]
    frame = pd.concat(parts, ignore_index=True)
    features = frame[[f.name for f in manifest.features]]
    raw = np.zeros(len(frame))
    aucs: list[float] = []
    for index in range(booster.current_iteration()):
        raw += booster.predict(features, start_iteration=index, num_iteration=1, raw_score=True)
        aucs.append(float(roc_auc_score(frame[LABEL], raw)))
    return aucs


def _predict_local(booster: Any, manifest: ShardManifest, split: str) -> pd.DataFrame:
    """Score a split shard by shard with a local booster (bounded memory, same columns as Dask)."""
    parts = []
    for path, md5 in split_shards(manifest, split):
        frame = read_partition(
            str(path),
            manifest.features,
            manifest.target,
            manifest.positive_label,
            [manifest.row_id, *manifest.sensitive],
            md5=md5,
        )
        scores = booster.predict(frame[[f.name for f in manifest.features]])
        parts.append(
            frame[[manifest.row_id, LABEL, *manifest.sensitive]].assign(
                **{SCORE: np.asarray(scores, dtype="float64")}
            )
        )
    result = pd.concat(parts, ignore_index=True)
    for column in manifest.sensitive:
        result[column] = result[column].astype("string")
    return result.sort_values(manifest.row_id, kind="stable").reset_index(drop=True)
