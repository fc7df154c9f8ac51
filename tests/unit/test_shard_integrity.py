"""A worker checks the md5 of the shard bytes it read against the manifest: a changed shard stops
training with one line that names it, and is never retried as a lost worker.

Real shards of the Adult sample, a real local Dask cluster and real XGBoost / LightGBM.
"""

from __future__ import annotations

import logging
import pickle
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import typer
from distributed import Client

from evenflow import layout
from evenflow.cli.handling import BAD_INPUT_EXIT, handled
from evenflow.config.run import ClusterParams, ModelParams
from evenflow.errors import DataError, ShardChanged
from evenflow.io import file_md5
from evenflow.records import ShardManifest
from evenflow.training.cluster import dask_client, ranked_workers
from evenflow.training.engine import train_model
from evenflow.training.failures import is_infrastructure_failure
from evenflow.training.partitions import LABEL, read_partition, read_shard
from tests.unit.conftest import sample_shards

CLUSTER = ClusterParams(n_workers=2, threads_per_worker=1)


@pytest.fixture(scope="module")
def versioned(tmp_path_factory: pytest.TempPathFactory, adult_sample_path: Path) -> ShardManifest:
    """The 3,000-row Adult sample cut into 2 shards per split, as sharding leaves it."""
    return sample_shards(adult_sample_path, tmp_path_factory.mktemp("versioned") / "adult", 2)


@pytest.fixture
def manifest(versioned: ShardManifest, tmp_path: Path) -> ShardManifest:
    """A copy of the versioned shards this test may change."""
    copy = shutil.copytree(versioned.shard_dir, tmp_path / "adult")
    return versioned.model_copy(update={"shard_dir": copy})


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    """One local cluster of two worker processes for the module."""
    with dask_client(None, CLUSTER) as shared:
        yield shared


def tamper(path: Path) -> None:
    """Rewrite a shard with one value changed: a valid parquet file whose bytes differ."""
    table = pq.read_table(path)
    ages = table.column("age").to_pylist()
    ages[0] += 1
    table = table.set_column(table.schema.get_field_index("age"), "age", pa.array(ages))
    pq.write_table(table, path, compression="zstd")


def _train_shard(manifest: ShardManifest, index: int) -> tuple[Path, str]:
    info = [s for s in manifest.shards if s.split == "train"][index]
    return manifest.shard_dir / info.path, info.md5


def test_a_shard_with_its_manifest_md5_reads_as_parquet(manifest: ShardManifest) -> None:
    path, md5 = _train_shard(manifest, 0)
    pd.testing.assert_frame_equal(read_shard(str(path), md5), pd.read_parquet(path))
    frame = read_partition(
        str(path), manifest.features, manifest.target, manifest.positive_label, [], md5=md5
    )
    assert len(frame) == len(pd.read_parquet(path))
    assert set(frame[LABEL].unique()) <= {0, 1}


def test_a_changed_shard_is_refused_naming_it_and_both_md5s(manifest: ShardManifest) -> None:
    path, md5 = _train_shard(manifest, 0)
    tamper(path)
    with pytest.raises(ShardChanged) as caught:
        read_partition(
            str(path), manifest.features, manifest.target, manifest.positive_label, [], md5=md5
        )
    error = caught.value
    assert isinstance(error, DataError)
    assert error.shard.endswith("train/part-00000-of-00002.parquet")
    assert Path(error.shard).resolve() == path.resolve()
    assert Path(error.folder).resolve() == manifest.shard_dir.resolve()
    assert (error.expected, error.actual) == (md5, file_md5(path))
    message = str(error)
    assert len(message.splitlines()) == 1
    assert f"md5 {file_md5(path)} read, manifest says {md5}" in message
    assert "changed after it was versioned" in message
    # Without a manifest md5 there is nothing to compare: the file is read as it is.
    assert len(read_shard(str(path), None)) == len(pd.read_parquet(path))


def test_a_changed_shard_is_a_data_error_after_crossing_from_a_worker() -> None:
    error = ShardChanged("data/x/train/part-0.parquet", "a" * 32, "b" * 32, "data/x")
    crossed = pickle.loads(pickle.dumps(error))
    assert type(crossed) is ShardChanged
    assert str(crossed) == str(error)
    assert not is_infrastructure_failure(crossed)
    wrapped = RuntimeError("the training job failed")
    wrapped.__cause__ = crossed
    assert not is_infrastructure_failure(wrapped)


def _dump(error: Exception) -> logging.LogRecord:
    """The record a Dask worker logs for a task that raised ``error``."""
    return logging.LogRecord(
        "distributed.worker",
        logging.ERROR,
        "worker.py",
        1,
        "Compute Failed\nKey:       %s\nState:     %s\nTask:  %s\nException: %r\nTraceback: %r\n",
        ("read_partition-1", "executing", "<Task read_partition>", repr(error), "  File ..."),
        None,
    )


def _drops_the_dump() -> bool:
    """On a worker: whether its log drops the dump of a changed shard and keeps any other."""
    worker_log = logging.getLogger("distributed.worker")
    changed = ShardChanged("data/x/train/part-0.parquet", "a" * 32, "b" * 32, "data/x")
    return not worker_log.filter(_dump(changed)) and bool(
        worker_log.filter(_dump(ValueError("a bug")))
    )


def _reader_of(client: Client, path: Path, manifest: ShardManifest) -> str:
    """The worker that reads ``path``: train shard ``i`` is pinned to the worker of rank ``i``."""
    index = [manifest.shard_dir / s.path for s in manifest.shards if s.split == "train"].index(path)
    return ranked_workers(client)[index % len(ranked_workers(client))]


@pytest.mark.parametrize("trainer", ["xgboost", "lightgbm"])
def test_training_on_a_changed_shard_fails_with_one_line_naming_it(
    trainer: Literal["xgboost", "lightgbm"],
    client: Client,
    manifest: ShardManifest,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The second train shard is read on the second worker, so the error crosses from it.
    path, md5 = _train_shard(manifest, 1)
    tamper(path)
    model = ModelParams(trainer=trainer, device="cpu", num_boost_round=20, early_stopping_rounds=5)
    with pytest.raises(ShardChanged) as caught:
        train_model(client, manifest, model, CLUSTER.threads_per_worker, tmp_path / "out")
    assert Path(caught.value.shard).resolve() == path.resolve()
    assert caught.value.expected == md5
    assert not is_infrastructure_failure(caught.value)
    assert not (tmp_path / "out" / layout.PREDICTIONS_FILE).exists()
    # The worker that read the shard keeps its "Compute Failed" dump of the error off the console.
    quiet = client.run(_drops_the_dump, workers=[_reader_of(client, path, manifest)])
    assert list(quiet.values()) == [True]

    def train() -> None:
        train_model(client, manifest, model, CLUSTER.threads_per_worker, tmp_path / "again")

    with pytest.raises(typer.Exit) as exited:
        handled(train)()
    assert exited.value.exit_code == BAD_INPUT_EXIT
    shown = capsys.readouterr().err.strip().splitlines()
    assert len(shown) == 1
    assert shown[0].startswith(f"error: shard {caught.value.shard}: md5 ")
    assert shown[0].endswith("byte for byte)")
