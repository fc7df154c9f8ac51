"""Deterministic train/valid/test split and parquet sharding.

Rows are assigned by a stable hash of their content (salted by the split seed), so the same input
always gives the same shards, byte for byte, and duplicate rows never straddle two splits.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from evenflow.errors import DataError
from evenflow.io import atomic_dir, file_md5
from evenflow.params import DatasetSpec, ShardParams, SplitParams
from evenflow.records import FeatureSpec, ShardInfo, SplitName

logger = logging.getLogger(__name__)

ROW_ID = "_row_id"
SPLITS: tuple[SplitName, ...] = ("train", "valid", "test")
_BUCKETS = 10_000
_SPLIT_ALIASES = {"train": "train", "valid": "valid", "validation": "valid", "test": "test"}


def feature_specs(frame: pd.DataFrame, spec: DatasetSpec) -> tuple[FeatureSpec, ...]:
    """Type each model input: numeric columns stay numeric, everything else is categorical."""
    excluded = {spec.target, *spec.drop_columns}
    if spec.split_column:
        excluded.add(spec.split_column)
    if not spec.sensitive_as_features:
        excluded.update(spec.sensitive)
    features = []
    for name in frame.columns:
        if name in excluded:
            continue
        column = frame[name]
        if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
            features.append(FeatureSpec(name=str(name), kind="numeric"))
        else:
            categories = tuple(sorted(column.dropna().astype(str).unique()))
            features.append(FeatureSpec(name=str(name), kind="categorical", categories=categories))
    if not features:
        raise DataError(f"dataset '{spec.name}' has no feature columns left after exclusions")
    return tuple(features)


def row_hashes(frame: pd.DataFrame, seed: int) -> np.ndarray:
    """Stable 64-bit hash of each row's content, salted by ``seed``."""
    key = hashlib.md5(f"evenflow-split-{seed}".encode(), usedforsecurity=False).hexdigest()[:16]
    hashed = pd.util.hash_pandas_object(frame, index=False, hash_key=key)
    return np.asarray(hashed.to_numpy(dtype=np.uint64), dtype=np.uint64)


def assign_splits(frame: pd.DataFrame, spec: DatasetSpec, params: SplitParams) -> np.ndarray:
    """Return each row's split name; the dataset's own split wins where it ships one."""
    content = frame.drop(columns=[spec.split_column]) if spec.split_column else frame
    buckets = row_hashes(content, params.seed) % _BUCKETS
    test_cut = int(params.test_fraction * _BUCKETS)
    valid_cut = test_cut + int(params.valid_fraction * _BUCKETS)
    hashed = np.where(buckets < test_cut, "test", np.where(buckets < valid_cut, "valid", "train"))
    if not spec.split_column:
        return np.asarray(hashed)
    shipped = _shipped_splits(frame, spec.split_column)
    has_valid = (shipped == "valid").any()
    # Valid is carved out of the shipped train rows when the dataset has no valid split of its own.
    carve = (shipped == "train") & (buckets < int(params.valid_fraction * _BUCKETS))
    return np.asarray(np.where(~has_valid & carve, "valid", shipped))


def _shipped_splits(frame: pd.DataFrame, column: str) -> np.ndarray:
    if column not in frame.columns:
        raise DataError(f"split column '{column}' is not in the data")
    values = frame[column].astype(str).str.strip().str.lower()
    unknown = sorted(set(values.unique()) - set(_SPLIT_ALIASES))
    if unknown:
        raise DataError(
            f"split column '{column}' has values {unknown}; expected train, valid/validation or test"
        )
    return np.asarray(values.map(_SPLIT_ALIASES).to_numpy(), dtype=object)


def shard_key(split: SplitParams, shards: ShardParams) -> str:
    """Short hash of what decides the shard layout, so layouts never overwrite each other."""
    payload = json.dumps([split.model_dump(), shards.model_dump()], sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:8]


def write_shards(
    frame: pd.DataFrame,
    spec: DatasetSpec,
    split: SplitParams,
    shards: ShardParams,
    out_dir: Path,
) -> list[ShardInfo]:
    """Write ``n_shards`` parquet files per split into ``out_dir``, atomically, and describe them."""
    splits = assign_splits(frame, spec, split)
    table = frame.drop(columns=[spec.split_column]) if spec.split_column else frame
    table = table.assign(**{ROW_ID: np.arange(len(table), dtype=np.int64)})
    table = table[[ROW_ID, *[c for c in table.columns if c != ROW_ID]]]
    schema = pa.Schema.from_pandas(_normalise_text(table), preserve_index=False)
    shard_of_row = (
        row_hashes(table.drop(columns=[ROW_ID]), split.seed) >> np.uint64(20)
    ) % np.uint64(shards.n_shards)
    infos: list[ShardInfo] = []
    with atomic_dir(out_dir) as tmp:
        for split_name in SPLITS:
            in_split = splits == split_name
            for index in range(shards.n_shards):
                rows = table[in_split & (shard_of_row == index)]
                if rows.empty:
                    continue
                relative = f"{split_name}/part-{index:05d}-of-{shards.n_shards:05d}.parquet"
                infos.append(_write_shard(rows, schema, tmp, relative, split_name))
    if not any(info.split == "train" for info in infos):
        raise DataError(f"dataset '{spec.name}': the split left no training rows")
    logger.info("wrote %d shards to %s", len(infos), out_dir)
    return infos


def _normalise_text(table: pd.DataFrame) -> pd.DataFrame:
    """Give text columns one dtype so every shard shares one parquet schema (nulls included)."""
    text = [c for c in table.columns if not pd.api.types.is_numeric_dtype(table[c])]
    return table.astype(dict.fromkeys(text, "string"))


def _write_shard(
    rows: pd.DataFrame, schema: pa.Schema, root: Path, relative: str, split: SplitName
) -> ShardInfo:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    arrow = pa.Table.from_pandas(_normalise_text(rows), schema=schema, preserve_index=False)
    pq.write_table(arrow, path, compression="zstd")
    return ShardInfo(split=split, path=relative, md5=file_md5(path), n_rows=len(rows))
