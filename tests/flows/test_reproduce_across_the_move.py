"""A run rebuilt by the code of a commit from before the core moved into subpackages (issue 11).

``reproduce`` checks the run's recorded commit out and retrains with *that* commit's code, so the
run layout the current code writes (run parameters, manifest, predictions, data md5) must still be
read by the old code, and the old code must rebuild bit-identical predictions: the move did not
change what a training run computes.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from mlflow import MlflowClient

from evenflow import layout
from evenflow.config.settings import EvenflowSettings
from evenflow.usecases.reproduce import reproduce
from flows.train_and_register import train_and_register
from tests.conftest import REPO_ROOT, sample_params

pytestmark = pytest.mark.slow

BEFORE_THE_MOVE = "e802da078b9ca39da9c753498cdfa4e3d28c2a97"
"""The last commit with the flat core (``evenflow/pipeline.py``, ``evenflow/reproduce.py``)."""


def _has_commit(sha: str) -> bool:
    found = subprocess.run(
        ["git", "cat-file", "-e", f"{sha}^{{commit}}"],
        cwd=REPO_ROOT,
        capture_output=True,
        check=False,
    )
    return found.returncode == 0


@pytest.mark.skipif(
    not _has_commit(BEFORE_THE_MOVE),
    reason=f"this clone lacks commit {BEFORE_THE_MOVE[:12]} (a shallow clone?); "
    "clone with full history to rebuild a run with the code from before the move",
)
def test_code_from_before_the_move_rebuilds_a_run_of_the_current_code(
    project: Path, adult_sample_path: Path
) -> None:
    version = train_and_register(sample_params(adult_sample_path))
    settings = EvenflowSettings()
    client = MlflowClient(tracking_uri=settings.tracking_uri)
    client.set_tag(version.run_id, layout.GIT_COMMIT_TAG, BEFORE_THE_MOVE)

    result = reproduce(settings, version.run_id)

    assert result.git_commit == BEFORE_THE_MOVE
    assert result.n_rows > 0
    assert result.identical, result
