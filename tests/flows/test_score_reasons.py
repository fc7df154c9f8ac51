"""Reasons in scoring, end to end: a champion trained with a ``reasons:`` section scores a batch."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import mlflow.pyfunc
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from evenflow.assess.reasons import IMMUTABLE, SENSITIVE, contributions
from evenflow.cli.main import app
from evenflow.config.score import ScoreParams
from evenflow.data.features import typed_features
from flows.score import score_batch
from tests.flows.conftest import TrainedChampion, trained_champion

pytestmark = pytest.mark.slow

TEXTS = {"hours-per-week": "Hours worked per week"}
FAMILIES = {"capital-": "Little or no capital income", "education": "Level of education"}
NEVER = ("sex", "race", "age", "native-country")


@pytest.fixture(scope="module")
def champion(
    tmp_path_factory: pytest.TempPathFactory, adult_sample_path: Path
) -> Iterator[TrainedChampion]:
    """Train once with reason texts and two immutable features, and make it champion."""
    with trained_champion(
        tmp_path_factory.mktemp("reasons"),
        adult_sample_path,
        reasons__texts=TEXTS,
        reasons__families=FAMILIES,
        reasons__immutable=("age", "native-country"),
        reasons__top_k=3,
    ) as trained:
        yield trained


def test_adverse_decisions_get_reasons_by_the_model_s_policy_in_any_chunking(
    champion: TrainedChampion, adult_sample_path: Path, tmp_path: Path
) -> None:
    data = tmp_path / "batch.csv"
    pd.read_csv(adult_sample_path).drop(columns=["income", "split"]).to_csv(data, index=False)
    out = tmp_path / "scores.parquet"
    result = score_batch(ScoreParams(data=data, out=out, name="adult", chunk_rows=1000))
    scored = pd.read_parquet(out)

    reasons = ["reason_1", "reason_2", "reason_3"]
    assert [c for c in scored.columns if c.startswith("reason_")] == reasons
    adverse = scored["prediction"] == 0
    assert 0.5 < adverse.mean() < 0.95
    assert scored.loc[~adverse, reasons].isna().all().all()
    assert scored.loc[adverse, "reason_1"].notna().all()
    given = set(scored[reasons].stack())
    assert not given & set(NEVER), "a sensitive or immutable feature was given as a reason"
    assert given & {*TEXTS.values(), *FAMILIES.values()}, "the configured texts were not used"
    assert "capital-gain" not in given  # its family's text stands in for it

    # The booster the pyfunc scored with is the one explained: contributions add up to its score.
    model = mlflow.pyfunc.load_model("models:/adult@champion").unwrap_python_model()
    rows = typed_features(scored, model.features)
    found = contributions(model.booster, rows, model.trainer)
    np.testing.assert_allclose(1 / (1 + np.exp(-found.margin)), scored["score"], atol=1e-5)

    # The policy is recorded: in the sidecar (logged with the run), the metadata and the params.
    policy = result.reason_policy
    assert policy["given"] is True and policy["top_k"] == 3
    assert policy["excluded"] == {
        "age": IMMUTABLE,
        "native-country": IMMUTABLE,
        "race": SENSITIVE,
        "sex": SENSITIVE,
    }
    sidecar = json.loads(result.summary_path.read_text())
    assert sidecar["reasons"] == policy
    metadata = json.loads(pq.read_schema(out).metadata[b"evenflow.scoring"])
    assert metadata["summary"]["reasons"] == policy
    run = champion.client.get_run(sidecar["mlflow_run_id"])
    assert run.data.params["reasons.top_k"] == "3"
    assert run.data.params["reasons.never_given"].startswith("age (immutable")

    # Chunking changes nothing; --no-reasons writes no reason column and says so.
    whole = tmp_path / "whole.parquet"
    score_batch(ScoreParams(data=data, out=whole, name="adult"))
    pd.testing.assert_frame_equal(pd.read_parquet(whole)[reasons], scored[reasons])
    texts = tmp_path / "texts.csv"
    cli = CliRunner().invoke(
        app, ["score", "--data", str(data), "--out", str(texts), "--model", "adult"]
    )
    assert cli.exit_code == 0, cli.output
    assert (
        "reasons: reason_1..3 for each adverse decision; never given: age, native-country, "
        "race, sex (sensitive or immutable)"
    ) in cli.output
    pd.testing.assert_frame_equal(pd.read_csv(texts)[reasons], scored[reasons].fillna(np.nan))
    plain = tmp_path / "plain.csv"
    args = ["score", "--data", str(data), "--out", str(plain), "--model", "adult", "--no-reasons"]
    cli = CliRunner().invoke(app, args)
    assert cli.exit_code == 0, cli.output
    assert "reasons: none given (turned off by --no-reasons)" in cli.output
    assert not any(c.startswith("reason_") for c in pd.read_csv(plain).columns)
