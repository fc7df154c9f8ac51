"""Rebuild a run from its lineage and compare predictions: the audit's proof.

``reproduce`` reads the run's tags, checks its commit out in a temporary git worktree, restores its
data by DVC hash (cache, else remote), retrains with the recorded parameters *using that commit's
code* (a subprocess whose import path is the worktree), and compares test predictions row by row.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from evenflow import layout
from evenflow.config.settings import EvenflowSettings
from evenflow.data import versioning
from evenflow.errors import EvenflowError
from evenflow.registry import store as registry

logger = logging.getLogger(__name__)


class ReproductionError(EvenflowError):
    """A run cannot be rebuilt (missing lineage, code or data)."""


class Reproduction(BaseModel):
    """How a rebuilt run's test predictions compare with the original's."""

    model_config = ConfigDict(frozen=True)

    run_id: str
    git_commit: str
    git_dirty: bool
    data_md5: str
    n_rows: int
    n_different: int
    max_abs_difference: float

    @property
    def identical(self) -> bool:
        """Every row has the same row id and bit-identical score."""
        return self.n_different == 0


def compare_predictions(original: pd.DataFrame, rebuilt: pd.DataFrame) -> tuple[int, int, float]:
    """Rows, rows whose score differs (or that are missing), and the largest score difference."""
    merged = original[["_row_id", "score"]].merge(
        rebuilt[["_row_id", "score"]], on="_row_id", how="outer", suffixes=("", "_rebuilt")
    )
    difference = (merged["score"] - merged["score_rebuilt"]).abs()
    different = int((difference.fillna(np.inf) > 0).sum())
    largest = float(difference.max()) if len(difference) and difference.notna().any() else 0.0
    return len(merged), different, largest


def reproduce(settings: EvenflowSettings, run_id: str) -> Reproduction:
    """Rebuild ``run_id`` from its commit and data hash and compare its test predictions."""
    client = registry.client_for(settings)
    tags = client.get_run(run_id).data.tags
    commit, data_md5 = tags.get(layout.GIT_COMMIT_TAG), tags.get(layout.DATA_MD5_TAG)
    if not commit or commit == "unknown" or not data_md5 or data_md5 == "pending":
        raise ReproductionError(
            f"run {run_id} lacks lineage (git commit {commit}, data {data_md5})"
        )
    dirty = tags.get(layout.GIT_DIRTY_TAG) == "true"
    if dirty:
        logger.warning(
            "run %s was made from a dirty tree; its diff is in %s", run_id, layout.GIT_DIFF
        )
    with tempfile.TemporaryDirectory(prefix="evenflow-reproduce-") as scratch:
        work = Path(scratch)
        artifacts = {
            name: Path(client.download_artifacts(run_id, name, str(work / "artifacts")))
            for name in (layout.RUN_PARAMS, layout.MANIFEST, layout.PREDICTIONS)
        }
        data_dir = versioning.restore_directory(settings.project_root, data_md5, work / "data")
        with _worktree(settings.code_root, commit, work / "code") as code:
            rebuilt = _retrain_in(
                code,
                commit,
                artifacts=artifacts,
                data_dir=data_dir,
                out_dir=work / "rebuilt",
                settings=settings,
            )
        n_rows, n_different, largest = compare_predictions(
            pd.read_parquet(artifacts[layout.PREDICTIONS]), pd.read_parquet(rebuilt)
        )
    return Reproduction(
        run_id=run_id,
        git_commit=commit,
        git_dirty=dirty,
        data_md5=data_md5,
        n_rows=n_rows,
        n_different=n_different,
        max_abs_difference=largest,
    )


@contextmanager
def _worktree(repo: Path, commit: str, path: Path) -> Iterator[Path]:
    added = subprocess.run(
        ["git", "worktree", "add", "--detach", str(path), commit],
        cwd=repo,
        capture_output=True,
        text=True,
        check=False,
    )
    if added.returncode != 0:
        raise ReproductionError(
            f"cannot check out commit {commit} of {repo}: {added.stderr.strip()}"
        )
    try:
        yield path
    finally:
        subprocess.run(
            ["git", "worktree", "remove", "--force", str(path)],
            cwd=repo,
            capture_output=True,
            check=False,
        )


def _retrain_in(
    code: Path,
    commit: str,
    *,
    artifacts: dict[str, Path],
    data_dir: Path,
    out_dir: Path,
    settings: EvenflowSettings,
) -> Path:
    env = {
        **os.environ,
        "PYTHONPATH": str(code),
        "EVENFLOW_PROJECT_ROOT": str(settings.project_root),
    }
    command = [
        sys.executable,
        "-m",
        _retrain_module(code),
        str(artifacts[layout.RUN_PARAMS]),
        str(artifacts[layout.MANIFEST]),
        str(data_dir),
        str(out_dir),
    ]
    done = subprocess.run(command, cwd=code, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-5:])
        raise ReproductionError(f"retraining with commit {commit[:12]} failed:\n{tail}")
    return out_dir / layout.PREDICTIONS_FILE


def _retrain_module(code: Path) -> str:
    """The module that retrains, at the path it has in the commit checked out at ``code``.

    Commits before the core moved into subpackages keep it at ``evenflow/reproduce.py``.
    """
    if (code / "evenflow" / "usecases" / "reproduce.py").is_file():
        return "evenflow.usecases.reproduce"
    return "evenflow.reproduce"


def retrain(params_path: Path, manifest_path: Path, data_dir: Path, out_dir: Path) -> Path:
    """Retrain from recorded params and a restored shard directory; run inside the worktree."""
    from evenflow.config.run import RunParams  # noqa: PLC0415
    from evenflow.records import ShardManifest  # noqa: PLC0415
    from evenflow.usecases import train as pipeline  # noqa: PLC0415  this module is imported by the CLI; keep it light

    params = RunParams.model_validate(json.loads(params_path.read_text(encoding="utf-8")))
    manifest = ShardManifest.model_validate_json(manifest_path.read_text(encoding="utf-8"))
    manifest = manifest.model_copy(update={"shard_dir": data_dir})
    result = pipeline.train(manifest, params, EvenflowSettings(), out_dir)
    return result.predictions_path


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    retrain(*(Path(arg) for arg in sys.argv[1:5]))
