"""Tables read and written in chunks: a batch is never whole in memory, an output never half-done.

Reading: a Parquet file or folder of parts, or a CSV, in chunks indexed by row position in the
batch, each CSV column typed as one whole-file ``read_csv`` would type it. Writing: a CSV or
Parquet table appended chunk by chunk to a temp file beside its target, renamed into place only
when complete.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from evenflow.data.datasets import is_parquet, iter_chunks, parquet_files
from evenflow.errors import DataError

# --- reading ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Batch:
    """A batch opened for reading chunk by chunk."""

    chunks: Iterator[pd.DataFrame]
    """Frames of at most ``chunk_rows`` rows, indexed by their row position in the batch."""
    object_types: Mapping[str, pa.DataType]
    """Arrow type of each column pandas holds as Python objects (text, booleans with nulls)."""


def open_batch(path: Path, chunk_rows: int) -> Batch:
    """Open a Parquet file or folder of parts, or a CSV, for reading in chunks.

    Raises:
        DataError: naming the file, when it cannot be read.
    """
    if is_parquet(path):
        return Batch(iter_chunks(path, chunk_rows), _parquet_types(path))
    return _open_csv(path, chunk_rows)


def _parquet_types(path: Path) -> dict[str, pa.DataType]:
    """Each column's Arrow type in the batch's files (a part where it is all null says nothing)."""
    types: dict[str, pa.DataType] = {}
    for file in parquet_files(path):
        try:
            schema = pq.read_schema(file)
        except (pa.ArrowException, OSError) as exc:
            raise DataError(f"{file}: cannot be read as parquet: {exc}") from None
        for field_ in schema:
            if pa.types.is_null(types.get(field_.name, pa.null())):
                types[field_.name] = field_.type
    return types


# Kinds of a CSV column (see _chunk_kind) that hold booleans.
_BOOLEAN_KINDS = frozenset({"bool", "bool+null"})
# Kinds of a CSV column that pandas holds as Python objects, and their Arrow type.
_OBJECT_KINDS = {"text": pa.string(), "bool+null": pa.bool_()}


def _open_csv(path: Path, chunk_rows: int) -> Batch:
    """A CSV in chunks, each column typed as one whole-file ``read_csv`` types it.

    pandas infers a CSV column's dtype from the values it parses at once: a chunk of whole
    numbers is int64 where the file as a whole is float64 (a null further down) or text (a word
    further down). A first pass learns the whole file's dtypes; the second reads the chunks again
    with them. A file that fits in one chunk is read once.
    """
    kinds: dict[str, set[str]] = {}
    only: pd.DataFrame | None = None
    for count, chunk in enumerate(_csv_reader(path, chunk_rows), start=1):
        for column in chunk.columns:
            kinds.setdefault(column, set()).add(_chunk_kind(chunk[column]))
        only = chunk if count == 1 else None
        del chunk
    dtypes = {column: _file_kind(seen) for column, seen in kinds.items()}
    types = {c: _OBJECT_KINDS[kind] for c, kind in dtypes.items() if kind in _OBJECT_KINDS}
    if only is not None or not kinds:  # one chunk, already read, or none at all
        return Batch(iter([] if only is None else [only]), types)
    return Batch(_typed_csv_chunks(path, chunk_rows, dtypes), types)


def _csv_reader(
    path: Path, chunk_rows: int, dtype: Mapping[str, Any] | None = None
) -> Iterator[pd.DataFrame]:
    """The CSV's chunks as pandas parses them, indexed by row position.

    Raises:
        DataError: naming the file, when it cannot be parsed.
    """
    offset = 0
    try:
        with pd.read_csv(path, low_memory=False, chunksize=chunk_rows, dtype=dtype) as reader:
            for chunk in reader:
                chunk.index = pd.RangeIndex(offset, offset + len(chunk))
                offset += len(chunk)
                yield chunk
                del chunk  # before the next chunk is parsed
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        suffixes = "/".join(s.lower() for s in path.suffixes) or "CSV"
        raise DataError(f"{path}: cannot be read as {suffixes}: {exc}") from None


def _typed_csv_chunks(
    path: Path, chunk_rows: int, kinds: Mapping[str, str]
) -> Iterator[pd.DataFrame]:
    """Read the CSV again: text columns as text, the others cast to the whole file's dtype."""
    text = {column: str for column, kind in kinds.items() if kind == "text"}
    for raw in _csv_reader(path, chunk_rows, text):
        casts = {
            column: "object" if kind == "bool+null" else kind
            for column, kind in kinds.items()
            if kind != "text" and str(raw[column].dtype) != kind
        }
        chunk = raw.astype(casts) if casts else raw
        del raw
        yield chunk
        del chunk  # before the next chunk is parsed


