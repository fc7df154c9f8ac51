"""A model no better than the plain baseline is refused as a candidate, with the numbers it lost by."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from evenflow.config.run import RunParams
from tests.realdata.conftest import FlowRun, run_params
from tests.realdata.datasets import DATASETS

pytestmark = pytest.mark.realdata


def test_one_stump_model_fails_the_baseline_clause_and_is_no_candidate(
    flow_run: Callable[[str, RunParams], FlowRun], dataset_csv: Callable[[str], Path]
) -> None:
    # One round of one split at learning rate 0.05: scores take two values near the prior.
    params = run_params(
        DATASETS["german"],
        dataset_csv("german"),
        model={"num_boost_round": 1, "max_depth": 1, "early_stopping_rounds": 1},
    )

    result = flow_run("german-stump", params)

    assert result.failure is not None, "a one-stump model must not pass its gates"
    decision = result.json("gate/decision.json")
    assert not decision["passed"]
    [clause] = [c for c in decision["failed"] if c["name"] == "auc_vs_baseline"]
    model_auc = result.run.data.metrics["test_roc_auc"]
    logistic_auc = result.json("reports/baselines.json")["logistic"]["roc_auc"]
    margin = result.params.gates.max_auc_below_baseline
    assert model_auc < logistic_auc - margin, (model_auc, logistic_auc, margin)
    assert clause["compared"] == pytest.approx(model_auc, abs=1e-9)
    assert clause["reference"] == pytest.approx(logistic_auc, abs=1e-9)
    assert clause["limit"] == pytest.approx(logistic_auc - margin, abs=1e-9)
    # The flow fails naming the clause and its numbers.
    [line] = [f for f in result.failure.failures if f.startswith(clause["name"])]
    assert f"{model_auc:.4f}" in line and f"{logistic_auc:.4f}" in line, line
    assert f"{margin:g}" in line, line
    # Registered, but without the candidate alias, and marked failed.
    assert "candidate" not in result.aliases()
    assert result.version.tags["evenflow.gate"] == "failed"
    assert clause["name"] in result.version.tags["evenflow.gate_failed"]
    assert result.run.info.status == "FAILED"
