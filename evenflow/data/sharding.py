"""Deterministic train/valid/test split (or cross-fitting folds) and parquet sharding.

A split never looks at the label. Rows are assigned by a stable, salted hash of their *feature*
values (so identical feature rows always share a split, whatever their labels), by the group
column (one person's rows stay together) or by time (the latest period is the test). Small
batches are cut into stratified folds instead, for cross-fitting. The same input always gives the
same shards, byte for byte.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Literal, NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from evenflow.config.run import DatasetSpec, EvalParams, ShardParams, SplitParams
from evenflow.data.features import FeatureTally, is_number, label_values
from evenflow.errors import DataError
from evenflow.io import atomic_dir, file_md5
from evenflow.records import FeatureSpec, ShardInfo, SplitName, SplitPlan, SplitSummary

logger = logging.getLogger(__name__)

ROW_ID = "_row_id"
SPLITS: tuple[SplitName, ...] = ("train", "valid", "test")
_BUCKETS = 10_000
# Rows per parquet row group in a shard: fixed, so the bytes never depend on the input's chunking.
ROW_GROUP_ROWS = 65_536
_SPLIT_ALIASES = {"train": "train", "valid": "valid", "validation": "valid", "test": "test"}


def row_hashes(frame: pd.DataFrame, seed: int) -> np.ndarray:
    """Stable 64-bit hash of each row's content, salted by ``seed``."""
    key = hashlib.md5(f"evenflow-split-{seed}".encode(), usedforsecurity=False).hexdigest()[:16]
    hashed = pd.util.hash_pandas_object(frame, index=False, hash_key=key)
    return np.asarray(hashed.to_numpy(dtype=np.uint64), dtype=np.uint64)


def unit_hashes(frame: pd.DataFrame, spec: DatasetSpec, seed: int) -> np.ndarray:
    """Hash of what keeps rows together: the group column, else the feature values (never the label).

    Values are hashed in one canonical type (numbers as float64, the rest as text), so a row
    hashes the same in every chunk, whether or not its chunk had missing values.
    """
    if spec.group_column:
        columns = [spec.group_column]
    else:
        excluded = spec.not_features()
        columns = [c for c in frame.columns if c not in excluded and c != ROW_ID]
    content = pd.DataFrame(
        {
            name: frame[name].astype("float64")
            if is_number(frame[name])
            else frame[name].astype("string")
            for name in columns
        }
    )
    return row_hashes(content, seed)


def plan_split(
    spec: DatasetSpec,
    evaluation: EvalParams,
    n_rows: int,
    time_cuts: tuple[float, float] | None = None,
) -> SplitPlan:
    """Hold out a test split, or cross-fit a small batch; say why either way."""
    rule: Literal["shipped", "features", "group", "time"] = (
        "shipped"
        if spec.split_column
        else "time"
        if spec.time_column
        else "group"
        if spec.group_column
        else "features"
    )
    if rule == "shipped":
        reason = f"the dataset's own split in column '{spec.split_column}'"
    elif rule == "time":
        reason = f"out of time: the latest rows by '{spec.time_column}' are the test split"
    elif n_rows < evaluation.cross_fit_below_rows:
        kept = f"'{spec.group_column}'" if spec.group_column else "identical feature rows"
        return SplitPlan(
            evaluation="cross_fit",
            folds=evaluation.folds,
            rule=rule,
            reason=f"{n_rows:,} rows < evaluation.cross_fit_below_rows="
            f"{evaluation.cross_fit_below_rows:,}: {evaluation.folds}-fold cross-fitting, "
            f"stratified by label and '{spec.sensitive[0]}', {kept} kept in one fold",
        )
    else:
        kept = (
            f"rows of one '{spec.group_column}'" if spec.group_column else "identical feature rows"
        )
        reason = f"hash split of the features: {kept} share a split"
    return SplitPlan(evaluation="holdout", rule=rule, reason=reason, time_cuts=time_cuts)


def time_values(column: pd.Series) -> np.ndarray:
    """A time column as sortable float64 numbers (datetimes as nanoseconds since the epoch)."""
    if is_number(column):
        values = column.astype("float64").to_numpy()
    else:
        try:
            parsed = pd.to_datetime(column, utc=True, format="mixed")
        except (ValueError, TypeError) as exc:
            raise DataError(
                f"time column '{column.name}' holds a value that is not a date: {exc}"
            ) from None
        values = np.where(parsed.isna(), np.nan, parsed.astype("int64").astype("float64"))
    if np.isnan(values).any():
        raise DataError(
            f"time column '{column.name}' has {int(np.isnan(values).sum())} missing values; "
            "every row needs a time to be placed before or after the cut"
        )
    return np.asarray(values, dtype=np.float64)


