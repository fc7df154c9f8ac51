"""Reading a raw batch (CSV or Parquet) into pandas, with errors that name the file."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from evenflow.errors import DataError
from evenflow.io import file_md5
from evenflow.params import DatasetSpec
from evenflow.records import RawBatch

logger = logging.getLogger(__name__)


def read_table(path: Path) -> pd.DataFrame:
    """Read a CSV (optionally compressed) or Parquet file; never modifies it."""
    if not path.is_file():
        raise DataError(f"{path}: data file not found")
    suffixes = [s.lower() for s in path.suffixes]
    try:
        if ".parquet" in suffixes or ".pq" in suffixes:
            return pd.read_parquet(path)
        return pd.read_csv(path, low_memory=False)
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise DataError(f"{path}: cannot be read as {'/'.join(suffixes) or 'CSV'}: {exc}") from None


def load_batch(spec: DatasetSpec) -> tuple[RawBatch, pd.DataFrame]:
    """Load the dataset's file and describe it as a ``RawBatch`` (path, md5, rows, columns)."""
    frame = read_table(spec.path)
    if frame.empty:
        raise DataError(f"{spec.path}: the file has no rows")
    batch = RawBatch(
        dataset=spec.name,
        path=spec.path.resolve(),
        md5=file_md5(spec.path),
        n_rows=len(frame),
        columns=tuple(str(c) for c in frame.columns),
    )
    logger.info("loaded %s: %d rows x %d columns", spec.path, batch.n_rows, len(batch.columns))
    return batch, frame
