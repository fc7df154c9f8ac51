"""Reading a raw batch (CSV or Parquet) into pandas, with errors that name the file."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import pandas as pd

from evenflow.errors import DataError
from evenflow.io import file_md5
from evenflow.params import DatasetSpec
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
