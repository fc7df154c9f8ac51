"""Flow tests run against one Prefect test server per session (a real, temporary Prefect API)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from mlflow import MlflowClient
from prefect.testing.utilities import prefect_test_harness

from evenflow.config.settings import EvenflowSettings
from evenflow.records import ModelVersionRef
from flows.train_and_register import train_and_register
from tests.conftest import REPO_ROOT, make_champion, sample_params


@pytest.fixture(autouse=True, scope="session")
def prefect_server() -> Iterator[None]:
    with prefect_test_harness(server_startup_timeout=120):
        yield


def run_config(folder: Path, data: Path, **overrides: object) -> Path:
    """The Adult-sample run parameters (``sample_params``) as a YAML file for ``evenflow run``."""
    path = folder / "run.yaml"
    params = sample_params(data, **overrides).model_dump(mode="json")
    path.write_text(yaml.safe_dump(params), encoding="utf-8")
    return path


@dataclass(frozen=True)
class TrainedChampion:
    """A model trained by the real flow and made champion, in a project folder of its own."""

    root: Path
    version: ModelVersionRef
    client: MlflowClient


@contextmanager
def trained_champion(root: Path, data: Path, **overrides: object) -> Iterator[TrainedChampion]:
    """Train ``sample_params(data, **overrides)`` in a project under ``root``; make it champion.

    The project's environment stays set until the block ends, so a module-scoped fixture that
    yields inside it scores against this champion. Used by the scoring flow tests, each with its
    own training options (threshold mitigation, a ``reasons:`` section).
    """
    with pytest.MonkeyPatch.context() as env:
        env.setenv("EVENFLOW_PROJECT_ROOT", str(root / "project"))
        env.setenv("EVENFLOW_CODE_ROOT", str(REPO_ROOT))
        env.setenv("EVENFLOW_DVC_REMOTE", str(root / "dvc-remote"))
        (root / "project").mkdir()
        version = train_and_register(sample_params(data, **overrides))
        uri = EvenflowSettings().tracking_uri
        make_champion(EvenflowSettings(), "adult", version.version)
        yield TrainedChampion(root, version, MlflowClient(tracking_uri=uri, registry_uri=uri))
