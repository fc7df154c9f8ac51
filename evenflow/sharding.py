"""Deterministic train/valid/test split and parquet sharding.

Rows are assigned by a stable hash of their content (salted by the split seed), so the same input
always gives the same shards, byte for byte, and duplicate rows never straddle two splits.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable
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
# Rows per parquet row group in a shard: fixed, so the bytes never depend on the input's chunking.
ROW_GROUP_ROWS = 65_536
_SPLIT_ALIASES = {"train": "train", "valid": "valid", "validation": "valid", "test": "test"}


def feature_specs(frame: pd.DataFrame, spec: DatasetSpec) -> tuple[FeatureSpec, ...]:
    """Type each model input: numeric columns stay numeric, everything else is categorical."""
    tally = _FeatureTally(spec)
    tally.update(frame)
    return tally.specs()


def row_hashes(frame: pd.DataFrame, seed: int) -> np.ndarray:
    """Stable 64-bit hash of each row's content, salted by ``seed``."""
    key = hashlib.md5(f"evenflow-split-{seed}".encode(), usedforsecurity=False).hexdigest()[:16]
    hashed = pd.util.hash_pandas_object(frame, index=False, hash_key=key)
    return np.asarray(hashed.to_numpy(dtype=np.uint64), dtype=np.uint64)


def assign_splits(
    frame: pd.DataFrame,
    spec: DatasetSpec,
    params: SplitParams,
    *,
    has_valid: bool | None = None,
) -> np.ndarray:
    """Return each row's split name; the dataset's own split wins where it ships one.

    ``has_valid`` says whether the whole batch ships valid rows (read from ``frame`` if None).
    """
    content = frame.drop(columns=[spec.split_column]) if spec.split_column else frame
    buckets = row_hashes(content, params.seed) % _BUCKETS
    test_cut = int(params.test_fraction * _BUCKETS)
    valid_cut = test_cut + int(params.valid_fraction * _BUCKETS)
    hashed = np.where(buckets < test_cut, "test", np.where(buckets < valid_cut, "valid", "train"))
    if not spec.split_column:
        return np.asarray(hashed)
    shipped = _shipped_splits(frame, spec.split_column)
    if has_valid is None:
        has_valid = bool((shipped == "valid").any())
    # Valid is carved out of the shipped train rows when the dataset has no valid split of its own.
    carve = (shipped == "train") & (buckets < int(params.valid_fraction * _BUCKETS))
    return np.asarray(np.where(carve & (not has_valid), "valid", shipped))


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
    infos, _ = write_shard_chunks([frame], spec, split, shards, out_dir)
    return infos


def write_shard_chunks(
    chunks: Iterable[pd.DataFrame],
    spec: DatasetSpec,
    split: SplitParams,
    shards: ShardParams,
    out_dir: Path,
    *,
    has_valid: bool | None = None,
) -> tuple[list[ShardInfo], tuple[FeatureSpec, ...]]:
    """Shard a batch that arrives chunk by chunk; peak memory follows the chunk, not the batch.

    Each chunk is hash-split and appended to per-split, per-shard parquet writers. Rows are
    buffered per shard file and written in row groups of exactly ``ROW_GROUP_ROWS`` rows, so the
    files are byte-identical however the input is chunked (and DVC's hash stays the same).

    Args:
        chunks: The batch's rows in order, one frame at a time (their index is ignored).
        spec: The dataset: target, split column, exclusions.
        split: Fractions and seed of the hash split.
        shards: Shards per split.
        out_dir: Folder replaced atomically by the shards.
        has_valid: Whether the dataset's own split column holds any valid rows anywhere in the
            batch (decides whether valid is carved out of train); read from the first chunk if
            None, which is exact only for a batch passed as one chunk.

    Returns:
        The shards written and the typed features (categories gathered over every chunk).
    """
    features = _FeatureTally(spec)
    writers: dict[tuple[SplitName, int], _ShardWriter] = {}
    offset = 0
    schema: pa.Schema | None = None
    with atomic_dir(out_dir) as tmp:
        for chunk in chunks:
            if chunk.empty:
                continue
            features.update(chunk)
            splits = assign_splits(chunk, spec, split, has_valid=has_valid)
            table = chunk.drop(columns=[spec.split_column]) if spec.split_column else chunk
            table = table.reset_index(drop=True)
            table.insert(0, ROW_ID, np.arange(offset, offset + len(table), dtype=np.int64))
            offset += len(table)
            table = _normalise_text(table)
            if schema is None:
                schema = pa.Schema.from_pandas(table, preserve_index=False)
            shard_of_row = (
                row_hashes(table.drop(columns=[ROW_ID]), split.seed) >> np.uint64(20)
            ) % np.uint64(shards.n_shards)
            arrow = pa.Table.from_pandas(table, schema=schema, preserve_index=False)
            for split_name in SPLITS:
                in_split = splits == split_name
                for index in range(shards.n_shards):
                    rows = np.flatnonzero(in_split & (shard_of_row == index))
                    if rows.size == 0:
                        continue
                    key = (split_name, index)
                    if key not in writers:
                        relative = f"{split_name}/part-{index:05d}-of-{shards.n_shards:05d}.parquet"
                        writers[key] = _ShardWriter(tmp, relative, split_name, schema)
                    writers[key].append(arrow.take(rows))
        infos = [writers[key].close() for key in sorted(writers, key=_split_order)]
    if not any(info.split == "train" for info in infos):
        raise DataError(f"dataset '{spec.name}': the split left no training rows")
    logger.info("wrote %d shards of %d rows to %s", len(infos), offset, out_dir)
    return infos, features.specs()


