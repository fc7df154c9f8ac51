"""Reading a raw batch (CSV or Parquet) into pandas, with errors that name the file.

Parquet batches (one file or a folder of parts) can also be read chunk by chunk
(``iter_chunks``), so validation and sharding hold one chunk at a time, never the whole batch.
Chunks get the dtypes a whole-file ``pd.read_parquet`` would give: an integer column with a null
anywhere in the batch is read as float64 in every chunk, so a chunk's dtypes never depend on
which rows it happens to hold.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from evenflow.config.run import DatasetSpec
from evenflow.errors import DataError
from evenflow.io import file_md5
from evenflow.records import RawBatch

logger = logging.getLogger(__name__)


def read_table(path: Path) -> pd.DataFrame:
    """Read a CSV (optionally compressed), a Parquet file or a folder of Parquet parts."""
    if path.is_dir():
        parts = sorted(path.glob("*.parquet"))
        if not parts:
            raise DataError(f"{path}: folder holds no .parquet parts")
        return pd.read_parquet(path)
    if not path.is_file():
        raise DataError(f"{path}: data file not found")
    suffixes = [s.lower() for s in path.suffixes]
    try:
        if ".parquet" in suffixes or ".pq" in suffixes:
            return pd.read_parquet(path)
        return pd.read_csv(path, low_memory=False)
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise DataError(f"{path}: cannot be read as {'/'.join(suffixes) or 'CSV'}: {exc}") from None


def is_parquet(path: Path) -> bool:
    """A folder of parts or a file named ``.parquet`` / ``.pq``."""
    suffixes = [s.lower() for s in path.suffixes]
    return path.is_dir() or ".parquet" in suffixes or ".pq" in suffixes


@dataclass(frozen=True)
class Piece:
    """Consecutive row groups of one parquet file, read as one or more chunks."""

    path: Path
    row_groups: tuple[int, ...]
    offset: int
    n_rows: int


def parquet_files(path: Path) -> list[Path]:
    """The batch's parquet files in name order (one for a single file)."""
    if path.is_dir():
        parts = sorted(path.glob("*.parquet"))
        if not parts:
            raise DataError(f"{path}: folder holds no .parquet parts")
        return parts
    if not path.is_file():
        raise DataError(f"{path}: data file not found")
    return [path]


def parquet_pieces(path: Path, chunk_rows: int) -> list[Piece]:
    """Cut the batch into pieces of whole row groups, about ``chunk_rows`` rows each."""
    pieces: list[Piece] = []
    offset = 0
    for file in parquet_files(path):
        metadata = _metadata(file)
        groups: list[int] = []
        rows = 0
        for index in range(metadata.num_row_groups):
            groups.append(index)
            rows += metadata.row_group(index).num_rows
            if rows >= chunk_rows:
                pieces.append(Piece(file, tuple(groups), offset, rows))
                offset, groups, rows = offset + rows, [], 0
        if groups:
            pieces.append(Piece(file, tuple(groups), offset, rows))
            offset += rows
    return pieces


def float_columns(path: Path) -> frozenset[str]:
    """Integer columns holding a null anywhere in the batch (pandas reads them as float64)."""
    found: set[str] = set()
    for file in parquet_files(path):
        metadata = _metadata(file)
        schema = metadata.schema.to_arrow_schema()
        for position, field in enumerate(schema):
            if field.name in found or not pa.types.is_integer(field.type):
                continue
            if _has_nulls(file, metadata, position, field.name):
                found.add(field.name)
    return frozenset(found)


def read_piece(
    piece: Piece,
    chunk_rows: int,
    *,
    columns: Sequence[str] | None = None,
    as_float: frozenset[str] = frozenset(),
) -> Iterator[pd.DataFrame]:
    """The piece's rows as frames of at most ``chunk_rows``, indexed by their row number."""
    offset = piece.offset
    try:
        parquet = pq.ParquetFile(piece.path)
        batches = parquet.iter_batches(
            batch_size=chunk_rows,
            row_groups=list(piece.row_groups),
            columns=None if columns is None else list(columns),
        )
        for batch in batches:
            table = pa.Table.from_batches([batch])
            for name in as_float & set(table.column_names):
                position = table.schema.get_field_index(name)
                table = table.set_column(position, name, table.column(name).cast(pa.float64()))
            frame = table.to_pandas()
            frame.index = pd.RangeIndex(offset, offset + len(frame))
            offset += len(frame)
            yield frame
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"{piece.path}: cannot be read as parquet: {exc}") from None