def time_cuts(columns: Iterable[pd.Series], params: SplitParams) -> tuple[float, float]:
    """Where valid and test begin: the latest ``test_fraction`` of rows (by time) is the test.

    Rows that share a time share a split, so a cut never falls inside one timestamp.
    """
    values = np.sort(np.concatenate([time_values(c) for c in columns]))
    test_start = float(np.quantile(values, 1.0 - params.test_fraction, method="higher"))
    before = values[values < test_start]
    if before.size == 0:
        raise DataError(
            "the time column has too few distinct times to hold out a later test period"
        )
    share = params.valid_fraction / (1.0 - params.test_fraction)
    valid_start = float(np.quantile(before, 1.0 - share, method="higher"))
    if not (values < valid_start).any():
        raise DataError(
            "the time column has too few distinct times to leave training rows before valid"
        )
    return valid_start, test_start


def assign_splits(
    frame: pd.DataFrame,
    spec: DatasetSpec,
    params: SplitParams,
    *,
    plan: SplitPlan | None = None,
    has_valid: bool | None = None,
) -> np.ndarray:
    """Return each row's split name; the dataset's own split wins where it ships one.

    ``has_valid`` says whether the whole batch ships valid rows (read from ``frame`` if None).
    """
    if plan is not None and plan.time_cuts is not None and spec.time_column:
        valid_start, test_start = plan.time_cuts
        when = time_values(frame[spec.time_column])
        return np.asarray(
            np.where(when >= test_start, "test", np.where(when >= valid_start, "valid", "train"))
        )
    buckets = unit_hashes(frame, spec, params.seed) % _BUCKETS
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


def assign_folds(frame: pd.DataFrame, spec: DatasetSpec, folds: int, seed: int) -> np.ndarray:
    """Each row's cross-fitting fold, stratified by label and the first sensitive column.

    Units (one group-column value, or one distinct feature row) are never cut: every row of a
    unit lands in one fold. Units are ordered by stratum (majority label, most common group),
    then by their salted hash, and dealt to the folds in turn, so each stratum spreads evenly.
    """
    units = unit_hashes(frame, spec, seed)
    label = label_values(frame[spec.target], spec.positive_label).to_numpy()
    group = frame[spec.sensitive[0]].astype("string").fillna("(missing)").to_numpy()
    rows = pd.DataFrame({"unit": units, "label": label, "group": group})
    per_unit = rows.groupby("unit", sort=True).agg(
        label=("label", "mean"), group=("group", lambda g: g.mode().iloc[0])
    )
    per_unit["stratum_label"] = (per_unit["label"] >= 0.5).astype(np.int64)  # noqa: PLR2004
    order = per_unit.reset_index().sort_values(["stratum_label", "group", "unit"], kind="stable")
    fold_of_unit = pd.Series(np.arange(len(order)) % folds, index=order["unit"].to_numpy())
    return np.asarray(fold_of_unit.loc[units].to_numpy(), dtype=np.int64)


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


def shard_key(split: SplitParams, shards: ShardParams, plan: SplitPlan | None = None) -> str:
    """Short hash of what decides the shard layout, so layouts never overwrite each other."""
    parts: list[object] = [split.model_dump(), shards.model_dump()]
    if plan is not None:
        parts.append(plan.model_dump(mode="json"))
    payload = json.dumps(parts, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:8]


def write_shards(
    frame: pd.DataFrame,
    spec: DatasetSpec,
    split: SplitParams,
    shards: ShardParams,
    out_dir: Path,
    *,
    plan: SplitPlan | None = None,
) -> list[ShardInfo]:
    """Write ``n_shards`` parquet files per split into ``out_dir``, atomically, and describe them."""
    written = write_shard_chunks([frame], spec, split, shards, out_dir, plan=plan)
    return list(written.shards)


class WrittenShards(NamedTuple):
    """What sharding produced: the files, the typed features and the split report."""

    shards: tuple[ShardInfo, ...]
    features: tuple[FeatureSpec, ...]
    report: tuple[SplitSummary, ...]


