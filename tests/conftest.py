"""Shared fixtures: small real data, isolated project folders, telemetry off."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

import pandas as pd
import pytest

from evenflow.config.run import BUILTIN_EXAMPLE, RunParams, builtin_example
from evenflow.config.settings import EvenflowSettings
from evenflow.usecases import champion

REPO_ROOT = Path(__file__).resolve().parents[1]

for key, value in {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DVC_NO_ANALYTICS": "1",
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
}.items():
    os.environ.setdefault(key, value)


@pytest.fixture(scope="session")
def adult_frame() -> pd.DataFrame:
    """The built-in example as shipped (48,842 rows)."""
    return pd.read_csv(BUILTIN_EXAMPLE.parent / "adult.csv.gz")


@pytest.fixture(scope="session")
def adult_rows(adult_frame: pd.DataFrame) -> pd.DataFrame:
    """2,000 rows of Adult, raw columns and its split column, as read from CSV."""
    return adult_frame.sample(2000, random_state=11).reset_index(drop=True)


@pytest.fixture(scope="session")
def adult_sample_path(tmp_path_factory: pytest.TempPathFactory, adult_frame: pd.DataFrame) -> Path:
    """A 3,000-row sample of Adult, keeping its own train/test split, as a CSV file."""
    sample = adult_frame.groupby("split", group_keys=False).sample(
        frac=3000 / len(adult_frame), random_state=7
    )
    path = tmp_path_factory.mktemp("adult") / "adult_sample.csv"
    sample.to_csv(path, index=False)
    return path


def sample_params(path: Path, **overrides: object) -> RunParams:
    """Run parameters for the Adult sample: small shards, few rounds, CPU, two workers."""
    base = builtin_example().model_dump(mode="json")
    base["dataset"]["path"] = str(path)
    base["shards"] = {"n_shards": 2}
    base["model"] = {
        **base["model"],
        "device": "cpu",
        "num_boost_round": 60,
        "early_stopping_rounds": 10,
        # 60 rounds at the default 0.05 underfit the sample: the logistic baseline beat it.
        "learning_rate": 0.2,
    }
    base["evaluation"] = {**base["evaluation"], "drift_sample_rows": 1000}
    base["fairness"] = {"n_bootstrap": 200}
    base["explain"] = {"shap_rows": 500, "proxy_rows": 1000}
    # 3,000 rows: fairness limits are set by the tests that need them. On ~1,700 training rows a
    # logistic regression can edge out 60 boosting rounds, so the baseline clause (tested in
    # tests/realdata and tests/unit/test_policy.py) is off here: these tests are about other stages.
    base["gates"] = {"min_auc": 0.8, "max_auc_below_baseline": None}
    for dotted, value in overrides.items():
        section, key = dotted.split("__")
        base.setdefault(section, {})[key] = value
    return RunParams.model_validate(base)


def assert_lineage_tags(params: RunParams, data_md5: str, *tag_sets: Mapping[str, str]) -> None:
    """Each tag set (a run's, its registered version's) names the data, this checkout and params."""
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    for tags in tag_sets:
        assert tags["evenflow.data_md5"] == data_md5
        assert tags["evenflow.git_commit"] == head
        assert tags["evenflow.params_hash"] == params.params_hash()


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty project folder (data, DVC, MLflow, expectations) whose code is this checkout."""
    root = tmp_path / "project"
    root.mkdir()
    monkeypatch.setenv("EVENFLOW_PROJECT_ROOT", str(root))
    monkeypatch.setenv("EVENFLOW_CODE_ROOT", str(REPO_ROOT))
    monkeypatch.setenv("EVENFLOW_DVC_REMOTE", str(tmp_path / "dvc-remote"))
    return root


def make_champion(settings: EvenflowSettings, model: str, version: str) -> None:
    """Make ``version`` champion the way a person does: review, then promote through the ledger.

    Setting the alias directly would be refused by the champion-alias guard (it is not in the ledger).
    """
    champion.review(settings, model, version)
    champion.promote(settings, model, version, "test reviewer", "made champion by a test fixture")
