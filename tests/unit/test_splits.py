"""Splits that never look at the label: duplicates, groups and time keep rows together; folds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from sklearn.metrics import roc_auc_score

from evenflow.config.run import DatasetSpec, EvalParams, ShardParams, SplitParams
from evenflow.data.features import feature_specs
from evenflow.data.sharding import (
    ROW_ID,
    assign_folds,
    assign_splits,
    plan_split,
    time_cuts,
    write_shard_chunks,
)
from evenflow.errors import DataError

SPEC = DatasetSpec(
    name="planted",
    path=Path("unused.csv"),
    target="y",
    positive_label="1",
    sensitive=("group",),
)
FEATURES = ["x1", "x2", "x3", "group"]


def planted(n_rows: int, seed: int = 0) -> pd.DataFrame:
    """Continuous features with a known logistic signal and a 3-level sensitive column."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "x1": rng.normal(size=n_rows).round(3),
            "x2": rng.normal(size=n_rows).round(3),
            "x3": rng.uniform(size=n_rows).round(3),
            "group": rng.choice(["a", "b", "c"], size=n_rows, p=[0.6, 0.3, 0.1]),
        }
    )
    logit = 1.2 * frame["x1"] - 0.8 * frame["x2"] + 0.5 * (frame["group"] == "b")
    frame["y"] = (rng.uniform(size=n_rows) < 1 / (1 + np.exp(-logit))).astype(int)
    return frame


def with_copies(frame: pd.DataFrame, seed: int = 1) -> pd.DataFrame:
    """Half the rows are exact copies (features and label) of the other half, shuffled in."""
    copies = frame.sample(frac=1.0, random_state=seed)
    return pd.concat([frame, copies], ignore_index=True).sample(frac=1.0, random_state=seed)


def _feature_keys(frame: pd.DataFrame) -> pd.Series:
    return frame[FEATURES].astype(str).agg("|".join, axis=1)


def test_identical_features_share_a_split_whatever_their_labels() -> None:
    frame = planted(2000)
    flipped = frame.assign(y=1 - frame["y"])
    both = pd.concat([frame, flipped], ignore_index=True)
    splits = assign_splits(both, SPEC, SplitParams())
    assert (splits[:2000] == splits[2000:]).all()


def test_planted_duplicates_never_straddle_splits_and_the_model_matches_a_random_split() -> None:
    table = with_copies(planted(6000)).reset_index(drop=True)
    splits = assign_splits(table, SPEC, SplitParams())
    keys = _feature_keys(table)
    splits_per_vector = pd.Series(splits).groupby(keys.to_numpy()).nunique()
    assert splits_per_vector.max() == 1  # no feature vector in two splits

    def test_auc(train: pd.DataFrame, test: pd.DataFrame) -> float:
        def matrix(rows: pd.DataFrame) -> xgb.DMatrix:
            inputs = rows[FEATURES].assign(group=rows["group"].astype("category"))
            return xgb.DMatrix(inputs, rows["y"], enable_categorical=True)

        params = {"objective": "binary:logistic", "max_depth": 3, "eta": 0.1, "seed": 0}
        booster = xgb.train(params, matrix(train), num_boost_round=100)
        return float(roc_auc_score(test["y"], booster.predict(matrix(test))))

    ours = test_auc(table[splits == "train"], table[splits == "test"])
    rng = np.random.default_rng(0)
    random_test = rng.uniform(size=len(table)) < 0.2
    baseline = test_auc(table[~random_test & (splits != "valid")], table[random_test])
    assert abs(ours - baseline) < 0.01, (ours, baseline)


def test_group_column_keeps_an_entity_in_one_split_and_is_not_a_feature() -> None:
    frame = planted(3000)
    frame["person"] = np.arange(len(frame)) // 3  # three rows per person, different features
    spec = SPEC.model_copy(update={"group_column": "person"})
    splits = assign_splits(frame, spec, SplitParams())
    assert pd.Series(splits).groupby(frame["person"].to_numpy()).nunique().max() == 1
    assert "person" not in {f.name for f in feature_specs(frame, spec)}
    assert {"train", "valid", "test"} == set(splits)


def test_time_column_tests_on_the_latest_period() -> None:
    frame = planted(2000)
    frame["day"] = pd.Timestamp("2024-01-01") + pd.to_timedelta(
        np.random.default_rng(2).integers(0, 365, size=len(frame)), unit="D"
    )
    frame["day"] = frame["day"].dt.strftime("%Y-%m-%d")  # as it arrives from a CSV
    spec = SPEC.model_copy(update={"time_column": "day"})
    params = SplitParams(valid_fraction=0.15, test_fraction=0.2)
    plan = plan_split(spec, EvalParams(), len(frame), time_cuts([frame["day"]], params))
    assert plan.evaluation == "holdout" and plan.rule == "time"
    splits = assign_splits(frame, spec, params, plan=plan)
    day = pd.to_datetime(frame["day"])
    assert day[splits == "train"].max() < day[splits == "valid"].min()
    assert day[splits == "valid"].max() < day[splits == "test"].min()
    assert 0.17 < (splits == "test").mean() < 0.23
    assert "day" not in {f.name for f in feature_specs(frame, spec)}


