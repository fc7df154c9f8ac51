"""Checks that need no server, run before Prefect, MLflow or Dask start.

A missing file or a misspelt column should cost the user a second, not the two minutes it takes to
start the stack, and should leave no failed tracking run behind. Only headers and parquet footers
are read here; the contract check proper is Great Expectations' job later.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from evenflow.config.run import DatasetSpec
from evenflow.data.datasets import is_parquet, parquet_files
from evenflow.errors import DataError

_SHOWN = 12  # columns listed in an error before "..."


def batch_columns(path: Path) -> tuple[str, ...]:
    """The batch's column names, from the CSV header or the parquet footers.

    Parquet parts must share one schema: a part that differs is named, with the column.
    """
    if is_parquet(path):
        return _parquet_columns(parquet_files(path))
    if not path.is_file():
        raise DataError(f"{path}: data file not found")
    try:
        header = pd.read_csv(path, nrows=0)
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise DataError(f"{path}: cannot be read as CSV: {exc}") from None
    return tuple(str(c) for c in header.columns)


def check_dataset(spec: DatasetSpec) -> tuple[str, ...]:
    """Every column the run names exists in the batch; return the batch's columns."""
    columns = batch_columns(spec.path)
    roles = {
        "target": (spec.target,),
        "sensitive": spec.sensitive,
        "split_column": (spec.split_column,) if spec.split_column else (),
        "group_column": (spec.group_column,) if spec.group_column else (),
        "time_column": (spec.time_column,) if spec.time_column else (),
        "drop_columns": spec.drop_columns,
    }
    present = set(columns)
    for role, names in roles.items():
        missing = [name for name in names if name not in present]
        if missing:
            raise DataError(
                f"{spec.path}: {role} column(s) {missing} not in the data; it has {_listed(columns)}"
            )
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