def shipped_has_valid(values: Iterable[pd.Series], column: str) -> bool:
    """Whether the dataset's own split column names any valid rows (read column by column)."""
    return any(
        (_shipped_splits(chunk.to_frame(column), column) == "valid").any() for chunk in values
    )


def _split_order(key: tuple[SplitName, int]) -> tuple[int, int]:
    return SPLITS.index(key[0]), key[1]


class _ShardWriter:
    """One shard file, written in fixed-size row groups as rows arrive."""

    def __init__(self, root: Path, relative: str, split: SplitName, schema: pa.Schema) -> None:
        self.root, self.relative, self.split, self.schema = root, relative, split, schema
        self.held: list[pa.Table] = []
        self.held_rows = 0
        self.n_rows = 0
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        self.writer = pq.ParquetWriter(path, schema, compression="zstd")

    def append(self, rows: pa.Table) -> None:
        self.held.append(rows)
        self.held_rows += rows.num_rows
        if self.held_rows >= ROW_GROUP_ROWS:
            table = pa.concat_tables(self.held)
            full = (table.num_rows // ROW_GROUP_ROWS) * ROW_GROUP_ROWS
            for start in range(0, full, ROW_GROUP_ROWS):
                self._write(table.slice(start, ROW_GROUP_ROWS))
            rest = table.slice(full)
            self.held, self.held_rows = [rest], rest.num_rows

    def close(self) -> ShardInfo:
        if self.held_rows:
            self._write(pa.concat_tables(self.held))
        self.writer.close()
        path = self.root / self.relative
        return ShardInfo(
            split=self.split, path=self.relative, md5=file_md5(path), n_rows=self.n_rows
        )

    def _write(self, table: pa.Table) -> None:
        self.writer.write_table(table.combine_chunks(), row_group_size=ROW_GROUP_ROWS)
        self.n_rows += table.num_rows


class _FeatureTally:
    """Feature kinds from the first chunk, categories gathered over every chunk."""

    def __init__(self, spec: DatasetSpec) -> None:
        self.spec = spec
        self.numeric: dict[str, bool] = {}
        self.categories: dict[str, set[str]] = {}

    def update(self, chunk: pd.DataFrame) -> None:
        excluded = _excluded(self.spec)
        for name in chunk.columns:
            if name in excluded:
                continue
            column = chunk[name]
            if name not in self.numeric:
                self.numeric[name] = pd.api.types.is_numeric_dtype(
                    column
                ) and not pd.api.types.is_bool_dtype(column)
            if not self.numeric[name]:
                self.categories.setdefault(name, set()).update(column.dropna().astype(str).unique())

    def specs(self) -> tuple[FeatureSpec, ...]:
        features = tuple(
            FeatureSpec(name=str(name), kind="numeric")
            if numeric
            else FeatureSpec(
                name=str(name),
                kind="categorical",
                categories=tuple(sorted(self.categories.get(name, ()))),
            )
            for name, numeric in self.numeric.items()
        )
        if not features:
            raise DataError(
                f"dataset '{self.spec.name}' has no feature columns left after exclusions"
            )
        return features


def _excluded(spec: DatasetSpec) -> set[str]:
    excluded = {spec.target, *spec.drop_columns}
    if spec.split_column:
        excluded.add(spec.split_column)
    if not spec.sensitive_as_features:
        excluded.update(spec.sensitive)
    return excluded


def _normalise_text(table: pd.DataFrame) -> pd.DataFrame:
    """Give text columns one dtype so every shard shares one parquet schema (nulls included)."""
    text = [c for c in table.columns if not pd.api.types.is_numeric_dtype(table[c])]
    return table.astype(dict.fromkeys(text, "string"))
