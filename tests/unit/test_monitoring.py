"""The monitoring core on real frames: planted drift is found, an undrifted resample is not."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from evenflow.assess import evaluation
from evenflow.assess.fairness import fairness_report
from evenflow.assess.monitoring import DriftResult, assess_drift, drift_breaches
from evenflow.config.fairness import FairnessParams
from evenflow.config.monitor import DriftPolicy, MonitorParams
from evenflow.config.run import EvalParams, builtin_example
from evenflow.contracts import suite as contracts
from evenflow.data.features import feature_specs
from evenflow.errors import ConfigError, DataError
from evenflow.govern.monitoring import ChampionEvaluation, MonitoredModel
from evenflow.records import FeatureSpec
from evenflow.reports.monitoring_html import render_monitoring_html
from evenflow.usecases.monitor import assess_performance, monitoring_suite
from tests.monitoring_inputs import plant_adult_drift, unregistered_model

BATCH_ROWS = 48_842  # the size of the built-in example


@pytest.fixture(scope="module")
def features(adult_frame: pd.DataFrame) -> tuple[FeatureSpec, ...]:
    return feature_specs(adult_frame, builtin_example().dataset)


@pytest.fixture(scope="module")
def reference(adult_frame: pd.DataFrame) -> pd.DataFrame:
    """Adult's train split: what a model would have been trained on."""
    return adult_frame[adult_frame["split"] == "train"].reset_index(drop=True)


@pytest.fixture(scope="module")
def undrifted(adult_frame: pd.DataFrame) -> pd.DataFrame:
    """Adult's test split (rows the reference never saw) resampled to 48,842 rows."""
    test = adult_frame[adult_frame["split"] == "test"]
    return test.sample(n=BATCH_ROWS, replace=True, random_state=11).reset_index(drop=True)


@pytest.fixture(scope="module")
def drifted(undrifted: pd.DataFrame) -> pd.DataFrame:
    """The same batch with two planted changes: older people, and a new employer mix."""
    return plant_adult_drift(undrifted)


def _scorer(frame: pd.DataFrame) -> np.ndarray:
    """A fixed logistic score of hours and education: it does not read age or workclass."""
    z = 0.08 * (frame["hours-per-week"].to_numpy() - 40) + 0.5 * (
        frame["education-num"].to_numpy() - 10
    )
    return np.asarray(1.0 / (1.0 + np.exp(-z)), dtype=np.float64)


def test_planted_drift_in_two_columns_flags_exactly_those(
    reference: pd.DataFrame,
    drifted: pd.DataFrame,
    features: tuple[FeatureSpec, ...],
    tmp_path: Path,
) -> None:
    policy = DriftPolicy()

    result = assess_drift(reference, drifted, features, policy, tmp_path, scorer=_scorer)

    assert result.drifted_columns == ("age", "workclass")
    checks = {c.column: c for c in result.columns}
    assert len(checks) == len(features) == 14
    assert (checks["age"].statistic, checks["age"].threshold) == ("wasserstein", 0.1)
    assert (checks["workclass"].statistic, checks["workclass"].threshold) == ("psi", 0.2)
    assert checks["age"].value > 0.5  # ten years is ~0.74 reference standard deviations
    assert checks["workclass"].value > 1.0
    for column, check in checks.items():
        expected = "wasserstein" if check.kind == "numeric" else "psi"
        assert check.statistic == expected, column
        if column not in {"age", "workclass"}:
            assert check.value < check.threshold / 2, check
    assert result.drifted_share == pytest.approx(2 / 14)
    assert not result.prediction.drifted  # the score reads neither drifted column
    assert (result.rows_batch, result.rows_reference) == (BATCH_ROWS, len(reference))
    assert result.evidently_html.is_file() and result.evidently_json.is_file()
    [breach] = drift_breaches(result)
    assert "2 of 14 columns drifted" in breach
    assert "age: wasserstein" in breach and ">= 0.1" in breach
    assert "workclass: psi" in breach and ">= 0.2" in breach


def test_undrifted_resample_flags_nothing(
    reference: pd.DataFrame,
    undrifted: pd.DataFrame,
    features: tuple[FeatureSpec, ...],
    tmp_path: Path,
) -> None:
    result = assess_drift(reference, undrifted, features, DriftPolicy(), tmp_path, scorer=_scorer)

    assert result.drifted_columns == ()
    assert not result.prediction.drifted
    assert result.prediction.statistic == "psi"
    assert all(c.value < c.threshold for c in result.columns)
    assert drift_breaches(result) == []


