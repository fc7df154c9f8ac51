"""A disk that fills up while a run writes its data: one line naming where, nothing half-written.

The project's data folder is a 200 KiB tmpfs, too small for the validation report and the shards
of a 3,000-row batch (mounting needs root, as on this project's machines).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow import MlflowClient

from evenflow.config.settings import EvenflowSettings

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent


@pytest.fixture
def tiny_data_folder(project: Path) -> Iterator[Path]:
    folder = project / "data"
    folder.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=200k", "tmpfs", str(folder)],
        capture_output=True,
        check=False,
    )
    # CI and development machines run as root (the project's machine kind): no silent skip.
    assert mounted.returncode == 0, f"cannot mount a tmpfs: {mounted.stderr.decode().strip()}"
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def test_a_full_disk_is_named_in_one_line_and_nothing_half_written_is_kept(
    tiny_data_folder: Path, adult_sample_path: Path
) -> None:
    flags = ["--target", "income", "--positive-label", ">50K", "--sensitive", "sex,race"]
    result = subprocess.run(
        [str(BIN / "evenflow"), "run", "--data", str(adult_sample_path), *flags],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        timeout=600,
        check=False,
    )
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode == 3, result.stderr[-3000:]
    [line] = errors
    assert f"error: no space left on device writing {tiny_data_folder}" in line
    assert "Traceback" not in result.stderr
    assert max(len(text) for text in result.stderr.splitlines()) < 400
    assert not [p for p in tiny_data_folder.rglob("*") if ".tmp" in p.name]
    client = MlflowClient(EvenflowSettings().tracking_uri)
    experiment = client.get_experiment_by_name("adult_sample")
    assert experiment is not None
    [run] = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FAILED"
    assert client.search_registered_models() == []
