"""Real-data battery: the training flow end to end on public tables shipped inside installed packages.

Each flow run happens once per session (``flow_run`` caches by key) in its own project folder, and
the tests read back what it logged to MLflow: metrics, tags, the out-of-fold predictions and the
JSON reports. The references (plain XGBoost, logistic regression, Fairlearn) are recomputed here.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from mlflow import MlflowClient
from mlflow.entities import Run
from mlflow.entities.model_registry import ModelVersion
from prefect.testing.utilities import prefect_test_harness

from evenflow.config.run import RunParams
from evenflow.config.settings import EvenflowSettings
from evenflow.errors import GateFailed
from flows.train_and_register import train_and_register
from tests.conftest import REPO_ROOT
from tests.realdata.datasets import DATASETS, RealDataset


@pytest.fixture(autouse=True, scope="session")
def prefect_server() -> Iterator[None]:
    """One temporary Prefect API for the battery (as tests/flows has its own)."""
    with prefect_test_harness(server_startup_timeout=120):
        yield


def run_params(
    dataset: RealDataset | dict[str, Any], path: Path, **sections: dict[str, Any]
) -> RunParams:
    """Run parameters for a small table: CPU, two shards per split (one per worker), few bootstrap replicates.

    The model keeps its default booster parameters (the thing under test); ``sections`` update
    whole sections, e.g. ``model={"num_boost_round": 1}``.
    """
    spec = (
        {
            "name": dataset.name,
            "target": dataset.target,
            "positive_label": dataset.positive_label,
            "sensitive": list(dataset.sensitive),
        }
        if isinstance(dataset, RealDataset)
        else dict(dataset)
    )
    base: dict[str, Any] = {
        "dataset": {**spec, "path": str(path)},
        "shards": {"n_shards": 2},  # one per Dask worker (see the report: 1 crashes)
        "model": {"device": "cpu"},
        "evaluation": {"drift_sample_rows": 1000},
        "fairness": {"n_bootstrap": 200},
        "explain": {"shap_rows": 100, "proxy_rows": 500},
    }
    for section, values in sections.items():
        base[section] = {**base.get(section, {}), **values}
    return RunParams.from_mapping(base, source="realdata test")


@dataclass
class FlowRun:
    """What one flow run left in MLflow, read back through a client (never from the flow's memory)."""

    params: RunParams
    project: Path
    client: MlflowClient
    run: Run
    version: ModelVersion
    failure: GateFailed | None
    seconds: float

    @property
    def run_id(self) -> str:
        return str(self.run.info.run_id)

    def artifact(self, path: str) -> Path:
        target = self.project / "downloads" / path.replace("/", "__")
        target.mkdir(parents=True, exist_ok=True)
        return Path(self.client.download_artifacts(self.run_id, path, str(target)))

    def json(self, path: str) -> Any:
        return json.loads(self.artifact(path).read_text())

    def predictions(self) -> pd.DataFrame:
        return pd.read_parquet(self.artifact("predictions/predictions.parquet"))

    def aliases(self) -> list[str]:
        return list(self.client.get_registered_model(self.params.dataset.name).aliases)


def _execute(params: RunParams, root: Path) -> FlowRun:
    project = root / "project"
    project.mkdir(parents=True)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("EVENFLOW_PROJECT_ROOT", str(project))
        patch.setenv("EVENFLOW_CODE_ROOT", str(REPO_ROOT))
        patch.setenv("EVENFLOW_DVC_REMOTE", str(root / "dvc-remote"))
        started = time.perf_counter()
        failure: GateFailed | None = None
        try:
            train_and_register(params)
        except GateFailed as exc:
            failure = exc
        seconds = time.perf_counter() - started
    uri = EvenflowSettings(project_root=project).tracking_uri
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    [version] = client.search_model_versions(f"name='{params.dataset.name}'")
    return FlowRun(
        params=params,
        project=project,
        client=client,
        run=client.get_run(version.run_id),
        version=version,
        failure=failure,
        seconds=seconds,
    )


@pytest.fixture(scope="session")
def flow_run(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str, RunParams], FlowRun]:
    """Run the flow once per key in a fresh project; later requests for the key reuse the run."""
    done: dict[str, FlowRun] = {}

    def get(key: str, params: RunParams) -> FlowRun:
        if key not in done:
            done[key] = _execute(params, tmp_path_factory.mktemp(f"flow-{key}"))
        return done[key]

    return get


@pytest.fixture(scope="session")
def dataset_csv(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """A shipped table (by name) written once as the CSV file the flow reads."""
    folder = tmp_path_factory.mktemp("realdata")

    def get(name: str) -> Path:
        path = folder / f"{name}.csv"
        if not path.exists():
            DATASETS[name].write_csv(folder)
        return path

    return get


@pytest.fixture(scope="session")
def dataset_run(
    flow_run: Callable[[str, RunParams], FlowRun], dataset_csv: Callable[[str], Path]
) -> Callable[[str], FlowRun]:
    """The flow's default run on one shipped dataset (by name), run once per session."""

    def get(name: str) -> FlowRun:
        return flow_run(name, run_params(DATASETS[name], dataset_csv(name)))

    return get
