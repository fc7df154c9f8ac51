"""Distributed XGBoost training on Dask: each worker reads its own shards from disk.

Shards are pinned to workers by rank (shard ``i`` goes to worker ``i mod n`` in address order), so the
driver never holds the training data and the same data, params and worker count train the same model.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import dask.dataframe as dd
import numpy as np
import pandas as pd
import xgboost as xgb
import xgboost.dask as dxgb
from distributed import Client, Future, KilledWorker, LocalCluster
from distributed.comm.core import CommClosedError
from pydantic import BaseModel, ConfigDict
from sklearn.metrics import roc_auc_score

from evenflow.assess.mitigation import weights_for
from evenflow.config.run import ClusterParams, ModelParams
from evenflow.data.features import label_values, typed_column
from evenflow.errors import ConfigError, EvenflowError
from evenflow.io import atomic_path, write_parquet_atomic
from evenflow.records import FeatureSpec, ShardManifest, TrainingResult
from evenflow.training.boosters import tree_settings

logger = logging.getLogger(__name__)

LABEL = "label"
SCORE = "score"
WEIGHT = "weight"
PROGRESS_LOGGER = "evenflow.training.engine.progress"
Device = Literal["cpu", "cuda"]


class DevicePlan(BaseModel):
    """Where training runs and why: the XGBoost device and the kind of local cluster to start."""

    model_config = ConfigDict(frozen=True)

    device: Device
    cuda_cluster: bool
    reason: str


GPU_EXTRA_HINT = "dask-cuda not installed: `uv sync --extra gpu`"


def plan_device(
    requested: Literal["cpu", "cuda", "auto"],
    gpus: Sequence[str],
    *,
    xgboost_cuda: bool,
    dask_cuda: bool,
    trainer: Literal["xgboost", "lightgbm"] = "xgboost",
) -> DevicePlan:
    """Decide the training device and local cluster kind (a pure function).

    CUDA needs a visible GPU, a CUDA build of XGBoost and, for the local cluster of one worker per
    GPU, dask-cuda. ``auto`` falls back to CPU saying why; an explicit ``cuda`` that cannot be
    honoured is a ``ConfigError``. LightGBM is CPU-only in our build.
    """
    if trainer == "lightgbm":
        if requested == "cuda":
            raise ConfigError(
                "model.trainer 'lightgbm' is CPU-only in this build; use device cpu or auto"
            )
        return DevicePlan(device="cpu", cuda_cluster=False, reason="lightgbm is CPU-only here")
    if requested == "cpu":
        return DevicePlan(device="cpu", cuda_cluster=False, reason="cpu requested")
    if requested == "cuda":
        if not gpus or not xgboost_cuda:
            raise ConfigError(
                "model.device is 'cuda' but "
                + ("no GPU is visible" if not gpus else "this XGBoost build has no CUDA support")
            )
        if not dask_cuda:
            raise ConfigError(f"model.device is 'cuda' but {GPU_EXTRA_HINT}")
        return DevicePlan(
            device="cuda", cuda_cluster=True, reason=f"cuda requested; GPUs: {', '.join(gpus)}"
        )
    missing = (
        "no GPU visible"
        if not gpus
        else "XGBoost built without CUDA"
        if not xgboost_cuda
        else GPU_EXTRA_HINT
        if not dask_cuda
        else None
    )
    if missing is not None:
        return DevicePlan(device="cpu", cuda_cluster=False, reason=f"auto: {missing}")
    return DevicePlan(device="cuda", cuda_cluster=True, reason=f"auto: GPU visible ({gpus[0]})")


def device_plan(
    requested: Literal["cpu", "cuda", "auto"], trainer: Literal["xgboost", "lightgbm"] = "xgboost"
) -> DevicePlan:
    """``plan_device`` for this machine: its GPUs, its XGBoost build, whether dask-cuda imports."""
    if requested == "cpu":  # no probing needed
        return plan_device("cpu", [], xgboost_cuda=False, dask_cuda=False, trainer=trainer)
    return plan_device(
        requested,
        visible_gpus(),
        xgboost_cuda=bool(xgb.build_info().get("USE_CUDA")),
        dask_cuda=importlib.util.find_spec("dask_cuda") is not None,
        trainer=trainer,
    )


def resolve_device(requested: Literal["cpu", "cuda", "auto"]) -> tuple[Device, str]:
    """Pick the XGBoost training device and say why (see ``plan_device``)."""
    plan = device_plan(requested)
    return plan.device, plan.reason


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
def dask_client(
    address: str | None, cluster: ClusterParams, model: ModelParams | None = None
) -> Iterator[Client]:
    """Connect to ``address``, or start a local cluster for the block.

    The local cluster has one worker per GPU (``dask_cuda.LocalCUDACluster``) when ``model``
    trains on CUDA, else ``cluster.n_workers`` worker processes.
    """
    if address:
        with Client(address) as client:
            _wait_for_a_worker(client, address)
            yield client
        return
    plan = device_plan(model.device, model.trainer) if model is not None else None
    if plan is not None and plan.cuda_cluster:
        from dask_cuda import LocalCUDACluster  # type: ignore[import-not-found]  # noqa: PLC0415

        logger.info("starting a LocalCUDACluster, one worker per GPU (%s)", plan.reason)
        with (
            LocalCUDACluster(
                threads_per_worker=cluster.threads_per_worker,
                dashboard_address=":0",
                silence_logs=logging.WARNING,
            ) as gpu_cluster,
            Client(gpu_cluster) as client,
        ):
            yield client
        return
    if plan is not None and plan.reason.startswith("auto:"):
        logger.info("training on CPU: %s", plan.reason.removeprefix("auto: "))
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


def _wait_for_a_worker(client: Client, address: str, timeout_s: float = 60.0) -> None:
    """An external scheduler may be between workers (a nanny restarting one): wait, then say so."""
    try:
        client.wait_for_workers(1, timeout=timeout_s)
    except TimeoutError as exc:
        raise ConfigError(
            f"the Dask scheduler at {address} has no workers after {timeout_s:.0f} s: "
            "start some (`dask worker " + address + "`) or unset EVENFLOW_DASK_ADDRESS"
        ) from exc


def live_workers(client: Client) -> dict[str, dict[str, Any]]:
    """The workers the scheduler knows now, asked directly.

    Not ``client.scheduler_info()``: it returns a cache that the client's periodic refresh
    overwrites with a summary holding no workers, so under load it can come back empty while every
    worker is alive (a false "worker lost" that cost one 10M-row training attempt).
    """
    if client.scheduler is None:
        raise WorkerLost("the Dask client is not connected to a scheduler")
    identity = client.sync(client.scheduler.identity, n_workers=-1)
    workers: dict[str, dict[str, Any]] = identity["workers"]
    return workers


def ranked_workers(client: Client) -> list[str]:
    """Worker addresses in rank order.

    XGBoost ranks workers by task id "[xgboost.dask-<worker name>]:<address>"; pinning in the
    same order keeps shard i on rank i mod n across clusters, so re-runs build the same model.
    """
    info = live_workers(client)
    if not info:
        raise WorkerLost("the Dask scheduler has no workers left")
    return sorted(info, key=lambda address: f"[xgboost.dask-{info[address]['name']}]:{address}")


def pinned_frame(
    client: Client,
    manifest: ShardManifest,
    split: str,
    keep: Sequence[str],
    weights: SampleWeights | None = None,
) -> tuple[dd.DataFrame, dict[str, int]]:
    """Build a Dask frame whose partitions are read on fixed workers; return it and the shard map."""
    workers = ranked_workers(client)
    paths = manifest.split_paths(split)  # type: ignore[arg-type]
    if len(paths) < len(workers):
        # XGBoost refuses a worker without rows when features are categorical.
        raise ConfigError(
            f"the {split} split has {len(paths)} shard(s) for {len(workers)} Dask workers: every "
            "worker needs one; raise shards.n_shards or use fewer workers"
        )
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

CHECKPOINT_FILE = "checkpoint.ubj"
_CHECKPOINT_ATTR = "evenflow_checkpoint"
# Test-only fault injection, read on the driver: "ROUND:MARKER" makes the rank-0 worker SIGKILL
# itself after ROUND boosted rounds, once (the marker file records that it did). Not user config.
KILL_WORKER_ENV = "EVENFLOW_TEST_KILL_WORKER_AT"


class WorkerLost(RuntimeError):
    """A Dask worker left the cluster while it was training: an infrastructure failure."""


# Phrases of XGBoost / LightGBM errors raised when a peer of the collective went away.
_PEER_LOSS_WORDS = (
    "socket",
    "connection",
    "connect",
    "peer",
    "collective",
    "communicator",
    "tracker",
    "allreduce",
    "broken pipe",
    "timed out",
    "timeout",
    "worker",
)


def is_infrastructure_failure(exc: BaseException) -> bool:
    """Whether ``exc`` is an infrastructure failure, worth a retry.

    True for a lost worker, connection or collective peer (also as the cause of ``exc``);
    False for code and data errors (``EvenflowError``, ``ValueError``, ``KeyError``, ...).
    """
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, EvenflowError):
            return False
        if isinstance(
            current, KilledWorker | CommClosedError | WorkerLost | TimeoutError | OSError
        ):
            return True
        if _is_peer_loss(current):
            return True
        if isinstance(current, BaseExceptionGroup):
            pending.extend(current.exceptions)
        pending.extend(e for e in (current.__cause__, current.__context__) if e is not None)
    return False


def _is_peer_loss(exc: BaseException) -> bool:
    """An XGBoost or LightGBM error whose message says a collective peer was lost."""
    kind = type(exc)
    if not (
        kind.__module__.startswith(("xgboost", "lightgbm")) and kind.__name__.endswith("Error")
    ):
        return False
    message = str(exc).lower()
    return any(word in message for word in _PEER_LOSS_WORDS)


class Checkpoint(BaseModel):
    """What a checkpoint records beside the booster: where training was and how it judged."""

    model_config = ConfigDict(frozen=True)

    fingerprint: str
    rounds: int
    best_iteration: int
    best_score: float
    valid_auc: tuple[float, ...]


def checkpoint_fingerprint(params: Mapping[str, Any], *parts: object) -> str:
    """Hash of what makes a checkpoint reusable: booster params, data, placement, stopping."""
    payload = json.dumps([dict(params), *parts], sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


def load_checkpoint(path: Path, fingerprint: str) -> tuple[xgb.Booster, Checkpoint] | None:
    """The booster saved at ``path`` and its record, when it belongs to this training."""
    if not path.is_file():
        return None
    try:
        booster = xgb.Booster(model_file=str(path))
        record = Checkpoint.model_validate_json(booster.attr(_CHECKPOINT_ATTR) or "")
    except (xgb.core.XGBoostError, ValueError) as exc:
        logger.warning("ignoring unreadable checkpoint %s: %s", path, exc)
        return None
    if record.fingerprint != fingerprint or booster.num_boosted_rounds() != record.rounds:
        logger.info("ignoring checkpoint %s: it was made by another training", path)
        return None
    booster.set_attr(**{_CHECKPOINT_ATTR: None})
    return booster, record


class _SaveCheckpoint(xgb.callback.TrainingCallback):
    """Every ``every`` rounds rank 0 saves the booster with its record (temp file, then rename)."""

    def __init__(self, path: str, every: int, fingerprint: str, history: Sequence[float]) -> None:
        self.path = path
        self.every = every
        self.fingerprint = fingerprint
        self.history = list(history)  # valid AUC of the rounds before this attempt

    def after_iteration(self, model: Any, epoch: int, evals_log: dict[str, Any]) -> bool:
        rounds = model.num_boosted_rounds()
        if rounds % self.every or xgb.collective.get_rank() != 0:
            return False
        aucs = [*self.history, *evals_log.get("valid", {}).get("auc", [])]
        record = Checkpoint(
            fingerprint=self.fingerprint,
            rounds=rounds,
            best_iteration=int(model.attr("best_iteration") or rounds - 1),
            best_score=float(model.attr("best_score") or aucs[-1]),
            valid_auc=tuple(float(a) for a in aucs),
        )
        copy = model.copy()
        copy.set_attr(**{_CHECKPOINT_ATTR: record.model_dump_json()})
        tmp = f"{self.path}.{os.getpid()}.tmp.ubj"
        copy.save_model(tmp)
        os.replace(tmp, self.path)
        return False


class _KillWorkerOnce(xgb.callback.TrainingCallback):
    """Test-only: the rank-0 worker SIGKILLs itself after ``rounds`` rounds, once per marker."""

    def __init__(self, rounds: int, marker: str) -> None:
        self.rounds = rounds
        self.marker = marker

    def after_iteration(self, model: Any, epoch: int, evals_log: dict[str, Any]) -> bool:
        if model.num_boosted_rounds() < self.rounds or xgb.collective.get_rank() != 0:
            return False
        try:
            os.close(os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return False
        os.kill(os.getpid(), signal.SIGKILL)
        return False  # pragma: no cover


def _fault_callbacks() -> list[xgb.callback.TrainingCallback]:
    spec = os.environ.get(KILL_WORKER_ENV)
    if not spec:
        return []
    rounds, marker = spec.split(":", 1)
    return [_KillWorkerOnce(int(rounds), marker)]


class _ResumedEarlyStopping(xgb.callback.EarlyStopping):
    """Early stopping on valid AUC that, on a resumed attempt, remembers the best so far."""

    def __init__(self, rounds: int, resumed: Checkpoint | None) -> None:
        super().__init__(rounds=rounds, metric_name="auc", data_name="valid", maximize=True)
        self.resumed = resumed

    def before_training(self, model: Any) -> Any:
        model = super().before_training(model)
        if self.resumed is not None:
            best = self.resumed.best_score
            self.stopping_history = {"valid": {"auc": [best]}}
            self.best_scores = {"valid": {"auc": [best]}}
            self.current_rounds = self.resumed.rounds - 1 - self.resumed.best_iteration
        return model


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
    """Train with early stopping on valid, save the booster, score the valid and test splits.

    Every ``model.checkpoint_every`` rounds the booster is saved to ``out_dir``; a later call
    with the same data and parameters (a retry after a lost worker) resumes from it. With
    ``keep_all_rounds`` every round is kept (a refit whose rounds were chosen elsewhere).
    """
    if model.trainer == "lightgbm":
        return train_lightgbm(
            client,
            manifest,
            model,
            threads_per_worker,
            out_dir,
            weights=weights,
            keep_all_rounds=keep_all_rounds,
        )
    device, reason = resolve_device(model.device)
    logger.info("training on %s (%s)", device, reason)
    client.forward_logging(PROGRESS_LOGGER, level=logging.INFO)
    features = [f.name for f in manifest.features]
    train, placement = pinned_frame(client, manifest, "train", keep=[], weights=weights)
    valid, _ = pinned_frame(client, manifest, "valid", keep=[])
    params = booster_params(model, device, threads_per_worker)
    n_workers = len(live_workers(client))
    checkpoint_path = out_dir / CHECKPOINT_FILE
    fingerprint = checkpoint_fingerprint(
        params,
        manifest.data_md5,
        [s.md5 for s in manifest.shards],
        placement,
        n_workers,
        model.num_boost_round,
        model.early_stopping_rounds,
        weights.model_dump(mode="json") if weights is not None else None,
    )
    resumed = load_checkpoint(checkpoint_path, fingerprint) if model.checkpoint_every else None
    start_booster, record = resumed if resumed is not None else (None, None)
    done_rounds = record.rounds if record is not None else 0
    if record is not None:
        logger.info("resuming from the checkpoint at round %d", done_rounds)
    callbacks: list[xgb.callback.TrainingCallback] = [
        _LogProgress(every=50),
        _ResumedEarlyStopping(model.early_stopping_rounds, record),
    ]
    if model.checkpoint_every:
        out_dir.mkdir(parents=True, exist_ok=True)
        history = record.valid_auc if record is not None else ()
        callbacks.append(
            _SaveCheckpoint(str(checkpoint_path), model.checkpoint_every, fingerprint, history)
        )
    callbacks.extend(_fault_callbacks())
    started = time.perf_counter()
    if start_booster is not None and record is not None and _finished(record, model):
        booster_all, aucs = start_booster, list(record.valid_auc)
    else:
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
        output = _train_watched(
            client,
            params=params,
            dtrain=dtrain,
            num_boost_round=model.num_boost_round - done_rounds,
            evals=[(dvalid, "valid")],
            callbacks=callbacks,
            verbose_eval=False,
            xgb_model=start_booster,
        )
        booster_all = output["booster"]
        aucs = [*(record.valid_auc if record else ()), *output["history"]["valid"]["auc"]]
    seconds = time.perf_counter() - started
    best = (
        booster_all.num_boosted_rounds() - 1 if keep_all_rounds else int(booster_all.best_iteration)
    )
    booster = booster_all[: best + 1]  # keep the early-stopped model only
    model_path = _save_booster(booster, out_dir / "model.ubj")
    predictions_path = write_parquet_atomic(
        predict_split(client, booster, manifest, "test"), out_dir / "predictions.parquet"
    )
    valid_predictions_path = write_parquet_atomic(
        predict_split(client, booster, manifest, "valid"), out_dir / "valid_predictions.parquet"
    )
    checkpoint_path.unlink(missing_ok=True)  # the finished model supersedes it
    return TrainingResult(
        model_path=model_path,
        params=params,
        device=device,
        device_reason=reason,
        n_workers=n_workers,
        partition_workers=placement,
        seed=model.seed,
        best_iteration=best,
        num_boosted_rounds=booster.num_boosted_rounds(),
        valid_auc=float(aucs[best]),
        predictions_path=predictions_path,
        valid_predictions_path=valid_predictions_path,
        train_seconds=seconds,
        resumed_from_round=done_rounds,
    )


def _finished(record: Checkpoint, model: ModelParams) -> bool:
    """The checkpoint already holds every round, or early stopping had already fired."""
    return (
        record.rounds >= model.num_boost_round
        or record.rounds - 1 - record.best_iteration >= model.early_stopping_rounds
    )


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
    keep_all_rounds: bool = False,
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
    best_rounds = (
        len(aucs) if keep_all_rounds else int(max(range(len(aucs)), key=aucs.__getitem__)) + 1
    )
    model_path = out_dir / "model.txt"
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
        predictions_path=write_parquet_atomic(
            _predict_local(local, manifest, "test"), out_dir / "predictions.parquet"
        ),
        valid_predictions_path=write_parquet_atomic(
            _predict_local(local, manifest, "valid"), out_dir / "valid_predictions.parquet"
        ),
        train_seconds=seconds,
    )


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
        read_partition(str(path), manifest.features, manifest.target, manifest.positive_label, [])
        for path in manifest.split_paths("valid")
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
