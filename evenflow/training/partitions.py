"""Shards read on fixed workers: shard ``i`` on the worker of rank ``i mod n``, so re-runs build the same model.

The driver never holds the training data; each worker reads its own shards from disk.
"""

from __future__ import annotations

from collections.abc import Sequence

import dask.dataframe as dd
import pandas as pd
from distributed import Client, Future

from evenflow.assess.reweighing import weights_for
from evenflow.data.features import label_values, typed_column
from evenflow.errors import ConfigError
from evenflow.records import FeatureSpec, Record, ShardManifest
from evenflow.training.cluster import ranked_workers

LABEL = "label"
SCORE = "score"
WEIGHT = "weight"


class SampleWeights(Record):
    """Per-row training weights by (sensitive group, label) cell, e.g. from reweighing."""

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
