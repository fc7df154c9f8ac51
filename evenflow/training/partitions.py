"""Shards read on fixed workers: shard ``i`` on the worker of rank ``i mod n``, so re-runs build the same model.

The driver never holds the training data; each worker reads its own shards and checks their md5
against the manifest, so a model is never trained on bytes other than the versioned ones.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path

import dask.dataframe as dd
import pandas as pd
import pyarrow as pa
from distributed import Client, Future, wait

from evenflow.assess.reweighing import weights_for
from evenflow.data.features import label_values, typed_column
from evenflow.errors import ConfigError, ShardChanged
from evenflow.records import FeatureSpec, Record, ShardManifest
from evenflow.training.cluster import ranked_workers

LABEL = "label"
SCORE = "score"
WEIGHT = "weight"


class SampleWeights(Record):
    """Per-row training weights by (sensitive group, label) cell, e.g. from reweighing."""

    column: str
    table: dict[tuple[str, int], float]


def _shown(path: Path) -> str:
    """A path as the user types it: relative to the working directory when inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


class _DropShardChangedDump(logging.Filter):
    """Drops a Dask worker's "Compute Failed" dump of a :class:`ShardChanged`."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        # The record's arguments are the key, state, task, the exception's repr and its traceback.
        error = str(args[3]) if len(args) > 3 else ""  # noqa: PLR2004
        return not (
            str(record.msg).startswith("Compute Failed")
            and error.startswith(f"{ShardChanged.__name__}(")
        )


def _quiet_worker_dump() -> None:
    """Keep a worker from logging a changed shard as a six-line dump before the driver shows it.

    The driver re-raises the error and the CLI states it in one line; the worker's copy is noise.
    """
    worker_log = logging.getLogger("distributed.worker")
    if not any(isinstance(f, _DropShardChangedDump) for f in worker_log.filters):
        worker_log.addFilter(_DropShardChangedDump())


def read_shard(path: str, md5: str | None) -> pd.DataFrame:
    """A shard's rows, its bytes read once: hashed and parsed from the same buffer.

    Raises :class:`ShardChanged` when ``md5`` (the manifest's) is not the md5 of those bytes;
    ``None`` skips the check (a file that no manifest describes).
    """
    data = Path(path).read_bytes()
    if md5 is not None:
        actual = hashlib.md5(data, usedforsecurity=False).hexdigest()
        if actual != md5:
            # A shard sits one folder (its split or fold) below the shard directory.
            shard = Path(path)
            _quiet_worker_dump()
            raise ShardChanged(_shown(shard), md5, actual, _shown(shard.parents[1]))
    return pd.read_parquet(pa.BufferReader(data))


def read_partition(
    path: str,
    features: Sequence[FeatureSpec],
    label_column: str,
    positive_label: str,
    keep: Sequence[str],
    *,
    md5: str | None = None,
    weights: SampleWeights | None = None,
) -> pd.DataFrame:
    """Read one shard on a worker: typed features, a 0/1 label, the ``keep`` columns, weights.

    ``md5`` is the manifest's md5 of the shard: the bytes read must have it (see :func:`read_shard`).
    """
    raw = read_shard(path, md5)
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


def split_shards(manifest: ShardManifest, split: str) -> list[tuple[Path, str]]:
    """A split's shards in shard order: absolute path and the md5 the manifest recorded."""
    return [(manifest.shard_dir / s.path, s.md5) for s in manifest.shards if s.split == split]


def pinned_frame(
    client: Client,
    manifest: ShardManifest,
    split: str,
    keep: Sequence[str],
    weights: SampleWeights | None = None,
) -> tuple[dd.DataFrame, dict[str, int]]:
    """Build a Dask frame whose partitions are read on fixed workers; return it and the shard map."""
    workers = ranked_workers(client)
    shards = split_shards(manifest, split)
    if len(shards) < len(workers):
        # XGBoost refuses a worker without rows when features are categorical.
        raise ConfigError(
            f"the {split} split has {len(shards)} shard(s) for {len(workers)} Dask workers: every "
            "worker needs one; raise shards.n_shards or use fewer workers"
        )
    futures: list[Future[pd.DataFrame]] = []
    placement: dict[str, int] = {}
    for index, (path, md5) in enumerate(shards):
        rank = index % len(workers)
        futures.append(
            client.submit(
                read_partition,
                str(path),
                manifest.features,
                manifest.target,
                manifest.positive_label,
                keep,
                md5=md5,
                weights=weights,
                workers=[workers[rank]],
                allow_other_workers=False,
                pure=False,
            )
        )
        placement[str(path.relative_to(manifest.shard_dir))] = rank
    _raise_failed_read(futures)
    # The columns and dtypes, taken on the worker that holds shard 0: the driver reads no shard.
    meta = client.submit(_no_rows, futures[0], workers=[workers[0]], pure=False).result()
    return dd.from_delayed(futures, meta=meta, verify_meta=False), placement


def _no_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame's columns and dtypes without its rows."""
    return frame.iloc[:0]


def _raise_failed_read(futures: Sequence[Future[pd.DataFrame]]) -> None:
    """Wait for the shards to be read; raise the first failed read's own error.

    Handed a failed partition, XGBoost asserts ``part.status == "finished"``: its bare
    ``AssertionError`` would hide which shard failed and why (a changed shard, a lost worker).
    """
    wait(futures)
    for future in futures:
        if future.status == "error":
            future.result()
