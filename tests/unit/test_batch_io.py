"""Chunked reading and staged writing of tables (used by batch scoring)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from evenflow.data import batch_io

KEY = b"evenflow.test"


def test_csv_chunks_are_typed_as_one_read_of_the_whole_file(tmp_path: Path) -> None:
    rows = 3_000
    frame = pd.DataFrame(
        {
            "whole": range(rows),  # int64 throughout
            "late_null": range(rows),  # float64: a null in the last chunk
            "late_word": range(rows),  # text: a word in the last chunk
            "flag": [True, False] * (rows // 2),  # bool throughout
            "flag_null": [True, False] * (rows // 2),  # booleans with a null: objects
            "late_text": [None] * 1_500 + ["a"] * 1_500,  # text after a chunk of nulls
            "nothing": [None] * rows,  # float64 NaN
            "huge": [2**63 + 5] * 1_000 + [-1] * 2_000,  # uint64 then int64: text
        }
    ).astype(object)
    frame.loc[rows - 1, ["late_null", "late_word"]] = [None, "many"]
    frame.loc[1_500, "flag_null"] = None
    path = tmp_path / "batch.csv"
    frame.to_csv(path, index=False)
    whole = pd.read_csv(path, low_memory=False)

    batch = batch_io.open_batch(path, 1_000)
    chunks = list(batch.chunks)

    assert [len(chunk) for chunk in chunks] == [1_000, 1_000, 1_000]
    assert all(chunk.dtypes.equals(whole.dtypes) for chunk in chunks)
    pd.testing.assert_frame_equal(pd.concat(chunks), whole, check_exact=True)
    assert batch.object_types == {
        "late_word": pa.string(),
        "flag_null": pa.bool_(),
        "late_text": pa.string(),
        "huge": pa.string(),
    }
    (one,) = batch_io.open_batch(path, 10_000).chunks
    pd.testing.assert_frame_equal(one, whole, check_exact=True)


def test_a_staged_parquet_table_appears_whole_with_its_metadata(tmp_path: Path) -> None:
    target = tmp_path / "out" / "table.parquet"
    chunks = [
        pd.DataFrame({"n": [1, 2], "text": [None, None]}),  # all null first: typed from the input
        pd.DataFrame({"n": [3], "text": ["c"]}, index=[7]),
    ]
    with batch_io.staged_table(
        target, {"text": pa.string()}, file_format="parquet", metadata_key=KEY
    ) as table:
        for chunk in chunks:
            table.write(chunk)
        assert not target.exists()
        table.commit({"rows": 3})

    read = pd.read_parquet(target)
    pd.testing.assert_frame_equal(read, pd.concat(chunks, ignore_index=True))
    assert json.loads(pq.read_schema(target).metadata[KEY]) == {"rows": 3}
    assert oct(target.stat().st_mode & 0o777) == "0o644"
    assert sorted(p.name for p in target.parent.iterdir()) == ["table.parquet"]


@pytest.mark.parametrize("name", ["table.csv", "table.parquet"])
def test_a_failure_before_commit_leaves_nothing(tmp_path: Path, name: str) -> None:
    target = tmp_path / name
    file_format = "csv" if name.endswith(".csv") else "parquet"
    with (
        pytest.raises(RuntimeError, match="disk gone"),
        batch_io.staged_table(target, {}, file_format=file_format, metadata_key=KEY) as table,
    ):
        table.write(pd.DataFrame({"n": [1, 2]}))
        raise RuntimeError("disk gone")
    assert list(tmp_path.iterdir()) == []