def write_shard_chunks(
    chunks: Iterable[pd.DataFrame],
    spec: DatasetSpec,
    split: SplitParams,
    shards: ShardParams,
    out_dir: Path,
    *,
    plan: SplitPlan | None = None,
    has_valid: bool | None = None,
) -> WrittenShards:
    """Shard a batch that arrives chunk by chunk; peak memory follows the chunk, not the batch.

    Each chunk is split and appended to per-split (or per-fold), per-shard parquet writers. Rows
    are buffered per shard file and written in row groups of exactly ``ROW_GROUP_ROWS`` rows, so
    the files are byte-identical however the input is chunked (and DVC's hash stays the same).
    A cross-fitted batch is small by definition and is gathered whole first: folds are dealt
    over the whole batch.

    Args:
        chunks: The batch's rows in order, one frame at a time (their index is ignored).
        spec: The dataset: target, split, group and time columns, exclusions.
        split: Fractions and seed of the hash split.
        shards: Shards per split.
        out_dir: Folder replaced atomically by the shards.
        plan: Held out (by hash, group, time or the shipped split) or cross-fitted.
        has_valid: Whether the dataset's own split column holds any valid rows anywhere in the
            batch (decides whether valid is carved out of train); read from the first chunk if
            None, which is exact only for a batch passed as one chunk.

    Returns:
        The shards written, the typed features (categories gathered over every chunk) and the
        split report.
    """
    plan = plan or SplitPlan(evaluation="holdout", rule="features", reason="hash split")
    if plan.evaluation == "cross_fit":
        whole = [c for c in chunks if not c.empty]
        chunks = [pd.concat(whole, ignore_index=True)] if whole else []
    features = FeatureTally(spec)
    tally = _SplitTally(spec)
    writers: dict[tuple[str, int], _ShardWriter] = {}
    offset = 0
    schema: pa.Schema | None = None
    with atomic_dir(out_dir) as tmp:
        for chunk in chunks:
            if chunk.empty:
                continue
            features.update(chunk)
            buckets = _buckets(chunk, spec, split, plan, has_valid)
            tally.update(chunk, buckets)
            table = _with_row_ids(chunk, spec, offset)
            offset += len(table)
            if schema is None:
                schema = pa.Schema.from_pandas(table, preserve_index=False)
            _append(writers, tmp, table, buckets, schema=schema, seed=split.seed, n=shards.n_shards)
        infos = tuple(writers[key].close() for key in sorted(writers, key=_bucket_order))
    _check_written(spec, infos, plan)
    logger.info("wrote %d shards of %d rows to %s", len(infos), offset, out_dir)
    return WrittenShards(infos, features.specs(), tally.report())


def _append(
    writers: dict[tuple[str, int], _ShardWriter],
    folder: Path,
    table: pd.DataFrame,
    buckets: np.ndarray,
    *,
    schema: pa.Schema,
    seed: int,
    n: int,
) -> None:
    """Append each row to its (bucket, shard) writer, opening writers as buckets appear.

    A row's shard is a hash of its values (not its row id), so it does not depend on chunking.
    """
    shard_of_row = (row_hashes(table.drop(columns=[ROW_ID]), seed) >> np.uint64(20)) % np.uint64(n)
    arrow = pa.Table.from_pandas(table, schema=schema, preserve_index=False)
    for bucket in sorted(set(buckets.tolist())):
        for index in range(n):
            rows = np.flatnonzero((buckets == bucket) & (shard_of_row == index))
            if rows.size == 0:
                continue
            if (bucket, index) not in writers:
                relative = f"{bucket}/part-{index:05d}-of-{n:05d}.parquet"
                writers[bucket, index] = _ShardWriter(folder, relative, bucket, schema)
            writers[bucket, index].append(arrow.take(rows))


def _check_written(spec: DatasetSpec, infos: Sequence[ShardInfo], plan: SplitPlan) -> None:
    """Training rows exist, and a cross-fitted batch has every fold."""
    if not any(info.split == "train" for info in infos):
        raise DataError(f"dataset '{spec.name}': the split left no training rows")
    if plan.evaluation == "cross_fit":
        _require_every_fold(spec, infos, plan.folds)


