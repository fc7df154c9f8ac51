"""Small data is cross-fitted: a 1,500-row table still answers the fairness question for every group."""

from __future__ import annotations

from collections.abc import Callable
from itertools import combinations
from pathlib import Path

import pandas as pd
import pytest

from evenflow.config.run import RunParams
from evenflow.config.settings import EvenflowSettings
from evenflow.data.planted_parquet import feature_names, training_chunk
from evenflow.data.synth import PlantedEffects, plan_planted
from evenflow.usecases.reproduce import reproduce
from tests.conftest import REPO_ROOT
from tests.realdata.conftest import FlowRun, run_params
from tests.realdata.oracle import check_fairness_report

pytestmark = pytest.mark.realdata

ROWS = 1_500
# Seed 16 draws 41 rows of race "C" (10 of them positive), and exactly 10 "Female × C" rows:
# the default min_cell, so the boundary group must be reported too.
SEED = 16
EFFECTS = PlantedEffects(race_shares={"A": 0.6, "B": 0.373, "C": 0.027}, miscalibrated_race="A")
SENSITIVE = ("sex", "race")


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> tuple[pd.DataFrame, Path]:
    """An Adult-like table with a known signal (the features carry the true probability)."""
    frame = training_chunk(0, ROWS, SEED, plan_planted(EFFECTS), feature_names())
    path = tmp_path_factory.mktemp("planted") / "planted.csv"
    frame.to_csv(path, index=False)
    return frame, path


def _params(path: Path) -> RunParams:
    spec = {
        "name": "planted",
        "target": "income",
        "positive_label": ">50K",
        "sensitive": list(SENSITIVE),
    }
    return run_params(spec, path)


def test_every_group_above_min_cell_is_reported_from_out_of_fold_predictions(
    flow_run: Callable[[str, RunParams], FlowRun], planted: tuple[pd.DataFrame, Path]
) -> None:
    frame, path = planted
    params = _params(path)
    assert frame["race"].value_counts()["C"] < 50, "the small group must stay small"

    result = flow_run("planted", params)

    assert result.run.data.tags["evenflow.evaluation"] == "cross_fit"
    assert result.run.data.metrics["test_roc_auc"] > 0.75  # the planted signal is learnt
    predictions = result.predictions()
    assert sorted(predictions["_row_id"]) == list(range(ROWS))
    report = result.json("reports/fairness/fairness.json")
    assert report["n_rows"] == ROWS
    min_cell = params.fairness.min_cell
    # Every group of every slice with at least min_cell rows in the whole data, with all its rows.
    listed = {
        tuple(item["columns"]): {
            tuple(g["values"][c] for c in item["columns"]): g["n"] for g in item["groups"]
        }
        for item in report["slices"]
    }
    for size in (1, 2):
        for columns in combinations(SENSITIVE, size):
            counts = frame.groupby(list(columns)).size()
            for key, n in counts.items():
                key_tuple = key if isinstance(key, tuple) else (key,)
                if n >= min_cell:
                    assert listed[columns].get(key_tuple) == n, (columns, key_tuple, n)
    assert listed[("race",)][("C",)] == (frame["race"] == "C").sum()
    check_fairness_report(report, predictions, min_cell)


def test_reproduce_rebuilds_every_fold_and_the_refit(
    flow_run: Callable[[str, RunParams], FlowRun],
    planted: tuple[pd.DataFrame, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    result = flow_run("planted", _params(planted[1]))
    monkeypatch.setenv("EVENFLOW_PROJECT_ROOT", str(result.project))
    monkeypatch.setenv("EVENFLOW_CODE_ROOT", str(REPO_ROOT))
    monkeypatch.setenv("EVENFLOW_DVC_REMOTE", str(result.project.parent / "dvc-remote"))

    rebuilt = reproduce(EvenflowSettings(), result.run_id)

    # Every row's out-of-fold score comes back bit for bit from the run's commit and data hash.
    assert rebuilt.identical, rebuilt
    assert rebuilt.n_rows == ROWS