def _chunk_kind(values: pd.Series) -> str:
    """What pandas made of a column in one chunk: "empty", its dtype, "bool+null" or "text"."""
    if not values.notna().any():
        return "empty"
    if values.dtype != object:
        return str(values.dtype)
    return "bool+null" if pd.api.types.infer_dtype(values, skipna=True) == "boolean" else "text"


def _file_kind(kinds: set[str]) -> str:
    """What one read of the whole file makes of a column whose chunks were of these kinds."""
    seen = kinds - {"empty"}
    if not seen:
        return "float64"  # no value at all: NaN throughout
    if "text" in seen or (seen & _BOOLEAN_KINDS and seen - _BOOLEAN_KINDS):
        return "text"
    if seen <= _BOOLEAN_KINDS:
        return "bool" if kinds == {"bool"} else "bool+null"
    if len(kinds) == 1:
        return next(iter(kinds))  # int64, uint64 or float64 throughout
    if "uint64" in seen and "float64" not in seen:
        return "text"  # pandas keeps integers beyond int64 beside nulls or negatives as text
    return "float64"


def peek_columns(
    chunks: Iterator[pd.DataFrame], source: Path
) -> tuple[list[str], Iterator[pd.DataFrame]]:
    """The batch's columns, from its first chunk, and all its chunks (the first put back).

    Raises:
        DataError: the batch has no rows.
    """
    first = next(chunks, None)
    if first is None or first.empty:
        raise DataError(f"{source}: the file has no rows")
    return [str(c) for c in first.columns], _drain([first], chunks)