def _buckets(
    chunk: pd.DataFrame,
    spec: DatasetSpec,
    split: SplitParams,
    plan: SplitPlan,
    has_valid: bool | None,
) -> np.ndarray:
    """Each row's bucket: its split (held out) or ``fold-<k>`` (cross-fitted)."""
    if plan.evaluation == "cross_fit":
        folds = assign_folds(chunk, spec, plan.folds, split.seed)
        return np.char.add("fold-", folds.astype(str))
    return assign_splits(chunk, spec, split, plan=plan, has_valid=has_valid)


def _with_row_ids(chunk: pd.DataFrame, spec: DatasetSpec, offset: int) -> pd.DataFrame:
    """The chunk as written: no split column, row ids from ``offset``, text normalised."""
    table = chunk.drop(columns=[spec.split_column]) if spec.split_column else chunk
    table = table.reset_index(drop=True)
    table.insert(0, ROW_ID, np.arange(offset, offset + len(table), dtype=np.int64))
    return _normalise_text(table)


def _require_every_fold(spec: DatasetSpec, infos: Sequence[ShardInfo], folds: int) -> None:
    found = {info.fold for info in infos}
    if len(found) < folds:
        raise DataError(
            f"dataset '{spec.name}': cross-fitting needs rows in each of {folds} folds but only "
            f"{len(found)} received any; the batch has too few distinct rows or groups"
        )


def shipped_has_valid(values: Iterable[pd.Series], column: str) -> bool:
    """Whether the dataset's own split column names any valid rows (read column by column)."""
    return any(
        (_shipped_splits(chunk.to_frame(column), column) == "valid").any() for chunk in values
    )


def _bucket_order(key: tuple[str, int]) -> tuple[int, str, int]:
    bucket, index = key
    return (SPLITS.index(bucket), "", index) if bucket in SPLITS else (len(SPLITS), bucket, index)


class _ShardWriter:
    """One shard file, written in fixed-size row groups as rows arrive."""

    def __init__(self, root: Path, relative: str, bucket: str, schema: pa.Schema) -> None:
        self.root, self.relative, self.schema = root, relative, schema
        # A fold's rows all train the final model; the fold decides what each fold model sees.
        self.split: SplitName = bucket if bucket in SPLITS else "train"
        self.fold = int(bucket.removeprefix("fold-")) if bucket.startswith("fold-") else None
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
            split=self.split,
            path=self.relative,
            md5=file_md5(path),
            n_rows=self.n_rows,
            fold=self.fold,
        )

    def _write(self, table: pa.Table) -> None:
        self.writer.write_table(table.combine_chunks(), row_group_size=ROW_GROUP_ROWS)
        self.n_rows += table.num_rows


class _SplitTally:
    """The split report, gathered chunk by chunk: rows, positives and rows per sensitive group."""

    def __init__(self, spec: DatasetSpec) -> None:
        self.spec = spec
        self.rows: Counter[str] = Counter()
        self.positives: Counter[str] = Counter()
        self.groups: dict[str, dict[str, Counter[str]]] = {}

    def update(self, chunk: pd.DataFrame, buckets: np.ndarray) -> None:
        label = label_values(chunk[self.spec.target], self.spec.positive_label).to_numpy()
        names = pd.Series(buckets, index=chunk.index)
        self.rows.update(names.value_counts().to_dict())
        self.positives.update(names[label == 1].value_counts().to_dict())
        for column in self.spec.sensitive:
            keys = chunk[column].astype("string").fillna("(missing)")
            counts = pd.crosstab(names, keys)
            for bucket, row in counts.iterrows():
                target = self.groups.setdefault(str(bucket), {}).setdefault(column, Counter())
                target.update({str(k): int(v) for k, v in row.items() if v})

    def report(self) -> tuple[SplitSummary, ...]:
        order = sorted(self.rows, key=lambda b: (SPLITS.index(b), "") if b in SPLITS else (3, b))
        return tuple(
            SplitSummary(
                name=bucket,
                rows=int(self.rows[bucket]),
                positives=int(self.positives[bucket]),
                base_rate=self.positives[bucket] / self.rows[bucket] if self.rows[bucket] else None,
                groups={
                    column: dict(sorted(counts.items()))
                    for column, counts in self.groups.get(bucket, {}).items()
                },
            )
            for bucket in order
        )


def _normalise_text(table: pd.DataFrame) -> pd.DataFrame:
    """Give text columns one dtype so every shard shares one parquet schema (nulls included)."""
    text = [c for c in table.columns if not pd.api.types.is_numeric_dtype(table[c])]
    return table.astype(dict.fromkeys(text, "string"))
