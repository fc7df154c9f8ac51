"""Reason codes: exact TreeSHAP contributions, their order, planted reasons and the policy."""

from __future__ import annotations

from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
import xgboost as xgb

from evenflow.assess.reasons import (
    IMMUTABLE,
    SENSITIVE,
    Contributions,
    ReasonPolicy,
    contributions,
    top_reasons,
)
from evenflow.config.loading import canonical_hash
from evenflow.config.run import ReasonParams, RunParams, builtin_example
from evenflow.config.score import ScoreParams
from evenflow.errors import ConfigError

DEBT_TEXT = "Debt too high relative to income"
FEATURES = ("debt_ratio", "income", "tenure", "sex", "age", "region")


def _planted(rows: int = 4_000, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Debt alone refuses everyone above 0.7 (the planted group); income decides the others."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "debt_ratio": rng.uniform(0, 1, rows),
            "income": rng.normal(0, 1, rows),
            "tenure": rng.uniform(0, 10, rows),
            "sex": rng.integers(0, 2, rows).astype(np.float64),
            "age": rng.uniform(18, 80, rows),
            "region": pd.Categorical(rng.choice(["north", "south", "east"], rows)),
        }
    )
    favourable = rng.uniform(0, 1, rows) < 1 / (1 + np.exp(-2.5 * frame["income"]))
    label = np.where(frame["debt_ratio"] > 0.7, 0, favourable.astype(int))
    return frame, label


def _xgboost(frame: pd.DataFrame, label: np.ndarray, rounds: int = 40) -> xgb.Booster:
    matrix = xgb.DMatrix(frame, label=label, enable_categorical=True)
    params = {"objective": "binary:logistic", "max_depth": 4, "eta": 0.3, "seed": 0}
    return xgb.train(params, matrix, num_boost_round=rounds)


@pytest.fixture(scope="module")
def planted() -> tuple[pd.DataFrame, np.ndarray, xgb.Booster]:
    frame, label = _planted()
    return frame, label, _xgboost(frame, label)


def _policy(**changes: object) -> ReasonPolicy:
    base = ReasonPolicy.for_model(
        FEATURES, sensitive=(), immutable=(), texts={}, families={"debt_": DEBT_TEXT}, top_k=4
    )
    return base.model_copy(update=changes)


def test_xgboost_contributions_add_up_to_the_margin_of_every_row(
    planted: tuple[pd.DataFrame, np.ndarray, xgb.Booster],
) -> None:
    frame, _, booster = planted
    found = contributions(booster, frame, "xgboost")
    margin = booster.predict(xgb.DMatrix(frame, enable_categorical=True), output_margin=True)
    assert found.values.shape == (len(frame), len(FEATURES))
    assert found.features == FEATURES
    np.testing.assert_allclose(found.margin, margin, atol=1e-4, rtol=0)
    # The margin is the score the pyfunc serves, in log-odds.
    score = booster.predict(xgb.DMatrix(frame, enable_categorical=True))
    np.testing.assert_allclose(1 / (1 + np.exp(-found.margin)), score, atol=1e-5)


def test_lightgbm_contributions_add_up_to_the_margin_of_every_row() -> None:
    frame, label = _planted(rows=2_000)
    data = lgb.Dataset(frame, label=label)
    params = {"objective": "binary", "num_leaves": 15, "verbose": -1, "seed": 0}
    booster = lgb.train(params, data, num_boost_round=30)
    found = contributions(booster, frame, "lightgbm")
    np.testing.assert_allclose(found.margin, booster.predict(frame, raw_score=True), atol=1e-4)


def test_contributions_are_the_same_whatever_the_rows_per_call(
    planted: tuple[pd.DataFrame, np.ndarray, xgb.Booster], monkeypatch: pytest.MonkeyPatch
) -> None:
    frame, _, booster = planted
    whole = contributions(booster, frame, "xgboost")
    monkeypatch.setattr("evenflow.assess.reasons.ROWS_PER_CALL", 333)
    batched = contributions(booster, frame, "xgboost")
    np.testing.assert_array_equal(whole.values, batched.values)
    np.testing.assert_array_equal(whole.bias, batched.bias)


