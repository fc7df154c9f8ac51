"""Mitigations: reweighing algebra, per-group threshold policies against Fairlearn, reductions,
and the trade-off table, on synthetic data with a planted base-rate gap (Male 0.31, Female 0.11)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from fairlearn.metrics import demographic_parity_difference, equalized_odds_difference
from pydantic import ValidationError
from sklearn.metrics import accuracy_score, precision_score, recall_score

from evenflow.assess.mitigation import (
    AUC_DECISIONS_ONLY,
    GroupThreshold,
    ThresholdPolicy,
    ThresholdRule,
    compare_mitigations,
    dpd_column,
    eod_column,
    fit_threshold_optimizer,
    fit_threshold_policy,
    group_column,
    with_decisions,
)
from evenflow.assess.predictions import DECISION_COLUMN, MISSING
from evenflow.assess.reductions import ReductionsModel, fit_reductions
from evenflow.assess.reweighing import (
    cell_counts,
    group_keys,
    reweighing_table,
    reweighing_weights,
    weights_for,
)
from evenflow.config.fairness import FairnessParams
from evenflow.config.mitigation import MitigationParams
from evenflow.config.run import ModelParams
from evenflow.data.features import typed_features
from evenflow.data.synth import make_planted
from evenflow.errors import ConfigError
from evenflow.records import FeatureSpec
from evenflow.reports.mitigation_html import write_tradeoff

SENSITIVE = ["sex", "race"]
THRESHOLD = 0.5
NUMERIC = ("age", "education-num", "capital-gain", "hours-per-week")
CATEGORICAL = ("workclass", "education", "marital-status", "occupation", "sex", "race")
SMALL_MODEL = ModelParams(learning_rate=0.3, max_depth=3, subsample=1.0, colsample_bytree=1.0)
REDUCTIONS = MitigationParams(
    method="reductions",
    reductions_max_rows=800,
    reductions_max_iter=10,
    reductions_n_estimators=20,
)


@pytest.fixture(scope="module")
def planted() -> pd.DataFrame:
    """12,000 calibrated rows (score = true probability) with a planted sex base-rate gap."""
    frame, _ = make_planted(12_000, seed=5)
    return frame


@pytest.fixture(scope="module")
def valid(planted: pd.DataFrame) -> pd.DataFrame:
    return planted.iloc[:6_000].reset_index(drop=True)


@pytest.fixture(scope="module")
def test_split(planted: pd.DataFrame) -> pd.DataFrame:
    return planted.iloc[6_000:].reset_index(drop=True)


@pytest.fixture(scope="module")
def features(planted: pd.DataFrame) -> list[FeatureSpec]:
    numeric = [FeatureSpec(name=c, kind="numeric") for c in NUMERIC]
    categorical = [
        FeatureSpec(name=c, kind="categorical", categories=tuple(sorted(planted[c].unique())))
        for c in CATEGORICAL
    ]
    return numeric + categorical


def _dpd(labels: object, decisions: object, groups: object) -> float:
    return float(demographic_parity_difference(labels, decisions, sensitive_features=groups))


def _expected_dpd(probability: np.ndarray, groups: pd.Series) -> float:
    """Gap in expected selection rate (mean P(decision = 1) per group): no sampling noise."""
    means = pd.Series(probability).groupby(groups.to_numpy()).mean()
    return float(means.max() - means.min())


# --- parameters -----------------------------------------------------------------------------


def test_params_validate_what_fairlearn_supports() -> None:
    assert MitigationParams().method == "none"
    MitigationParams(method="threshold", constraint="false_negative_rate_parity")
    MitigationParams(method="reductions", constraint="error_rate_parity")
    with pytest.raises(ValidationError, match="not supported by reductions"):
        MitigationParams(method="reductions", constraint="false_negative_rate_parity")
    with pytest.raises(ValidationError, match="not supported by threshold"):
        MitigationParams(method="threshold", constraint="error_rate_parity")
    with pytest.raises(ValidationError, match="equalized_odds"):
        MitigationParams(
            method="threshold", constraint="equalized_odds", objective="selection_rate"
        )
    with pytest.raises(ValidationError, match="extra"):
        MitigationParams.model_validate({"method": "none", "unknown": 1})
    with pytest.raises(ValidationError):
        MitigationParams(reductions_eps=0.0)


def test_fields_have_descriptions() -> None:
    assert all(field.description for field in MitigationParams.model_fields.values())


# --- reweighing -----------------------------------------------------------------------------


def test_reweighing_equalises_label_rate_and_keeps_total(planted: pd.DataFrame) -> None:
    race = planted["race"].astype(object).copy()
    race.iloc[:40] = None  # a (missing) group, as the fairness report names it
    for groups in (planted["sex"], race):
        table = reweighing_weights(planted["label"], groups)
        weights = weights_for(planted["label"], groups, table)
        keys = group_keys(groups)
        weighted_rate = (
            pd.Series(weights * planted["label"].to_numpy()).groupby(keys).sum()
            / pd.Series(weights).groupby(keys).sum()
        )
        np.testing.assert_allclose(weighted_rate, planted["label"].mean(), rtol=1e-12)
        assert weights.sum() == pytest.approx(len(planted), rel=1e-12)
        counts = cell_counts(planted["label"], groups)
        assert sum(table[c] * n for c, n in counts.items()) == pytest.approx(
            len(planted), rel=1e-12
        )
    assert (MISSING, 0) in reweighing_weights(planted["label"], race)


def test_reweighing_closed_form_and_shard_counts_add_up() -> None:
    labels = np.array([1, 0, 0, 0, 1, 1])
    groups = np.array(["a", "a", "a", "b", "b", "b"])
    table = reweighing_weights(labels, groups)
    # P(a) = 1/2, P(y=1) = 1/2, P(a, 1) = 1/6  ->  w = (1/2)(1/2)/(1/6) = 1.5
    assert table[("a", 1)] == pytest.approx(1.5)
    assert table[("a", 0)] == pytest.approx(0.75)
    shards = [cell_counts(labels[:4], groups[:4]), cell_counts(labels[4:], groups[4:])]
    summed: dict[tuple[str, int], int] = {}
    for shard in shards:
        for key, n in shard.items():
            summed[key] = summed.get(key, 0) + n
    assert reweighing_table(summed) == table


def test_weights_for_unknown_cells_is_one() -> None:
    table = {("a", 1): 2.0, ("a", 0): 0.5}
    weights = weights_for([1, 0, 1, 0], ["a", "a", "b", None], table)
    np.testing.assert_array_equal(weights, [2.0, 0.5, 1.0, 1.0])
    assert weights.dtype == np.float64


# --- per-group thresholds -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("constraint", "objective", "column"),
    [
        ("demographic_parity", "accuracy_score", "sex"),
        ("equalized_odds", "balanced_accuracy_score", "race"),
        ("true_positive_rate_parity", "accuracy_score", "race"),
    ],
)
def test_policy_reproduces_fairlearn_exactly(
    valid: pd.DataFrame, test_split: pd.DataFrame, constraint: str, objective: str, column: str
) -> None:
    params = MitigationParams.model_validate(
        {
            "method": "threshold",
            "constraint": constraint,
            "objective": objective,
            "sensitive_column": column,
        }
    )
    policy = fit_threshold_policy(valid, SENSITIVE, params)
    optimizer = fit_threshold_optimizer(valid["score"], valid["label"], valid[column], params)
    x_test = test_split[["score"]].to_numpy()
    groups = group_keys(test_split[column])
    expected_pmf = optimizer._pmf_predict(x_test, sensitive_features=groups)[:, 1]
    assert np.array_equal(
        policy.positive_probability(test_split["score"], test_split[column]), expected_pmf
    )
    for seed in (0, 7):
        expected = optimizer.predict(x_test, sensitive_features=groups, random_state=seed)
        decided = policy.decide(test_split["score"], test_split[column], seed)
        assert np.array_equal(decided, expected)
        assert decided.dtype == np.int64
    restored = ThresholdPolicy.from_json(policy.to_json())
    assert restored == policy
    assert restored.fingerprint() == policy.fingerprint()
    assert np.array_equal(
        restored.decide(test_split["score"], test_split[column], 3),
        policy.decide(test_split["score"], test_split[column], 3),
    )


def test_policy_json_keeps_infinite_thresholds_and_is_strict_json() -> None:
    always = ThresholdRule(operator=">", threshold=-math.inf)
    policy = ThresholdPolicy(
        sensitive_column="sex",
        constraint="demographic_parity",
        objective="accuracy_score",
        default_threshold=0.5,
        groups={
            "F": GroupThreshold(
                p0=0.25, rule0=always, p1=0.75, rule1=ThresholdRule(operator=">", threshold=0.3)
            )
        },
        n_fit_rows=10,
        fairlearn_version="0.15.0",
    )
    text = policy.to_json()
    json.loads(text, parse_constant=lambda name: pytest.fail(f"non-JSON constant {name}"))
    restored = ThresholdPolicy.from_json(text)
    assert restored.groups["F"].rule0.threshold == -math.inf
    probability = restored.positive_probability([0.1, 0.5], ["F", "F"])
    np.testing.assert_array_equal(probability, [0.25, 1.0])


def test_unknown_and_single_label_groups_use_default_threshold(valid: pd.DataFrame) -> None:
    frame = valid.copy()
    frame.loc[frame.index[:30], "race"] = "Solo"
    frame.loc[frame.index[:30], "label"] = 0  # one label only: Fairlearn cannot fit it
    params = MitigationParams(method="threshold", sensitive_column="race")
    policy = fit_threshold_policy(frame, SENSITIVE, params, default_threshold=0.4)
    assert policy.unfitted_groups == ("Solo",)
    assert "Solo" not in policy.groups
    scores = np.array([0.39, 0.41, 0.39, 0.41])
    groups = ["Solo", "Solo", "Never-seen", None]
    np.testing.assert_array_equal(policy.decide(scores, groups, seed=0), [0, 1, 0, 1])


def test_demographic_parity_thresholds_reduce_held_out_dpd(
    valid: pd.DataFrame, test_split: pd.DataFrame
) -> None:
    params = MitigationParams(method="threshold", constraint="demographic_parity")
    policy = fit_threshold_policy(valid, SENSITIVE, params)
    labels, sex = test_split["label"], test_split["sex"]
    before = _dpd(labels, test_split["score"] >= THRESHOLD, sex)
    after = _dpd(labels, policy.decide(test_split["score"], sex, seed=0), sex)
    expected_after = _expected_dpd(policy.positive_probability(test_split["score"], sex), sex)
    assert before > 0.15  # the planted gap shows through a single threshold
    assert after < before - 0.08
    assert expected_after < before - 0.08


# --- reductions -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def reductions(planted: pd.DataFrame, features: list[FeatureSpec]) -> ReductionsModel:
    return fit_reductions(planted.iloc[:1_500], features, SENSITIVE, REDUCTIONS, SMALL_MODEL)


def _unconstrained(
    train: pd.DataFrame, features: list[FeatureSpec], rows: int
) -> xgb.XGBClassifier:
    """The same inner model without the constraint, on the same sampled rows."""
    picked = np.sort(np.random.default_rng(REDUCTIONS.seed).choice(len(train), rows, replace=False))
    sample = train.iloc[picked]
    model = xgb.XGBClassifier(
        n_estimators=REDUCTIONS.reductions_n_estimators,
        tree_method="hist",
        enable_categorical=True,
        learning_rate=SMALL_MODEL.learning_rate,
        max_depth=SMALL_MODEL.max_depth,
        random_state=SMALL_MODEL.seed,
        n_jobs=1,
    )
    return model.fit(typed_features(sample, features), sample["label"])


def test_reductions_lowers_dpd_against_unconstrained_xgboost(
    reductions: ReductionsModel,
    planted: pd.DataFrame,
    test_split: pd.DataFrame,
    features: list[FeatureSpec],
) -> None:
    baseline = _unconstrained(planted.iloc[:1_500], features, REDUCTIONS.reductions_max_rows)
    base_score = baseline.predict_proba(typed_features(test_split, features))[:, 1]
    labels, sex = test_split["label"], test_split["sex"]
    before = _dpd(labels, base_score >= THRESHOLD, sex)
    score = reductions.score(test_split)
    assert score.dtype == np.float64
    assert ((score >= 0) & (score <= 1)).all()
    assert _expected_dpd(score, sex) < before - 0.08
    assert _dpd(labels, reductions.decide(test_split, seed=0), sex) < before - 0.08
    assert reductions.summary()["n_rows"] == REDUCTIONS.reductions_max_rows


def test_reductions_decide_matches_fairlearn_predict(
    reductions: ReductionsModel, test_split: pd.DataFrame, features: list[FeatureSpec]
) -> None:
    x = typed_features(test_split, features)
    expected = reductions.mitigator.predict(x, random_state=11)
    assert np.array_equal(reductions.decide(test_split, seed=11), expected)


def test_reductions_rejects_unsupported_constraint(
    planted: pd.DataFrame, features: list[FeatureSpec]
) -> None:
    params = MitigationParams(method="threshold", constraint="false_negative_rate_parity")
    with pytest.raises(ConfigError, match="not supported by reductions"):
        fit_reductions(planted.iloc[:200], features, SENSITIVE, params)


# --- trade-off table ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tradeoff(
    valid: pd.DataFrame, test_split: pd.DataFrame, reductions: ReductionsModel
) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    policy = fit_threshold_policy(valid, SENSITIVE, MitigationParams(method="threshold"))
    results = {
        "none": test_split,
        "threshold": with_decisions(test_split, policy, seed=0),
        "reductions": test_split.assign(
            score=reductions.score(test_split), decision=reductions.decide(test_split, seed=0)
        ),
    }
    table = compare_mitigations(results, SENSITIVE, FairnessParams(n_bootstrap=200), THRESHOLD)
    return table, results


def test_tradeoff_table_has_one_row_per_method(
    tradeoff: tuple[pd.DataFrame, dict[str, pd.DataFrame]],
) -> None:
    table, _ = tradeoff
    assert list(table["method"]) == ["none", "threshold", "reductions"]
    for column in SENSITIVE:
        for name in (dpd_column, eod_column):
            for part in ("", "_low", "_high"):
                assert name(column, part) in table.columns
    assert {"accuracy", "accuracy_low", "accuracy_high", "auc", "auc_note"} <= set(table.columns)
    assert group_column("precision", "sex", "Female") in table.columns
    assert group_column("recall", "race", "White") in table.columns
    assert np.isfinite(table["accuracy"]).all()
    assert np.isfinite(table[dpd_column("sex", "_low")]).all()
    none, threshold, _ = table.to_dict(orient="records")
    assert 0.5 < none["auc"] < 1.0
    assert math.isnan(threshold["auc"])
    assert threshold["auc_note"] == AUC_DECISIONS_ONLY
    assert threshold[dpd_column("sex")] < none[dpd_column("sex")] - 0.08


def test_tradeoff_decision_rows_match_direct_computation(
    tradeoff: tuple[pd.DataFrame, dict[str, pd.DataFrame]],
) -> None:
    table, results = tradeoff
    for row in table.to_dict(orient="records"):
        frame = results[row["method"]]
        if DECISION_COLUMN in frame.columns:
            decided = frame[DECISION_COLUMN].to_numpy()
        else:
            decided = (frame["score"] >= THRESHOLD).astype(int).to_numpy()
        labels, sex = frame["label"], frame["sex"]
        assert row["accuracy"] == pytest.approx(accuracy_score(labels, decided), abs=1e-12)
        assert row[dpd_column("sex")] == pytest.approx(_dpd(labels, decided, sex), abs=1e-12)
        eod = equalized_odds_difference(labels, decided, sensitive_features=sex)
        assert row[eod_column("sex")] == pytest.approx(eod, abs=1e-12)
        female = (sex == "Female").to_numpy()
        assert row[group_column("recall", "sex", "Female")] == pytest.approx(
            recall_score(labels[female], decided[female]), abs=1e-12
        )
        assert row[group_column("precision", "sex", "Female")] == pytest.approx(
            precision_score(labels[female], decided[female]), abs=1e-12
        )
        assert row["accuracy_low"] <= row["accuracy"] <= row["accuracy_high"]


def test_write_tradeoff_files(
    tradeoff: tuple[pd.DataFrame, dict[str, pd.DataFrame]], tmp_path: Path
) -> None:
    table, _ = tradeoff
    files = write_tradeoff(table, tmp_path / "mitigations")
    payload = json.loads(
        files.json_path.read_text(),
        parse_constant=lambda name: pytest.fail(f"non-JSON constant {name}"),
    )
    assert payload["sensitive"] == SENSITIVE
    assert [row["method"] for row in payload["rows"]] == ["none", "threshold", "reductions"]
    assert payload["rows"][1]["auc"] is None
    page = files.html_path.read_text()
    assert "data:image/png;base64," in page
    assert all(method in page for method in ("none", "threshold", "reductions"))
    assert files.png_path.read_bytes().startswith(b"\x89PNG")
    assert not list(files.json_path.parent.glob(".*.tmp"))