def _drain(held: list[pd.DataFrame], rest: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    """Yield the held chunk, keeping no reference to it once it is used, then the rest."""
    chunk = held.pop()
    yield chunk
    del chunk
    yield from rest


# --- writing ----------------------------------------------------------------------------------


class _CsvFile:
    """A CSV (gzip-compressed for .gz) written chunk by chunk: the header once, then rows."""

    def __init__(self, path: Path, compressed: bool) -> None:
        self._file = path.open("wb")
        # No file name and a fixed time in the gzip header: a rerun writes the same bytes.
        self._zip = (
            gzip.GzipFile(filename="", fileobj=self._file, mode="wb", mtime=0)
            if compressed
            else None
        )
        self._header = True

    def write(self, table: pd.DataFrame) -> None:
        sink = self._file if self._zip is None else self._zip
        table.to_csv(sink, index=False, header=self._header, mode="wb", encoding="utf-8")
        self._header = False

    def close(self, metadata: Mapping[str, Any]) -> None:
        """Finish the file; a CSV carries no metadata (the sidecar has it)."""
        if self._zip is not None:
            self._zip.close()
        self._file.close()

    def abort(self) -> None:
        self.close({})


class _ParquetFile:
    """A Parquet file written chunk by chunk, with one schema fixed by the first chunk."""

    def __init__(
        self, path: Path, object_types: Mapping[str, pa.DataType], metadata_key: bytes
    ) -> None:
        self._path = path
        self._object_types = object_types
        self._metadata_key = metadata_key
        self._writer: pq.ParquetWriter | None = None

    def write(self, table: pd.DataFrame) -> None:
        if self._writer is None:
            self._writer = pq.ParquetWriter(self._path, _arrow_schema(table, self._object_types))
        if len(table):
            schema = self._writer.schema
            self._writer.write_table(pa.Table.from_pandas(table, schema, preserve_index=False))

    def close(self, metadata: Mapping[str, Any]) -> None:
        """Add the metadata (as JSON under the metadata key) and write the footer."""
        assert self._writer is not None  # every chunk writes, the first one opens
        payload = json.dumps(metadata, default=str, sort_keys=True).encode()
        schema = self._writer.schema
        schema = schema.with_metadata({**(schema.metadata or {}), self._metadata_key: payload})
        # The footer's Arrow schema (key ARROW:schema, base64 IPC, as Arrow writes it) is what
        # readers return as the schema, so the key goes into it as well as beside it.
        arrow_schema = base64.b64encode(schema.serialize().to_pybytes())
        self._writer.add_key_value_metadata(
            {self._metadata_key: payload, b"ARROW:schema": arrow_schema}
        )
        self._writer.close()
        self._writer = None

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


class StagedTable:
    """A CSV or Parquet table written chunk by chunk to a temp file beside its target.

    The target appears, complete, only on ``commit`` (fsync, then rename); ``discard`` removes
    the temp file, so a failure part-way leaves nothing behind.
    """

    def __init__(
        self,
        target: Path,
        object_types: Mapping[str, pa.DataType],
        *,
        file_format: Literal["csv", "parquet"],
        metadata_key: bytes,
    ) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        os.close(handle)
        self.target = target
        self.tmp = Path(name)
        self._file: _CsvFile | _ParquetFile = (
            _CsvFile(self.tmp, compressed=target.name.lower().endswith(".gz"))
            if file_format == "csv"
            else _ParquetFile(self.tmp, object_types, metadata_key)
        )

    def write(self, frame: pd.DataFrame) -> None:
        """Append rows (their index is not written)."""
        self._file.write(frame.reset_index(drop=True))

    def commit(self, metadata: Mapping[str, Any]) -> Path:
        """Finish the file (Parquet: ``metadata`` in its footer), fsync it, rename it."""
        self._file.close(metadata)
        _fsync(self.tmp)
        self.tmp.chmod(0o644)  # mkstemp creates 0600; tables are handed to other people
        os.replace(self.tmp, self.target)
        return self.target

    def discard(self) -> None:
        """Close and remove the temp file (nothing to do once committed)."""
        with suppress(OSError, ValueError, pa.ArrowException):  # the failure is being raised
            self._file.abort()
        self.tmp.unlink(missing_ok=True)


@contextmanager
def staged_table(
    target: Path,
    object_types: Mapping[str, pa.DataType],
    *,
    file_format: Literal["csv", "parquet"],
    metadata_key: bytes,
) -> Iterator[StagedTable]:
    """A table that reaches ``target`` only if committed; whatever happens, no temp file stays."""
    table = StagedTable(target, object_types, file_format=file_format, metadata_key=metadata_key)
    try:
        yield table
    finally:
        table.discard()


def _arrow_schema(frame: pd.DataFrame, object_types: Mapping[str, pa.DataType]) -> pa.Schema:
    """The file's schema from its first chunk, object columns typed as the input declares them.

    A column of Python objects that is all null in the first chunk would otherwise be typed
    ``null`` and refuse the text of later chunks.
    """
    schema = pa.Schema.from_pandas(frame, preserve_index=False)
    for index, name in enumerate(schema.names):
        if name in object_types and pd.api.types.is_object_dtype(frame[name].dtype):
            schema = schema.set(index, schema.field(index).with_type(object_types[name]))
    return schema


def _fsync(path: Path) -> None:
    handle = os.open(path, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)