def test_wasserstein_agrees_with_scipy_and_prediction_drift_follows_the_scores(
    reference: pd.DataFrame,
    drifted: pd.DataFrame,
    features: tuple[FeatureSpec, ...],
    tmp_path: Path,
) -> None:
    from scipy.stats import wasserstein_distance

    def age_scorer(frame: pd.DataFrame) -> np.ndarray:
        return np.asarray(np.clip((frame["age"].to_numpy() - 17) / 80, 0, 1), dtype=np.float64)

    policy = DriftPolicy(max_rows=5_000, seed=4, prediction_statistic="wasserstein")
    result = assess_drift(reference, drifted, features, policy, tmp_path, scorer=age_scorer)

    assert (result.rows_batch, result.rows_reference) == (5_000, 5_000)
    assert result.sampled
    assert result.prediction.drifted  # the score now reads age, which moved
    assert result.mean_score_batch > result.mean_score_reference
    assert result.prediction.statistic == "wasserstein"
    full = DriftPolicy(max_rows=None)
    exact = assess_drift(reference, drifted, features, full, tmp_path / "all", scorer=_scorer)
    age = next(c for c in exact.columns if c.column == "age")
    expected = wasserstein_distance(reference["age"], drifted["age"]) / np.std(reference["age"])
    assert age.value == pytest.approx(expected, rel=1e-9)


def test_policy_thresholds_decide_and_the_share_limit_applies(
    reference: pd.DataFrame,
    drifted: pd.DataFrame,
    features: tuple[FeatureSpec, ...],
    tmp_path: Path,
) -> None:
    lenient = DriftPolicy(column_thresholds={"age": 5.0}, max_drifted_share=0.1)

    result = assess_drift(reference, drifted, features, lenient, tmp_path, scorer=_scorer)

    assert result.drifted_columns == ("workclass",)
    assert drift_breaches(result) == []  # 1 of 14 is within a share of 0.1
    strict = result.model_copy(update={"max_drifted_share": 0.0})
    assert "workclass: psi" in drift_breaches(strict)[0]
    js = DriftPolicy(categorical_statistic="jensenshannon", numeric_statistic="psi")
    other = assess_drift(reference, drifted, features, js, tmp_path / "js", scorer=_scorer)
    kinds = {c.column: (c.statistic, c.threshold) for c in other.columns}
    assert kinds["workclass"] == ("jensenshannon", 0.1)
    assert kinds["age"] == ("psi", 0.2)
    assert set(other.drifted_columns) == {"age", "workclass"}


def test_missing_feature_in_the_batch_is_named(
    reference: pd.DataFrame,
    undrifted: pd.DataFrame,
    features: tuple[FeatureSpec, ...],
    tmp_path: Path,
) -> None:
    with pytest.raises(DataError, match="hours-per-week"):
        assess_drift(
            reference,
            undrifted.drop(columns=["hours-per-week"]),
            features,
            DriftPolicy(),
            tmp_path,
            scorer=_scorer,
        )


def test_label_expectations_are_skipped_when_the_label_is_absent(
    adult_frame: pd.DataFrame,
) -> None:
    suite = contracts.infer_suite(adult_frame, builtin_example().dataset)
    present = [c for c in adult_frame.columns if c not in {"income", "split"}]

    adjusted, skipped = monitoring_suite(suite, present, ("income", "split"))

    columns = {e["kwargs"].get("column") for e in adjusted["expectations"]}
    assert "income" not in columns and "split" not in columns
    [column_set] = [
        e for e in adjusted["expectations"] if e["type"] == "expect_table_columns_to_match_set"
    ]
    assert sorted(column_set["kwargs"]["column_set"]) == sorted(present)
    assert any("expect_column_values_to_be_in_set on column 'income'" in s for s in skipped)
    assert len(adjusted["expectations"]) + sum("column absent" in s for s in skipped) == len(
        suite["expectations"]
    )
    unchanged, none = monitoring_suite(suite, list(adult_frame.columns), ("income", "split"))
    assert unchanged["expectations"] == suite["expectations"] and none == ()


def _model(features: tuple[FeatureSpec, ...]) -> MonitoredModel:
    return unregistered_model(builtin_example().dataset, features, FairnessParams(n_bootstrap=50))


