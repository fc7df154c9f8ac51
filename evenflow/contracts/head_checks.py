"""What the first rows of a batch already tell, before anything starts.

A batch in the wrong encoding, with a missing label, one class, an empty column or a cell of
megabytes would otherwise fail minutes later, deep inside a library, after a tracking run was
opened. The head (up to :data:`HEAD_ROWS` rows) is read once. Checks that hold for any part of the
data (encoding, a missing label, a huge cell) run on the head; checks that need every row (one
class only, an empty column, no positive row) run only when the head is the whole batch, and are
otherwise left to the contract check.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from evenflow.config.run import DatasetSpec
from evenflow.data.datasets import is_parquet, parquet_files
from evenflow.data.features import label_values
from evenflow.errors import DataError

#: Rows read for the checks (about a second of CSV parsing).
HEAD_ROWS = 200_000
#: The longest cell accepted, in characters: a longer one is a broken export, not data.
MAX_CELL_CHARS = 1_000_000


def check_head(spec: DatasetSpec) -> None:
    """Refuse a batch whose first rows already show it cannot be trained on.

    Raises:
        DataError: naming the file, the column and the rule.
    """
    head, whole = read_head(spec.path)
    where = spec.path
    if head.empty:
        raise DataError(f"{where}: the batch has a header but no rows")
    _check_cells(where, head)
    _check_target(spec, head, whole=whole)
    if whole:
        _check_empty_columns(where, head)


def read_head(path: Path) -> tuple[pd.DataFrame, bool]:
    """The first :data:`HEAD_ROWS` rows, and whether they are the whole batch."""
    if is_parquet(path):
        return _parquet_head(parquet_files(path))
    try:
        head = pd.read_csv(path, nrows=HEAD_ROWS + 1, encoding="utf-8", low_memory=False)
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{path}: is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset "
            f"{exc.start} of a block): save it as UTF-8"
        ) from None
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise DataError(f"{path}: cannot be read as CSV: {exc}") from None
    return head.iloc[:HEAD_ROWS], len(head) <= HEAD_ROWS


def _parquet_head(files: list[Path]) -> tuple[pd.DataFrame, bool]:
    frames, rows = [], 0
    for file in files:
        handle = pq.ParquetFile(file)
        for batch in handle.iter_batches(batch_size=HEAD_ROWS - rows):
            frames.append(batch.to_pandas())
            rows += batch.num_rows
            if rows >= HEAD_ROWS:
                total = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
                return pd.concat(frames, ignore_index=True), total <= HEAD_ROWS
    return (pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()), True


def _check_cells(where: Path, head: pd.DataFrame) -> None:
    for name in head.select_dtypes(include="object").columns:
        longest = int(head[name].dropna().astype(str).str.len().max() or 0)
        if longest > MAX_CELL_CHARS:
            raise DataError(
                f"{where}: column '{name}' holds a cell of {longest:,} characters "
                f"(at most {MAX_CELL_CHARS:,}): the export is broken, or the column is not a feature"
            )


def _check_target(spec: DatasetSpec, head: pd.DataFrame, *, whole: bool) -> None:
    target = head[spec.target]
    missing = int(target.isna().sum())
    if missing:
        raise DataError(
            f"{spec.path}: target '{spec.target}' is missing in {missing} rows of the first "
            f"{len(head):,}: a row without a label cannot be trained on; drop or label them"
        )
    if not whole:
        return
    try:
        positives = int(label_values(target, spec.positive_label).sum())
    except DataError as exc:
        raise DataError(f"{spec.path}: {exc}") from None
    if target.nunique() < 2:  # noqa: PLR2004 - two classes: a binary target
        raise DataError(
            f"{spec.path}: target '{spec.target}' has one class only "
            f"({target.iloc[0]!r} in all {len(head):,} rows): nothing to learn"
        )
    if positives == 0:
        seen = ", ".join(repr(str(v)) for v in target.unique()[:5])
        raise DataError(
            f"{spec.path}: target '{spec.target}' has no row with the positive label "
            f"'{spec.positive_label}' (values: {seen}): check --positive-label"
        )


def _check_empty_columns(where: Path, head: pd.DataFrame) -> None:
    for name in head.columns:
        if head[name].isna().all():
            raise DataError(
                f"{where}: column '{name}' is empty (all {len(head):,} values are null): "
                "drop it (dataset.drop_columns) or fill it"
            )
