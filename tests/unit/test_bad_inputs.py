"""The bad-input battery: each kind ends with exit 2 and one line naming the file, column and rule,
in seconds, with nothing registered and the input untouched.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from evenflow.cli.main import app

RUNNER = CliRunner()
FLAGS = ["--target", "y", "--positive-label", "1", "--sensitive", "s", "--name", "t"]


def frame(rows: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "x": rng.normal(size=rows).round(3),
            "y": np.tile([0, 1], rows // 2),
            "s": np.tile(["a", "a", "b", "b"], rows // 4),
        }
    )


def csv(tmp: Path, data: pd.DataFrame | str | bytes, name: str = "t.csv") -> Path:
    path = tmp / name
    if isinstance(data, pd.DataFrame):
        data.to_csv(path, index=False)
    elif isinstance(data, str):
        path.write_text(data, encoding="utf-8")
    else:
        path.write_bytes(data)
    return path


def folder(path: Path) -> Path:
    path.mkdir()
    return path


def parts(tmp: Path, *frames: pd.DataFrame) -> Path:
    folder = tmp / "batch"
    folder.mkdir()
    for i, part in enumerate(frames):
        part.to_parquet(folder / f"part-{i}.parquet", index=False)
    return folder


def config(tmp: Path, text: str) -> Path:
    data = csv(tmp, frame())
    path = tmp / "run.yaml"
    path.write_text(
        f"dataset:\n  name: t\n  path: {data}\n  target: y\n  positive_label: '1'\n"
        f"  sensitive: [s]\n{text}",
        encoding="utf-8",
    )
    return path


Case = Callable[[Path], tuple[list[str], str]]


def data_case(make: Callable[[Path], Path], *flags: str) -> Case:
    """A `run --data PATH` case with the usual flags, or with the flags given."""
    return lambda tmp: (["run", "--data", str(make(tmp)), *(flags or FLAGS)], "")


CASES: dict[str, tuple[Case, str]] = {
    "missing file": (data_case(lambda t: t / "nope.csv"), r"nope\.csv: data file not found"),
    "a folder with no parquet parts": (
        data_case(lambda t: folder(t / "empty")),
        r"empty: folder holds no \.parquet parts",
    ),
    "empty file": (data_case(lambda t: csv(t, b"")), r"t\.csv: .*empty"),
    "header only": (data_case(lambda t: csv(t, "x,y,s\n")), r"t\.csv: .*no rows"),
    "binary garbage": (
        data_case(lambda t: csv(t, bytes(range(256)) * 40)),
        r"t\.csv: .*(UTF-8|CSV)",
    ),
    "latin-1 text": (
        data_case(lambda t: csv(t, "x,y,s\n1,0,caf\xe9\n2,1,na\xefve\n".encode("latin-1"))),
        r"t\.csv: .*not UTF-8",
    ),
    "duplicate column names": (
        data_case(lambda t: csv(t, "x,y,s,x\n1,0,a,2\n2,1,b,3\n")),
        r"t\.csv: .*column 'x' appears twice",
    ),
    "target column missing": (
        data_case(lambda t: csv(t, frame().drop(columns="y"))),
        r"t\.csv: target column\(s\) \['y'\] not in the data",
    ),
    "sensitive column missing": (
        data_case(lambda t: csv(t, frame().drop(columns="s"))),
        r"t\.csv: sensitive column\(s\) \['s'\] not in the data",
    ),
    "positive label absent": (
        data_case(lambda t: csv(t, frame().assign(y=frame()["y"] + 5))),
        r"t\.csv: target 'y' has no row with the positive label '1'",
    ),
    "one class only": (
        data_case(lambda t: csv(t, frame().assign(y=1))),
        r"t\.csv: target 'y' has one class only",
    ),
    "target with nulls": (
        data_case(lambda t: csv(t, frame().assign(y=frame()["y"].where(frame()["x"] > 0)))),
        r"t\.csv: target 'y' is missing in \d+ rows",
    ),
    "sensitive column all null": (
        data_case(lambda t: csv(t, frame().assign(s=None))),
        r"t\.csv: column 's' is empty",
    ),
    "feature all null": (
        data_case(lambda t: csv(t, frame().assign(z=None))),
        r"t\.csv: column 'z' is empty",
    ),
    "a huge cell": (
        data_case(lambda t: csv(t, frame().assign(s=["a" * 2_000_000, *frame()["s"][1:]]))),
        r"t\.csv: column 's' holds a cell of 2,000,000 characters",
    ),
    "target is also sensitive": (
        data_case(
            lambda t: csv(t, frame()),
            *("--target", "y", "--positive-label", "1", "--sensitive", "y"),
        ),
        r"target column 'y' cannot also be a sensitive column",
    ),
    "parquet parts with other types": (
        data_case(lambda t: parts(t, frame(), frame().assign(s=range(40)))),
        r"part-1\.parquet: column 's' is int64 but string",
    ),
    "parquet parts with other columns": (
        data_case(lambda t: parts(t, frame(), frame().drop(columns="x"))),
        r"part-1\.parquet: parquet part has other columns",
    ),
    "corrupt parquet": (
        data_case(lambda t: csv(t, b"PAR1 not really", "t.parquet")),
        r"t\.parquet: cannot be read as parquet",
    ),
    "unknown file type": (
        data_case(lambda t: csv(t, b"PK\x03\x04", "t.xlsx")),
        r"t\.xlsx: .*CSV .*parquet",
    ),
    "config that is not YAML": (
        lambda t: (["run", "--config", str(config(t, "model: [unclosed\n"))], ""),
        r"run\.yaml: .*YAML",
    ),
    "config with an unknown key": (
        lambda t: (["run", "--config", str(config(t, "model:\n  depth: 3\n"))], ""),
        r"run\.yaml: .*model\.depth",
    ),
    "config with a value out of bounds": (
        lambda t: (["run", "--config", str(config(t, "shards:\n  n_shards: 0\n"))], ""),
        r"run\.yaml: .*shards\.n_shards",
    ),
    "missing config": (
        lambda t: (["run", "--config", str(t / "nope.yaml")], ""),
        r"nope\.yaml",
    ),
}


def _digest(tmp: Path) -> dict[str, str]:
    return {
        str(p.relative_to(tmp)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(tmp.rglob("*"))
        if p.is_file()
    }


@pytest.mark.parametrize("kind", sorted(CASES))
def test_bad_input_is_refused_in_seconds_naming_what_is_wrong(
    kind: str, project: Path, tmp_path: Path
) -> None:
    make, expected = CASES[kind]
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    argv, _ = make(inputs)
    before = _digest(inputs)
    started = time.perf_counter()
    result = RUNNER.invoke(app, argv)
    elapsed = time.perf_counter() - started
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert result.exit_code == 2, result.output
    assert len(errors) == 1, result.output
    assert re.search(expected, errors[0]), result.output
    assert "Traceback" not in result.output
    assert elapsed < 10, f"{kind}: {elapsed:.1f}s"
    assert _digest(inputs) == before, "the input was changed"
    assert not (project / "mlruns").exists(), "a tracking store was created"
    assert not (project / "data").exists(), "data was written"
