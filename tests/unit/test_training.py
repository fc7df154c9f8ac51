"""Distributed training: pinned shards, identical re-runs, device choice, labels and weights.

Real Dask clusters of worker processes and real XGBoost on 3,000 Adult rows (4 shards per split).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from distributed import Client

from evenflow import mitigation
from evenflow.errors import ConfigError
from evenflow.params import ClusterParams, ModelParams
from evenflow.records import ShardManifest, TrainingResult
from evenflow.sharding import feature_specs, write_shards
from evenflow.training import (
    LABEL,
    SCORE,
    WEIGHT,
    SampleWeights,
    dask_client,
    label_values,
    read_partition,
    resolve_device,
    train_model,
    visible_gpus,
)
from tests.conftest import sample_params

N_WORKERS = 2
CLUSTER = ClusterParams(n_workers=N_WORKERS, threads_per_worker=1)
MODEL = ModelParams(device="cpu", num_boost_round=40, early_stopping_rounds=10)


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory, adult_sample_path: Path) -> ShardManifest:
    """The 3,000-row Adult sample cut into 4 shards per split."""
    params = sample_params(adult_sample_path, shards__n_shards=4)
    spec = params.dataset
    frame = pd.read_csv(adult_sample_path)
    shard_dir = tmp_path_factory.mktemp("shards") / "adult"
    shards = write_shards(frame, spec, params.split, params.shards, shard_dir)
    return ShardManifest(
        dataset=spec.name,
        raw_md5="0" * 32,
        data_md5="0" * 32 + ".dir",
        shard_dir=shard_dir,
        shards=tuple(shards),
        features=feature_specs(frame, spec),
        target=spec.target,
        positive_label=spec.positive_label,
        sensitive=spec.sensitive,
    )


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
    monkeypatch.setattr("evenflow.training.visible_gpus", list)
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
        counts.update(mitigation.cell_counts(labels, shard[column]))
    return SampleWeights(column=column, table=mitigation.reweighing_table(counts))


def test_a_partition_carries_the_weights_of_its_rows(manifest: ShardManifest) -> None:
    weights = _reweighing(manifest, "sex")
    path = str(manifest.split_paths("train")[0])
    args = (path, manifest.features, manifest.target, manifest.positive_label, ["sex"])
    plain = read_partition(*args)
    weighted = read_partition(*args, weights=weights)
    assert WEIGHT not in plain.columns
    raw = pd.read_parquet(path)
    expected = mitigation.weights_for(weighted[LABEL], raw["sex"], weights.table)
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