def test_a_time_column_with_missing_or_unparseable_values_is_named() -> None:
    frame = planted(100).assign(day=["2024-01-01"] * 99 + [None])
    with pytest.raises(DataError, match="time column 'day' has 1 missing"):
        time_cuts([frame["day"]], SplitParams())
    bad = frame.assign(day=["2024-01-01"] * 99 + ["not a date"])
    with pytest.raises(DataError, match="time column 'day' holds a value that is not a date"):
        time_cuts([bad["day"]], SplitParams())


def test_small_batches_are_cross_fitted_large_or_shipped_ones_held_out() -> None:
    evaluation = EvalParams(cross_fit_below_rows=50_000, folds=5)
    small = plan_split(SPEC, evaluation, 1_500)
    assert (small.evaluation, small.folds) == ("cross_fit", 5)
    assert "1,500 rows < evaluation.cross_fit_below_rows=50,000" in small.reason
    assert plan_split(SPEC, evaluation, 60_000).evaluation == "holdout"
    shipped = SPEC.model_copy(update={"split_column": "split"})
    assert plan_split(shipped, evaluation, 1_500).evaluation == "holdout"
    assert plan_split(SPEC, EvalParams(cross_fit_below_rows=0), 10).evaluation == "holdout"


def test_folds_keep_duplicates_together_and_are_stratified() -> None:
    table = with_copies(planted(1500)).reset_index(drop=True)
    folds = assign_folds(table, SPEC, 5, seed=0)
    keys = _feature_keys(table)
    assert pd.Series(folds).groupby(keys.to_numpy()).nunique().max() == 1
    sizes = np.bincount(folds, minlength=5)
    assert sizes.min() > 0.9 * len(table) / 5
    base = table["y"].mean()
    for fold in range(5):
        rows = table[folds == fold]
        assert abs(rows["y"].mean() - base) < 0.03
        # the small group (10%) is dealt to every fold too
        assert abs((rows["group"] == "c").mean() - (table["group"] == "c").mean()) < 0.03
    assert (assign_folds(table, SPEC, 5, seed=0) == folds).all()


def test_cross_fitted_shards_carry_folds_and_the_split_report(tmp_path: Path) -> None:
    table = planted(1500)
    plan = plan_split(SPEC, EvalParams(), len(table))
    written = write_shard_chunks(
        [table.iloc[:700], table.iloc[700:]],
        SPEC,
        SplitParams(),
        ShardParams(n_shards=2),
        tmp_path / "shards",
        plan=plan,
    )
    assert {info.fold for info in written.shards} == set(range(5))
    assert all(info.split == "train" for info in written.shards)
    rows = pd.concat(pd.read_parquet(tmp_path / "shards" / i.path) for i in written.shards)
    assert sorted(rows[ROW_ID]) == list(range(1500))
    report = {summary.name: summary for summary in written.report}
    assert set(report) == {f"fold-{k}" for k in range(5)}
    assert sum(s.rows for s in report.values()) == 1500
    assert sum(s.positives for s in report.values()) == int(table["y"].sum())
    assert sum(s.groups["group"].get("c", 0) for s in report.values()) == int(
        (table["group"] == "c").sum()
    )


def test_held_out_split_report_counts_rows_base_rate_and_groups(tmp_path: Path) -> None:
    table = planted(3000)
    written = write_shard_chunks(
        [table], SPEC, SplitParams(), ShardParams(n_shards=2), tmp_path / "shards"
    )
    by_name = {s.name: s for s in written.report}
    assert list(by_name) == ["train", "valid", "test"]
    splits = assign_splits(table, SPEC, SplitParams())
    for name, summary in by_name.items():
        rows = table[splits == name]
        assert summary.rows == len(rows)
        assert summary.base_rate == pytest.approx(rows["y"].mean())
        assert summary.groups["group"] == rows["group"].value_counts().sort_index().to_dict()


def test_only_one_split_rule_may_be_set() -> None:
    with pytest.raises(ValueError, match="at most one of split_column, group_column, time_column"):
        SPEC.model_copy(update={}).model_validate(
            {**SPEC.model_dump(), "group_column": "person", "time_column": "day"}
        )


def test_folds_keep_one_persons_rows_together_when_a_group_column_is_set() -> None:
    frame = planted(1500)
    frame["person"] = np.arange(len(frame)) // 4  # four rows per person, different features
    spec = SPEC.model_copy(update={"group_column": "person"})
    folds = assign_folds(frame, spec, 5, seed=0)
    assert pd.Series(folds).groupby(frame["person"].to_numpy()).nunique().max() == 1
    assert np.bincount(folds, minlength=5).min() > 0.8 * len(frame) / 5
    assert plan_split(spec, EvalParams(), len(frame)).rule == "group"
