"""Distributed XGBoost training on Dask: each worker reads its own shards from disk.

Shards are pinned to workers by rank (shard ``i`` goes to worker ``i mod n`` in address order), so the
driver never holds the training data and the same data, params and worker count train the same model.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import dask.dataframe as dd
import numpy as np
import pandas as pd
import xgboost as xgb
import xgboost.dask as dxgb
from distributed import Client, Future, LocalCluster
from pydantic import BaseModel, ConfigDict

from evenflow.errors import ConfigError, DataError
from evenflow.features import typed_column
from evenflow.io import atomic_path
from evenflow.mitigation import weights_for
from evenflow.params import ClusterParams, ModelParams
from evenflow.records import FeatureSpec, ShardManifest, TrainingResult

logger = logging.getLogger(__name__)

LABEL = "label"
SCORE = "score"
WEIGHT = "weight"
PROGRESS_LOGGER = "evenflow.training.progress"
Device = Literal["cpu", "cuda"]


def resolve_device(requested: Literal["cpu", "cuda", "auto"]) -> tuple[Device, str]:
    """Pick the training device and say why: CUDA only when XGBoost has it and a GPU is visible."""
    gpus = visible_gpus()
    has_cuda = bool(xgb.build_info().get("USE_CUDA"))
    if requested == "cpu":
        return "cpu", "cpu requested"
    if requested == "cuda":
        if not gpus or not has_cuda:
            raise ConfigError(
                "model.device is 'cuda' but "
                + ("no GPU is visible" if not gpus else "this XGBoost build has no CUDA support")
            )
        return "cuda", f"cuda requested; GPUs: {', '.join(gpus)}"
    if gpus and has_cuda:
        return "cuda", f"auto: GPU visible ({gpus[0]})"
    return "cpu", "auto: no GPU visible" if not gpus else "auto: XGBoost built without CUDA"


def visible_gpus() -> list[str]:
    """Names of the GPUs ``nvidia-smi`` can see (empty when there is none)."""
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        listing = subprocess.run(
            ["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20, check=True
        ).stdout
    except (subprocess.SubprocessError, OSError):
        return []
    return [line.strip() for line in listing.splitlines() if line.startswith("GPU")]


@contextmanager
def dask_client(address: str | None, cluster: ClusterParams) -> Iterator[Client]:
    """Connect to ``address``, or start a local cluster of worker processes for the block."""
    if address:
        with Client(address) as client:
            yield client
        return
    with (
        LocalCluster(
            n_workers=cluster.n_workers,
            threads_per_worker=cluster.threads_per_worker,
            processes=True,
            dashboard_address=":0",
            silence_logs=logging.WARNING,
        ) as local,
        Client(local) as client,
    ):
        yield client


class SampleWeights(BaseModel):
    """Per-row training weights by (sensitive group, label) cell, e.g. from reweighing."""

    model_config = ConfigDict(frozen=True)

    column: str
    table: dict[tuple[str, int], float]


def read_partition(
    path: str,
    features: Sequence[FeatureSpec],
    label_column: str,
    positive_label: str,
    keep: Sequence[str],
    *,
    weights: SampleWeights | None = None,
) -> pd.DataFrame:
    """Read one shard on a worker: typed features, a 0/1 label, the ``keep`` columns, weights."""
    raw = pd.read_parquet(path)
    frame = pd.DataFrame(index=raw.index)
    for feature in features:
        frame[feature.name] = typed_column(raw[feature.name], feature)
    frame[LABEL] = label_values(raw[label_column], positive_label)
    for column in keep:
        if column not in frame.columns:
            frame[column] = raw[column]
    if weights is not None:
        frame[WEIGHT] = weights_for(frame[LABEL], raw[weights.column], weights.table)
    return frame


def label_values(column: pd.Series, positive_label: str) -> pd.Series:
    """Map the target column to 0/1: numeric targets compare as numbers, others as text."""
    if pd.api.types.is_numeric_dtype(column):
        try:
            positive = float(positive_label)
        except ValueError:
            raise ConfigError(
                f"positive label {positive_label!r} is not a number but target '{column.name}' is numeric"
            ) from None
        return (column.astype("float64") == positive).astype("int64")
    if column.isna().any():
        raise DataError(f"target '{column.name}' has {int(column.isna().sum())} missing values")
    return (column.astype("string").str.strip() == positive_label).astype("int64")


def pinned_frame(
    client: Client,
    manifest: ShardManifest,
    split: str,
    keep: Sequence[str],
    weights: SampleWeights | None = None,
) -> tuple[dd.DataFrame, dict[str, int]]:
    """Build a Dask frame whose partitions are read on fixed workers; return it and the shard map."""
    info = client.scheduler_info()["workers"]
    # XGBoost ranks workers by task id "[xgboost.dask-<worker name>]:<address>"; pinning in the
    # same order keeps shard i on rank i mod n across clusters, so re-runs build the same model.
    workers = sorted(info, key=lambda address: f"[xgboost.dask-{info[address]['name']}]:{address}")
    paths = manifest.split_paths(split)  # type: ignore[arg-type]
    futures: list[Future[pd.DataFrame]] = []
    placement: dict[str, int] = {}
    for index, path in enumerate(paths):
        rank = index % len(workers)
        futures.append(
            client.submit(
                read_partition,
                str(path),
                manifest.features,
                manifest.target,
                manifest.positive_label,
                keep,
                weights=weights,
                workers=[workers[rank]],
                allow_other_workers=False,
                pure=False,
            )
        )
        placement[str(path.relative_to(manifest.shard_dir))] = rank
    meta = read_partition(
        str(paths[0]),
        manifest.features,
        manifest.target,
        manifest.positive_label,
        keep,
        weights=weights,
    ).iloc[:0]
    return dd.from_delayed(futures, meta=meta, verify_meta=False), placement


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
    return {
        "objective": "binary:logistic",
        "eval_metric": ["logloss", "auc"],
        "tree_method": "hist",
        "device": device,
        "learning_rate": model.learning_rate,
        "max_depth": model.max_depth,
        "min_child_weight": model.min_child_weight,
        "subsample": model.subsample,
        "colsample_bytree": model.colsample_bytree,
        "reg_lambda": model.reg_lambda,
        "max_cat_to_onehot": model.max_cat_to_onehot,
        "max_bin": model.max_bin,
        "seed": model.seed,
        "nthread": threads,
    }


def train_model(
    client: Client,
    manifest: ShardManifest,
    model: ModelParams,
    threads_per_worker: int,
    out_dir: Path,
    *,
    weights: SampleWeights | None = None,
) -> TrainingResult:
    """Train with early stopping on valid, save the booster, score the valid and test splits."""
    if model.trainer == "lightgbm":
        return train_lightgbm(client, manifest, model, threads_per_worker, out_dir, weights=weights)
    device, reason = resolve_device(model.device)
    logger.info("training on %s (%s)", device, reason)
    client.forward_logging(PROGRESS_LOGGER, level=logging.INFO)
    features = [f.name for f in manifest.features]
    train, placement = pinned_frame(client, manifest, "train", keep=[], weights=weights)
    valid, _ = pinned_frame(client, manifest, "valid", keep=[])
    dtrain = dxgb.DaskQuantileDMatrix(
        client,
        train[features],
        train[LABEL],
        weight=train[WEIGHT] if weights is not None else None,
        enable_categorical=True,
    )
    dvalid = dxgb.DaskQuantileDMatrix(
        client, valid[features], valid[LABEL], ref=dtrain, enable_categorical=True
    )
    params = booster_params(model, device, threads_per_worker)
    started = time.perf_counter()
    output = dxgb.train(
        client,
        params,
        dtrain,
        num_boost_round=model.num_boost_round,
        evals=[(dvalid, "valid")],
        early_stopping_rounds=model.early_stopping_rounds,
        callbacks=[_LogProgress(every=50)],
        verbose_eval=False,
    )
    seconds = time.perf_counter() - started
    best = int(output["booster"].best_iteration)
    booster = output["booster"][: best + 1]  # keep the early-stopped model only
    model_path = _save_booster(booster, out_dir / "model.ubj")
    predictions_path = _write_predictions(
        predict_split(client, booster, manifest, "test"), out_dir / "predictions.parquet"
    )
    valid_predictions_path = _write_predictions(
        predict_split(client, booster, manifest, "valid"), out_dir / "valid_predictions.parquet"
    )
    return TrainingResult(
        model_path=model_path,
        params=params,
        device=device,
        device_reason=reason,
        n_workers=len(client.scheduler_info()["workers"]),
        partition_workers=placement,
        seed=model.seed,
        best_iteration=best,
        num_boosted_rounds=booster.num_boosted_rounds(),
        valid_auc=float(output["history"]["valid"]["auc"][best]),
        predictions_path=predictions_path,
        valid_predictions_path=valid_predictions_path,
        train_seconds=seconds,
    )


def _write_predictions(predictions: pd.DataFrame, target: Path) -> Path:
    with atomic_path(target) as tmp:
        predictions.to_parquet(tmp, index=False)
    return target


def _save_booster(booster: xgb.Booster, target: Path) -> Path:
    with atomic_path(target) as tmp:
        tmp.write_bytes(booster.save_raw("ubj"))
    return target


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


def train_lightgbm(
    client: Client,
    manifest: ShardManifest,
    model: ModelParams,
    threads_per_worker: int,
    out_dir: Path,
    *,
    weights: SampleWeights | None = None,
) -> TrainingResult:
    """Train ``lightgbm.dask`` on the pinned shards; keep the iteration with the best valid AUC.

    Early stopping is not safe in distributed LightGBM (each worker would judge on its own slice
    of valid), so all rounds are trained with valid as an eval set and the model is truncated at
    the best round afterwards: the same model early stopping would have chosen.
    """
    if model.device == "cuda":
        raise ConfigError("model.trainer 'lightgbm' runs on CPU here; use device cpu or auto")
    import lightgbm as lgb  # noqa: PLC0415  (only this trainer needs it)

    features = [f.name for f in manifest.features]
    train, placement = pinned_frame(client, manifest, "train", keep=[], weights=weights)
    valid, _ = pinned_frame(client, manifest, "valid", keep=[])
    params = lightgbm_params(model, threads_per_worker)
    classifier = lgb.DaskLGBMClassifier(client=client, **params)
    started = time.perf_counter()
    classifier.fit(
        train[features],
        train[LABEL],
        sample_weight=train[WEIGHT] if weights is not None else None,
        eval_set=[(valid[features], valid[LABEL])],
        eval_metric="auc",
    )
    seconds = time.perf_counter() - started
    aucs = list(classifier.evals_result_["valid_0"]["auc"])
    best_rounds = int(max(range(len(aucs)), key=aucs.__getitem__)) + 1
    booster = classifier.booster_
    model_path = out_dir / "model.txt"
    with atomic_path(model_path) as tmp:
        tmp.write_text(booster.model_to_string(num_iteration=best_rounds), encoding="utf-8")
    local = lgb.Booster(model_file=str(model_path))
    return TrainingResult(
        model_path=model_path,
        trainer="lightgbm",
        params=params,
        device="cpu",
        device_reason="lightgbm trains on CPU",
        n_workers=len(client.scheduler_info()["workers"]),
        partition_workers=placement,
        seed=model.seed,
        best_iteration=best_rounds - 1,
        num_boosted_rounds=best_rounds,
        valid_auc=float(aucs[best_rounds - 1]),
        predictions_path=_write_predictions(
            _predict_local(local, manifest, "test"), out_dir / "predictions.parquet"
        ),
        valid_predictions_path=_write_predictions(
            _predict_local(local, manifest, "valid"), out_dir / "valid_predictions.parquet"
        ),
        train_seconds=seconds,
    )


def _predict_local(booster: Any, manifest: ShardManifest, split: str) -> pd.DataFrame:
    """Score a split shard by shard with a local booster (bounded memory, same columns as Dask)."""
    parts = []
    for path in manifest.split_paths(split):  # type: ignore[arg-type]
        frame = read_partition(
            str(path),
            manifest.features,
            manifest.target,
            manifest.positive_label,
            [manifest.row_id, *manifest.sensitive],
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