def rebatch(frames: Iterable[pd.DataFrame], rows: int) -> Iterator[pd.DataFrame]:
    """Join consecutive frames until each holds at least ``rows`` rows (the last may hold fewer)."""
    held: list[pd.DataFrame] = []
    count = 0
    for frame in frames:
        held.append(frame)
        count += len(frame)
        if count >= rows:
            yield held[0] if len(held) == 1 else pd.concat(held)
            held, count = [], 0
    if held:
        yield held[0] if len(held) == 1 else pd.concat(held)


def iter_chunks(
    path: Path, chunk_rows: int, *, columns: Sequence[str] | None = None
) -> Iterator[pd.DataFrame]:
    """The batch as frames of at most ``chunk_rows`` rows (a CSV comes as one frame)."""
    if not is_parquet(path):
        frame = read_table(path)
        yield frame if columns is None else frame[list(columns)]
        return
    as_float = float_columns(path)
    for piece in parquet_pieces(path, chunk_rows):
        yield from read_piece(piece, chunk_rows, columns=columns, as_float=as_float)


def describe_batch(spec: DatasetSpec) -> RawBatch:
    """The batch's ``RawBatch`` without reading its rows when it is parquet (footers only)."""
    if not is_parquet(spec.path):
        return load_batch(spec)[0]
    files = parquet_files(spec.path)
    n_rows = sum(_metadata(file).num_rows for file in files)
    if n_rows == 0:
        raise DataError(f"{spec.path}: the file has no rows")
    schema = _metadata(files[0]).schema.to_arrow_schema()
    columns = tuple(c for c in schema.names if not c.startswith("__index_level_"))
    batch = RawBatch(
        dataset=spec.name,
        path=spec.path.resolve(),
        md5=content_md5(spec.path),
        n_rows=n_rows,
        columns=columns,
    )
    logger.info("described %s: %d rows x %d columns", spec.path, n_rows, len(columns))
    return batch


def _metadata(file: Path) -> pq.FileMetaData:
    try:
        return pq.read_metadata(file)
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"{file}: cannot be read as parquet: {exc}") from None


def _has_nulls(file: Path, metadata: pq.FileMetaData, position: int, name: str) -> bool:
    for index in range(metadata.num_row_groups):
        statistics = metadata.row_group(index).column(position).statistics
        if statistics is None or not statistics.has_null_count:
            return bool(pq.read_table(file, columns=[name]).column(name).null_count)
        if statistics.null_count:
            return True
    return False


def load_batch(spec: DatasetSpec) -> tuple[RawBatch, pd.DataFrame]:
    """Load the dataset's file and describe it as a ``RawBatch`` (path, md5, rows, columns)."""
    frame = read_table(spec.path)
    if frame.empty:
        raise DataError(f"{spec.path}: the file has no rows")
    batch = RawBatch(
        dataset=spec.name,
        path=spec.path.resolve(),
        md5=content_md5(spec.path),
        n_rows=len(frame),
        columns=tuple(str(c) for c in frame.columns),
    )
    logger.info("loaded %s: %d rows x %d columns", spec.path, batch.n_rows, len(batch.columns))
    return batch, frame


def content_md5(path: Path) -> str:
    """md5 of a file, or of a folder of parts (over each part's name and md5, in name order)."""
    if not path.is_dir():
        return file_md5(path)
    listing = "\n".join(f"{p.name} {file_md5(p)}" for p in sorted(path.glob("*.parquet")))
    return hashlib.md5(listing.encode(), usedforsecurity=False).hexdigest()
