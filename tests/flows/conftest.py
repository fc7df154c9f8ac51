"""Flow tests run against one Prefect test server per session (a real, temporary Prefect API)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from prefect.testing.utilities import prefect_test_harness

from tests.conftest import sample_params


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