def test_performance_deltas_match_a_direct_computation(
    undrifted: pd.DataFrame, features: tuple[FeatureSpec, ...], tmp_path: Path
) -> None:
    model = _model(features)
    batch = undrifted.head(8_000)
    label = (batch["income"] == ">50K").astype(int).to_numpy()
    score = _scorer(batch)
    # The "champion's" evaluation: the same scorer on other rows, as its run would have logged it.
    other = undrifted.tail(8_000)
    champion_predictions = pd.DataFrame(
        {
            "label": (other["income"] == ">50K").astype(int).to_numpy(),
            "score": _scorer(other),
            "sex": other["sex"].to_numpy(),
            "race": other["race"].to_numpy(),
        }
    )
    metrics, _, groups = evaluation.evaluate(
        champion_predictions, ("sex", "race"), EvalParams(), model.fairness
    )
    champion = ChampionEvaluation(
        metrics={"metrics": evaluation.json_safe(metrics)},
        groups=evaluation.groups_to_records(groups),
        fairness=fairness_report(champion_predictions, ("sex", "race"), model.fairness).model_dump(
            mode="json"
        ),
    )

    result = assess_performance(batch, model, champion, tmp_path, scorer=_scorer)

    auc = next(m for m in result.metrics if m.name == "roc_auc")
    direct = evaluation.binary_metrics(label, score, 0.5)
    assert auc.value == pytest.approx(direct["roc_auc"])
    assert auc.difference == pytest.approx(direct["roc_auc"] - metrics["roc_auc"])
    women = next(g for g in result.groups if (g.column, g.group) == ("sex", "Female"))
    tpr = next(m for m in women.metrics if m.name == "tpr")
    female = (batch["sex"] == "Female").to_numpy()
    expected_tpr = ((score >= 0.5) & (label == 1) & female).sum() / ((label == 1) & female).sum()
    assert tpr.value == pytest.approx(expected_tpr)
    assert tpr.value is not None and tpr.champion is not None
    assert tpr.difference == pytest.approx(tpr.value - tpr.champion)
    dpd = next(
        s
        for s in result.fairness
        if (s.slice, s.summary) == ("sex", "demographic_parity_difference")
    )
    assert dpd.value is not None and dpd.champion is not None
    assert dpd.difference == pytest.approx(dpd.value - dpd.champion)
    assert result.fairness_html.is_file() and result.missing == ()
    # The batch's headline metrics carry their bootstrap interval, as the evaluation's do.
    assert auc.low is not None and auc.high is not None and auc.value is not None
    assert auc.low <= auc.value <= auc.high
    # One rule for small groups on both sides: a private group has its n and nothing else.
    by_key = {(g.column, g.group): g for g in result.groups}
    assert women.status == "reported" and women.champion_status == "reported"
    for group in result.groups:
        if group.status == "private":
            assert all(m.value is None for m in group.metrics), group.group
    assert all(g.status in {"private", "insufficient", "reported", None} for g in by_key.values())


def test_retired_keys_of_older_runs_are_dropped_when_a_model_is_monitored() -> None:
    from evenflow.usecases.monitor import without_retired_keys

    doc = builtin_example().model_dump(mode="json")
    old = {
        **doc,
        "evaluation": {**doc["evaluation"], "min_group_size": 30},
        "gates": {**doc["gates"], "min_group_positives": 20},
    }
    cleaned = without_retired_keys(old)
    assert "min_group_size" not in cleaned["evaluation"]
    assert "min_group_positives" not in cleaned["gates"]
    assert old["evaluation"]["min_group_size"] == 30  # the logged document is not changed


def test_monitor_params_are_validated_and_load_from_yaml(tmp_path: Path) -> None:
    config = tmp_path / "monitor.yaml"
    config.write_text(
        "dataset: adult\ndata: batch.csv\ndrift:\n  max_drifted_share: 0.2\n"
        "  thresholds: {psi: 0.25}\nretrain: true\nretrain_config: train.yaml\n"
    )

    params = MonitorParams.from_yaml(config)

    assert params.data == (tmp_path / "batch.csv").resolve()
    assert params.retrain_config == (tmp_path / "train.yaml").resolve()
    assert params.drift.thresholds.psi == 0.25 and params.drift.threshold("x", "psi") == 0.25
    assert params.model_name == "adult" and params.alias == "champion"
    with pytest.raises(ConfigError, match="unknown key 'drift.max_share'"):
        MonitorParams.from_mapping({"dataset": "a", "data": "b", "drift": {"max_share": 1}})
    with pytest.raises(ConfigError, match="retrain needs retrain_config"):
        MonitorParams.from_mapping({"dataset": "a", "data": "b", "retrain": True})
    with pytest.raises(ConfigError, match="max_drifted_share"):
        MonitorParams.from_mapping({"dataset": "a", "data": "b", "drift": {"max_drifted_share": 2}})


def test_html_report_is_self_contained_and_names_the_breach(
    reference: pd.DataFrame,
    drifted: pd.DataFrame,
    features: tuple[FeatureSpec, ...],
    tmp_path: Path,
) -> None:
    from evenflow.govern.monitoring import MonitoringReport
    from evenflow.records import RawBatch

    policy = DriftPolicy(max_rows=5_000)
    result: DriftResult = assess_drift(
        reference, drifted, features, policy, tmp_path, scorer=_scorer
    )
    report = MonitoringReport(
        dataset="adult",
        model=_model(features),
        batch=RawBatch(dataset="adult", path=tmp_path / "b.csv", md5="m", n_rows=5, columns=()),
        labelled=False,
        policy=policy,
        drift=result,
        performance=None,
        passed=False,
        breaches=tuple(drift_breaches(result)),
    )

    page = render_monitoring_html(report)

    assert "Drift beyond the policy" in page and "workclass: psi" in page
    assert "<script" not in page and "http" not in page