def test_most_negative_first_ties_broken_by_name_whatever_the_column_order() -> None:
    values = np.array([[-1.0, -1.0, -2.0, 0.5, -1.0], [0.3, -0.1, 0.2, 0.0, 0.4]])
    names = ("b", "a", "c", "d", "e")
    policy = ReasonPolicy(top_k=4)
    given = top_reasons(Contributions(names, values, np.zeros(2)), np.array([1, 1]), policy)
    assert given.iloc[0].tolist() == ["c", "a", "b", "e"]
    # Only features that pushed toward refusal are reasons: the second row has one.
    assert given.iloc[1].tolist() == ["a", None, None, None]
    shuffled = [4, 2, 0, 3, 1]
    again = top_reasons(
        Contributions(tuple(names[i] for i in shuffled), values[:, shuffled], np.zeros(2)),
        np.array([1, 1]),
        policy,
    )
    pd.testing.assert_frame_equal(given, again)
    # Where the positive prediction is the adverse one, the most positive contributions lead.
    flipped = top_reasons(
        Contributions(names, values, np.zeros(2)),
        np.array([1, 1]),
        policy.model_copy(update={"adverse_prediction": 1}),
    )
    assert flipped.iloc[0].tolist() == ["d", None, None, None]
    assert flipped.iloc[1].tolist() == ["e", "b", "c", None]
    # A favourable decision gets no reason at all.
    favourable = top_reasons(Contributions(names, values, np.zeros(2)), np.array([0, 0]), policy)
    assert favourable.isna().all().all()


def test_a_feature_that_alone_decides_the_planted_refusals_comes_first(
    planted: tuple[pd.DataFrame, np.ndarray, xgb.Booster],
) -> None:
    frame, _, booster = planted
    decided = booster.predict(xgb.DMatrix(frame, enable_categorical=True)) >= 0.5
    found = contributions(booster, frame, "xgboost")
    given = top_reasons(found, ~decided, _policy())
    group = (frame["debt_ratio"] > 0.75).to_numpy() & ~decided
    assert group.sum() > 500
    assert (given.loc[group, "reason_1"] == DEBT_TEXT).all()
    # Outside the planted group, refusals are income's doing: debt is not their first reason.
    others = (frame["debt_ratio"] < 0.6).to_numpy() & ~decided
    assert (given.loc[others, "reason_1"] == "income").mean() > 0.9
    assert given.loc[decided].isna().all().all()


def test_sensitive_and_immutable_features_are_never_reasons_even_when_they_decide() -> None:
    frame, _ = _planted(seed=1)
    label = ((frame["sex"] == 1) & (frame["age"] < 60) & (frame["income"] > -1)).astype(int)
    booster = _xgboost(frame, label.to_numpy())
    refused = booster.predict(xgb.DMatrix(frame, enable_categorical=True)) < 0.5
    found = contributions(booster, frame, "xgboost")
    unguarded = top_reasons(found, refused, _policy())
    # They decide most refusals: unguarded, one of them is the first reason of most.
    assert unguarded.loc[refused, "reason_1"].isin(["sex", "age"]).mean() > 0.8

    policy = ReasonPolicy.for_model(
        FEATURES, sensitive=("sex",), immutable=("age", "sex"), texts={}, top_k=4
    )
    assert policy.excluded == {"age": IMMUTABLE, "sex": SENSITIVE}
    given = top_reasons(found, refused, policy)
    assert not given.isin(["sex", "age"]).any().any()
    assert given.loc[refused, "reason_1"].notna().mean() > 0.5  # the next feature is given


def test_reason_texts_exact_then_longest_family_then_the_name() -> None:
    policy = ReasonPolicy(
        top_k=2,
        texts={"hours": "Hours worked", "capital_loss": "Losses"},
        families={"capital_": "Capital", "capital_l": "Capital l", "hours_": "Hours"},
    )
    assert policy.text("hours") == "Hours worked"
    assert policy.text("hours_per_week") == "Hours"
    assert policy.text("capital_gain") == "Capital"
    assert policy.text("capital_loss") == "Losses"
    assert policy.text("capital_lent") == "Capital l"
    assert policy.text("tenure") == "tenure"


def test_the_reasons_section_is_bounded_and_leaves_old_hashes_alone(tmp_path: Path) -> None:
    params = builtin_example()
    assert "reasons" not in params.recorded()
    assert params.reasons == ReasonParams(top_k=4)
    with_reasons = params.with_overrides({"reasons": {"immutable": "age", "texts": {"age": "x"}}})
    assert with_reasons.recorded()["reasons"]["immutable"] == ["age"]
    assert with_reasons.params_hash() != params.params_hash()
    for bad in (
        {"top_k": 0},
        {"top_k": 21},
        {"texts": {"age": ""}},
        {"texts": {"a": "x" * 201}},
        {"families": {"capital_*": "x"}},  # not a name MLflow takes for the logged parameter
    ):
        with pytest.raises(ConfigError):
            params.with_overrides({"reasons": bad})
    # A run logged before the section existed loads as the default and keeps its hash.
    assert RunParams.from_mapping(params.recorded()).params_hash() == params.params_hash()

    score = ScoreParams(data=tmp_path / "x.csv", out=tmp_path / "y.parquet", model="m")
    assert score.params_hash() == canonical_hash({"name": "m", "model": "m", "alias": "champion"})
    assert score.model_copy(update={"reasons": False}).params_hash() != score.params_hash()
