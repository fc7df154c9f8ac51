"""Checks that need no server, run before Prefect, MLflow or Dask start.

A missing file or a misspelt column should cost the user a second, not the two minutes it takes to
start the stack, and should leave no failed tracking run behind. Only headers and parquet footers
are read here; the contract check proper is Great Expectations' job later.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from evenflow.config.run import DatasetSpec
from evenflow.contracts.head_checks import check_head
from evenflow.data.datasets import is_parquet, parquet_files
from evenflow.errors import DataError

_SHOWN = 12  # columns listed in an error before "..."


def batch_columns(path: Path) -> tuple[str, ...]:
    """The batch's column names, from the CSV header or the parquet footers.

    Parquet parts must share one schema: a part that differs is named, with the column.
    """
    if is_parquet(path):
        return _unique(path, _parquet_columns(parquet_files(path)))
    if not path.is_file():
        raise DataError(f"{path}: data file not found")
    if not _csv_suffix(path):
        raise DataError(
            f"{path}: evenflow reads CSV (.csv, optionally compressed: .csv.gz, .csv.zip, ...) or "
            "parquet (.parquet, or a folder of parts); convert the file to one of them"
        )
    if path.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty")
    if _looks_binary(path):
        raise DataError(f"{path}: holds binary data (NUL bytes), not CSV text")
    try:
        return _unique(path, _header_names(path))
    except UnicodeDecodeError:
        raise DataError(f"{path}: is not UTF-8 text: save it as UTF-8") from None
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise DataError(f"{path}: cannot be read as CSV: {exc}") from None


def check_dataset(spec: DatasetSpec) -> tuple[str, ...]:
    """Every column the run names exists and the head of the batch is usable.

    Returns the batch's columns.
    """
    columns = batch_columns(spec.path)
    _check_roles(spec, columns)
    check_head(spec)
    return columns


#: Column names that usually hold personal data, as whole words of a column's name.
_PERSONAL_WORDS = frozenset(
    {
        "ssn",
        "email",
        "mail",
        "phone",
        "mobile",
        "name",
        "firstname",
        "lastname",
        "surname",
        "address",
        "street",
        "zip",
        "postcode",
        "passport",
        "iban",
        "dob",
        "birthdate",
    }
)


def personal_suspects(spec: DatasetSpec, columns: tuple[str, ...]) -> list[str]:
    """Columns whose name suggests personal data but that the run does not mark as such."""
    marked = {*spec.personal_columns, *spec.drop_columns}
    return [
        name
        for name in columns
        if name not in marked and _PERSONAL_WORDS & set(re.split(r"[^a-z]+", name.lower()))
    ]


def _check_roles(spec: DatasetSpec, columns: tuple[str, ...]) -> None:
    roles = {
        "target": (spec.target,),
        "sensitive": spec.sensitive,
        "split_column": (spec.split_column,) if spec.split_column else (),
        "group_column": (spec.group_column,) if spec.group_column else (),
        "time_column": (spec.time_column,) if spec.time_column else (),
        "drop_columns": spec.drop_columns,
        "personal_columns": spec.personal_columns,
    }
    present = set(columns)
    for role, names in roles.items():
        missing = [name for name in names if name not in present]
        if missing:
            raise DataError(
                f"{spec.path}: {role} column(s) {missing} not in the data; it has {_listed(columns)}"
            )


#: Suffixes read as CSV: plain text, or compressed by a codec pandas opens by name.
_CSV_SUFFIXES = {".csv", ".txt"}
_COMPRESSION_SUFFIXES = {".gz", ".bz2", ".zip", ".xz", ".zst", ".tar"}


def _csv_suffix(path: Path) -> bool:
    suffixes = [s.lower() for s in path.suffixes]
    while suffixes and suffixes[-1] in _COMPRESSION_SUFFIXES:
        suffixes.pop()
    return not suffixes or suffixes[-1] in _CSV_SUFFIXES


def _looks_binary(path: Path) -> bool:
    """A NUL byte in the first block: text never has one (a compressed file is opened by pandas)."""
    if path.suffix.lower() in _COMPRESSION_SUFFIXES:
        return False
    with path.open("rb") as handle:
        return b"\x00" in handle.read(8192)


def _header_names(path: Path) -> tuple[str, ...]:
    """The header's names as written: pandas would rename a repeated ``x`` to ``x.1``."""
    first = pd.read_csv(path, header=None, nrows=1, dtype=str, encoding="utf-8")
    return tuple(str(name) for name in first.iloc[0].tolist())


def _unique(path: Path, columns: tuple[str, ...]) -> tuple[str, ...]:
    seen: set[str] = set()
    for name in columns:
        if name in seen:
            raise DataError(
                f"{path}: column '{name}' appears twice in the header: rename one of them"
            )
        seen.add(name)
    return columns


def _parquet_columns(files: list[Path]) -> tuple[str, ...]:
    first = _schema(files[0])
    for part in files[1:]:
        schema = _schema(part)
        if schema.names != first.names:
            extra = sorted(set(schema.names) ^ set(first.names))
            where = extra[0] if extra else "order"
            raise DataError(
                f"{part}: parquet part has other columns than {files[0].name} "
                f"(first difference: {where}); every part of a batch must share one schema"
            )
        for field in schema:
            expected = first.field(field.name).type
            if not _compatible(field.type, expected):
                raise DataError(
                    f"{part}: column '{field.name}' is {field.type} but {expected} in "
                    f"{files[0].name}; every part of a batch must share one schema"
                )
    return tuple(n for n in first.names if not n.startswith("__index_level_"))


def _schema(path: Path) -> pa.Schema:
    try:
        return pq.read_schema(path)
    except (OSError, pa.ArrowException) as exc:
        raise DataError(f"{path}: cannot be read as parquet: {exc}") from None


def _compatible(found: pa.DataType, expected: pa.DataType) -> bool:
    """Same type, or both numeric (integers and floats mix in one batch: nulls make floats)."""
    if found == expected:
        return True
    numeric = (pa.types.is_integer, pa.types.is_floating)
    either = [any(test(t) for test in numeric) for t in (found, expected)]
    text = [pa.types.is_string(t) or pa.types.is_large_string(t) for t in (found, expected)]
    return all(either) or all(text) or pa.types.is_null(found) or pa.types.is_null(expected)


def _listed(columns: tuple[str, ...]) -> str:
    shown = ", ".join(columns[:_SHOWN])
    return f"{len(columns)} columns: {shown}{', ...' if len(columns) > _SHOWN else ''}"
