"""Bad input fails in seconds, before any server starts, naming the file, the column and the rule."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from evenflow.cli.main import app
from evenflow.config.run import DatasetSpec
from evenflow.contracts.preflight import batch_columns, check_dataset, personal_suspects
from evenflow.errors import DataError

RUNNER = CliRunner()
FRAME = pd.DataFrame({"x": [1.0, 2.0], "y": [0, 1], "s": ["a", "b"], "id": [7, 8]})


def spec(path: Path, **fields: object) -> DatasetSpec:
    base = {"name": "t", "path": path, "target": "y", "positive_label": "1", "sensitive": ("s",)}
    return DatasetSpec.model_validate({**base, **fields})


def test_every_named_column_must_exist(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    FRAME.to_csv(path, index=False)
    assert check_dataset(spec(path)) == ("x", "y", "s", "id")
    for field, value, role in (
        ("target", "label", "target"),
        ("sensitive", ("s", "sex"), "sensitive"),
        ("group_column", "person", "group_column"),
        ("time_column", "day", "time_column"),
        ("drop_columns", ("ssn",), "drop_columns"),
    ):
        with pytest.raises(
            DataError, match=rf"t\.csv: {role} column\(s\) \['.+'\] not in the data"
        ):
            check_dataset(spec(path, **{field: value}))


def test_parquet_parts_with_other_schemas_are_named(tmp_path: Path) -> None:
    folder = tmp_path / "parts"
    folder.mkdir()
    FRAME.to_parquet(folder / "part-0.parquet", index=False)
    FRAME.assign(s=[1, 2]).to_parquet(folder / "part-1.parquet", index=False)
    with pytest.raises(DataError, match=r"part-1\.parquet: column 's' is int64 but string"):
        batch_columns(folder)
    (folder / "part-1.parquet").unlink()
    FRAME.drop(columns="id").to_parquet(folder / "part-1.parquet", index=False)
    with pytest.raises(DataError, match=r"part-1\.parquet: parquet part has other columns.*id"):
        batch_columns(folder)
    # Integers in one part and floats (an int column with a null) in another are one batch.
    (folder / "part-1.parquet").unlink()
    table = pa.Table.from_pandas(FRAME.assign(id=[7.0, None]), preserve_index=False)
    pq.write_table(table, folder / "part-1.parquet")
    assert batch_columns(folder) == ("x", "y", "s", "id")


def test_run_with_a_missing_file_or_column_fails_before_anything_starts(
    project: Path, tmp_path: Path
) -> None:
    flags = ["--target", "y", "--positive-label", "1", "--sensitive", "s", "--name", "t"]
    started = time.perf_counter()
    missing = RUNNER.invoke(app, ["run", "--data", str(tmp_path / "nope.csv"), *flags])
    assert missing.exit_code == 2
    assert "nope.csv: data file not found" in missing.output
    path = tmp_path / "t.csv"
    FRAME.to_csv(path, index=False)
    wrong = RUNNER.invoke(app, ["run", "--data", str(path), *flags[:-4], "--sensitive", "sex"])
    assert wrong.exit_code == 2
    assert "sensitive column(s) ['sex'] not in the data; it has 4 columns: x, y, s, id" in (
        wrong.output
    )
    assert time.perf_counter() - started < 10
    # Nothing was started or written: no tracking database, no Prefect state, no data folder.
    assert not (project / "mlruns").exists()
    assert not (project / "data").exists()


def test_columns_named_like_personal_data_are_pointed_out_unless_marked(tmp_path: Path) -> None:
    columns = ("age", "email", "SSN", "customer_name", "home-address", "zipcode", "y", "s")
    assert personal_suspects(spec(tmp_path / "t.csv"), columns) == [
        "email",
        "SSN",
        "customer_name",
        "home-address",
    ]
    marked = spec(tmp_path / "t.csv", personal_columns=("email",), drop_columns=("SSN",))
    assert personal_suspects(marked, columns) == ["customer_name", "home-address"]
