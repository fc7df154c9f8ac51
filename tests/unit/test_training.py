"""Distributed training: pinned shards, identical re-runs, device choice, labels and weights.

Real Dask clusters of worker processes and real XGBoost on 3,000 Adult rows (4 shards per split).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from distributed import Client, KilledWorker
from distributed.comm.core import CommClosedError
from sklearn.metrics import roc_auc_score

from evenflow.assess import reweighing
from evenflow.config.run import ClusterParams, ModelParams
from evenflow.data.features import label_values
from evenflow.errors import ConfigError, DataError
from evenflow.records import ShardManifest, TrainingResult
from evenflow.training.checkpoints import CHECKPOINT_FILE
from evenflow.training.cluster import dask_client, live_workers, ranked_workers
from evenflow.training.device import GPU_EXTRA_HINT, plan_device, resolve_device, visible_gpus
from evenflow.training.engine import train_model
from evenflow.training.failures import WorkerLost, is_infrastructure_failure
from evenflow.training.faults import KILL_WORKER_ENV
from evenflow.training.partitions import LABEL, SCORE, WEIGHT, SampleWeights, read_partition
from tests.unit.conftest import sample_shards

N_WORKERS = 2
CLUSTER = ClusterParams(n_workers=N_WORKERS, threads_per_worker=1)
MODEL = ModelParams(device="cpu", num_boost_round=40, early_stopping_rounds=10)


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory, adult_sample_path: Path) -> ShardManifest:
    """The 3,000-row Adult sample cut into 4 shards per split."""
    return sample_shards(adult_sample_path, tmp_path_factory.mktemp("shards") / "adult", 4)


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    """One local cluster of two single-threaded worker processes for the module."""
    with dask_client(None, CLUSTER) as shared:
        yield shared


def _train(
    client: Client,
    manifest: ShardManifest,
    out_dir: Path,
    weights: SampleWeights | None = None,
) -> TrainingResult:
    return train_model(
        client, manifest, MODEL, CLUSTER.threads_per_worker, out_dir, weights=weights
    )


@pytest.fixture(scope="module")
def runs(
    client: Client, manifest: ShardManifest, tmp_path_factory: pytest.TempPathFactory
) -> list[TrainingResult]:
    """Three runs with the same data, params and worker count: two on the shared cluster, and
    one on a cluster started afresh (what a re-run does)."""
    root = tmp_path_factory.mktemp("runs")
    first = _train(client, manifest, root / "first")
    second = _train(client, manifest, root / "second")
    with dask_client(None, CLUSTER) as fresh:
        third = _train(fresh, manifest, root / "fresh-cluster")
    return [first, second, third]


def _scores(result: TrainingResult) -> np.ndarray:
    scores: np.ndarray = pd.read_parquet(result.predictions_path)[SCORE].to_numpy()
    return scores


def test_same_data_params_and_workers_give_identical_predictions(
    runs: list[TrainingResult],
) -> None:
    first, *others = runs
    for other in others:
        assert np.array_equal(_scores(first), _scores(other))
        pd.testing.assert_frame_equal(
            pd.read_parquet(first.predictions_path), pd.read_parquet(other.predictions_path)
        )
        assert first.best_iteration == other.best_iteration
        assert first.valid_auc == other.valid_auc


def test_same_data_params_and_workers_save_identical_boosters(runs: list[TrainingResult]) -> None:
    first, *others = runs
    for other in others:
        assert first.model_path.read_bytes() == other.model_path.read_bytes()


def test_train_shards_are_pinned_to_ranks_in_order(
    runs: list[TrainingResult], manifest: ShardManifest
) -> None:
    train_paths = manifest.split_paths("train")
    assert len(train_paths) == 4
    expected = {
        str(path.relative_to(manifest.shard_dir)): index % N_WORKERS
        for index, path in enumerate(train_paths)
    }
    for result in runs:
        assert result.n_workers == N_WORKERS
        assert result.partition_workers == expected
    assert set(expected.values()) == set(range(N_WORKERS))


def test_run_describes_a_cpu_model_that_stopped_early(runs: list[TrainingResult]) -> None:
    result = runs[0]
    assert result.device == "cpu"
    assert result.device_reason == "cpu requested"
    assert result.num_boosted_rounds == result.best_iteration + 1
    assert 0.8 < result.valid_auc <= 1.0
    assert result.params["nthread"] == CLUSTER.threads_per_worker
    scores = _scores(result)
    assert ((scores > 0) & (scores < 1)).all()


def test_cpu_is_used_when_asked_and_the_reason_says_so() -> None:
    assert resolve_device("cpu") == ("cpu", "cpu requested")


def test_cuda_without_a_visible_gpu_is_refused() -> None:
    if visible_gpus():
        try:
            device, reason = resolve_device("cuda")
        except ConfigError as exc:
            assert "no CUDA support" in str(exc)
        else:
            assert device == "cuda"
            assert reason.startswith("cuda requested; GPUs:")
        return
    with pytest.raises(ConfigError, match="no GPU is visible"):
        resolve_device("cuda")


def test_auto_falls_back_to_cpu_without_a_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("evenflow.training.device.visible_gpus", list)
    assert resolve_device("auto") == ("cpu", "auto: no GPU visible")
    with pytest.raises(ConfigError, match="no GPU is visible"):
        resolve_device("cuda")


def test_numeric_targets_compare_as_numbers() -> None:
    labels = label_values(pd.Series([0, 1, 1.0, 2], name="y"), "1")
    assert labels.tolist() == [0, 1, 1, 0]
    assert labels.dtype == "int64"


def test_text_targets_compare_as_stripped_text() -> None:
    labels = label_values(pd.Series([" >50K", "<=50K", ">50K "], name="income"), ">50K")
    assert labels.tolist() == [1, 0, 1]


def test_a_text_positive_label_for_a_numeric_target_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"'yes' is not a number but target 'y' is numeric"):
        label_values(pd.Series([0, 1], name="y"), "yes")


def _reweighing(manifest: ShardManifest, column: str) -> SampleWeights:
    counts: Counter[tuple[str, int]] = Counter()
    for path in manifest.split_paths("train"):
        shard = pd.read_parquet(path)
        labels = label_values(shard[manifest.target], manifest.positive_label)
        counts.update(reweighing.cell_counts(labels, shard[column]))
    return SampleWeights(column=column, table=reweighing.reweighing_table(counts))


def test_a_partition_carries_the_weights_of_its_rows(manifest: ShardManifest) -> None:
    weights = _reweighing(manifest, "sex")
    path = str(manifest.split_paths("train")[0])
    args = (path, manifest.features, manifest.target, manifest.positive_label, ["sex"])
    plain = read_partition(*args)
    weighted = read_partition(*args, weights=weights)
    assert WEIGHT not in plain.columns
    raw = pd.read_parquet(path)
    expected = reweighing.weights_for(weighted[LABEL], raw["sex"], weights.table)
    assert np.array_equal(weighted[WEIGHT].to_numpy(), expected)
    assert weighted[WEIGHT].nunique() > 1
    pd.testing.assert_frame_equal(weighted.drop(columns=WEIGHT), plain)


def test_training_with_reweighing_changes_the_model(
    client: Client,
    manifest: ShardManifest,
    runs: list[TrainingResult],
    tmp_path: Path,
) -> None:
    weighted = _train(client, manifest, tmp_path / "weighted", _reweighing(manifest, "sex"))
    assert not np.array_equal(_scores(weighted), _scores(runs[0]))
    assert weighted.partition_workers == runs[0].partition_workers


GPUS = ["GPU 0: NVIDIA H100 (UUID: GPU-1)"]


@pytest.mark.parametrize(
    ("requested", "gpus", "xgboost_cuda", "dask_cuda", "device", "cuda_cluster", "reason"),
    [
        ("cpu", GPUS, True, True, "cpu", False, "cpu requested"),
        ("auto", GPUS, True, True, "cuda", True, f"auto: GPU visible ({GPUS[0]})"),
        ("auto", [], True, True, "cpu", False, "auto: no GPU visible"),
        ("auto", GPUS, False, True, "cpu", False, "auto: XGBoost built without CUDA"),
        ("auto", GPUS, True, False, "cpu", False, f"auto: {GPU_EXTRA_HINT}"),
        ("cuda", GPUS, True, True, "cuda", True, f"cuda requested; GPUs: {GPUS[0]}"),
    ],
)
def test_device_plan_picks_the_cuda_cluster_only_when_everything_is_there(
    requested: Literal["cpu", "cuda", "auto"],
    gpus: list[str],
    xgboost_cuda: bool,
    dask_cuda: bool,
    device: str,
    cuda_cluster: bool,
    reason: str,
) -> None:
    plan = plan_device(requested, gpus, xgboost_cuda=xgboost_cuda, dask_cuda=dask_cuda)
    assert (plan.device, plan.cuda_cluster, plan.reason) == (device, cuda_cluster, reason)


@pytest.mark.parametrize(
    ("gpus", "xgboost_cuda", "dask_cuda", "message"),
    [
        ([], True, True, "no GPU is visible"),
        (GPUS, False, True, "no CUDA support"),
        (GPUS, True, False, "uv sync --extra gpu"),
    ],
)
def test_cuda_that_cannot_be_honoured_is_a_config_error(
    gpus: list[str], xgboost_cuda: bool, dask_cuda: bool, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        plan_device("cuda", gpus, xgboost_cuda=xgboost_cuda, dask_cuda=dask_cuda)


def test_lightgbm_is_cpu_only_and_refuses_cuda() -> None:
    plan = plan_device("auto", GPUS, xgboost_cuda=True, dask_cuda=True, trainer="lightgbm")
    assert (plan.device, plan.cuda_cluster) == ("cpu", False)
    assert "CPU-only" in plan.reason
    with pytest.raises(ConfigError, match="CPU-only"):
        plan_device("cuda", GPUS, xgboost_cuda=True, dask_cuda=True, trainer="lightgbm")


def _killed_worker() -> KilledWorker:
    """The error Dask raises for a task whose workers kept dying (built without a scheduler)."""
    return KilledWorker.__new__(KilledWorker)


def _chained(outer: Exception, cause: BaseException) -> Exception:
    outer.__cause__ = cause
    return outer


@pytest.mark.parametrize(
    ("error", "retry"),
    [
        (_killed_worker(), True),
        (CommClosedError("in <TCP>: Stream is closed"), True),
        (ConnectionResetError("reset by peer"), True),
        (TimeoutError(), True),
        (WorkerLost("worker left"), True),
        (xgb.core.XGBoostError("Ring Allreduce failed. socket.h: Poll error"), True),
        (_chained(RuntimeError("training failed"), _killed_worker()), True),
        (xgb.core.XGBoostError("Invalid parameter max_depth: -1"), False),
        (ConfigError("positive label 'yes' is not a number"), False),
        (DataError("target has 3 missing values"), False),
        (_chained(ConfigError("bad config"), OSError("disk")), False),
        (ValueError("could not convert"), False),
        (KeyError("age"), False),
        (FileNotFoundError(2, "No such file or directory"), False),
        (PermissionError(13, "Permission denied"), False),
        (OSError(28, "No space left on device"), False),
    ],
)
def test_only_infrastructure_failures_are_worth_a_retry(error: Exception, retry: bool) -> None:
    assert is_infrastructure_failure(error) is retry


def test_training_resumes_from_its_checkpoint_after_a_worker_is_killed(
    manifest: ShardManifest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = ModelParams(
        device="cpu",
        num_boost_round=120,
        early_stopping_rounds=120,
        learning_rate=0.1,
        checkpoint_every=20,
    )
    with dask_client(None, CLUSTER) as fresh:
        baseline = train_model(fresh, manifest, model, 1, tmp_path / "baseline")
    marker = tmp_path / "killed"
    monkeypatch.setenv(KILL_WORKER_ENV, f"50:{marker}")
    out_dir = tmp_path / "interrupted"
    with dask_client(None, CLUSTER) as first, pytest.raises(Exception) as failure:
        train_model(first, manifest, model, 1, out_dir)
    assert marker.exists()
    assert is_infrastructure_failure(failure.value), repr(failure.value)
    assert (out_dir / CHECKPOINT_FILE).is_file()
    with dask_client(None, CLUSTER) as second:  # what the retried task does
        resumed = train_model(second, manifest, model, 1, out_dir)

    assert resumed.resumed_from_round == 40
    assert baseline.resumed_from_round == 0
    assert not (out_dir / CHECKPOINT_FILE).exists()
    assert resumed.num_boosted_rounds == resumed.best_iteration + 1
    assert 0 <= resumed.best_iteration < model.num_boost_round
    aucs = [
        roc_auc_score(frame[LABEL], frame[SCORE])
        for frame in (pd.read_parquet(r.predictions_path) for r in (baseline, resumed))
    ]
    assert abs(aucs[0] - aucs[1]) < 0.01, aucs


def test_live_workers_ask_the_scheduler_not_the_client_cache(client: Client) -> None:
    """The client's periodic refresh leaves a summary without workers in its cache."""
    client.sync(client._update_scheduler_info, n_workers=0)  # what the periodic refresh stores
    assert client._scheduler_identity["workers"] == {}
    assert len(live_workers(client)) == N_WORKERS
    assert len(ranked_workers(client)) == N_WORKERS
