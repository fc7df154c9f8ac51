"""SHAP through XGBoost's TreeSHAP, importance by group, plots and the proxy check."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb

from evenflow import layout
from evenflow.assess.attribution import BIAS, OTHER, sample_rows
from evenflow.assess.explain import (
    explanation_summary,
    read_explanations,
    shap_values,
)
from evenflow.assess.predictions import MISSING
from evenflow.assess.proxy import proxy_check
from evenflow.data.features import typed_features
from evenflow.errors import DataError
from evenflow.records import FeatureSpec
from evenflow.reports import explanations as explain
from evenflow.reports.explanations import group_importance_plot, summary_plot, write_explanations

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
FEATURES = (
    FeatureSpec(name="age", kind="numeric"),
    FeatureSpec(name="hours", kind="numeric"),
    FeatureSpec(name="job", kind="categorical", categories=("clerk", "manager", "sales")),
    FeatureSpec(name="sex", kind="categorical", categories=("F", "M")),
)


@pytest.fixture(scope="module")
def raw() -> pd.DataFrame:
    """1,000 rows; a label driven by age, job and sex; some missing values, a small race group."""
    rng = np.random.default_rng(11)
    n = 1_000
    frame = pd.DataFrame(
        {
            "age": rng.normal(40, 10, n).round(),
            "hours": rng.normal(40, 5, n).round(),
            "job": rng.choice(["clerk", "manager", "sales"], n),
            "sex": rng.choice(np.array(["F", "M"], dtype=object), n),
            "race": rng.choice(np.array(["A", "B", "C"], dtype=object), n, p=[0.7, 0.25, 0.05]),
        },
        index=pd.RangeIndex(100, 100 + n),
    )
    frame.loc[frame.index[:30], "age"] = np.nan
    frame.loc[frame.index[30:50], "sex"] = None
    logit = (
        0.08 * (frame["age"].fillna(40) - 40)
        + np.where(frame["job"] == "manager", 1.2, 0.0)
        + np.where(frame["sex"] == "M", 0.5, 0.0)
    )
    frame["label"] = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int)
    return frame


@pytest.fixture(scope="module")
def features(raw: pd.DataFrame) -> pd.DataFrame:
    return typed_features(raw, FEATURES)


@pytest.fixture(scope="module")
def booster(features: pd.DataFrame, raw: pd.DataFrame) -> xgb.Booster:
    matrix = xgb.DMatrix(features, label=raw["label"], enable_categorical=True)
    params = {"objective": "binary:logistic", "max_depth": 4, "seed": 0, "max_cat_to_onehot": 1}
    return xgb.train(params, matrix, num_boost_round=20)


@pytest.fixture(scope="module")
def shap(booster: xgb.Booster, features: pd.DataFrame) -> pd.DataFrame:
    return shap_values(booster, features)


# --- shap_values ----------------------------------------------------------------------------


def test_shap_columns_index_and_dtype(shap: pd.DataFrame, features: pd.DataFrame) -> None:
    assert list(shap.columns) == [*features.columns, BIAS]
    assert shap.index.equals(features.index)
    assert (shap.dtypes == np.float64).all()
    assert shap[BIAS].nunique() == 1  # the base margin, the same for every row


def test_shap_rows_sum_to_margin(
    shap: pd.DataFrame, booster: xgb.Booster, features: pd.DataFrame
) -> None:
    margin = booster.predict(xgb.DMatrix(features, enable_categorical=True), output_margin=True)
    np.testing.assert_allclose(shap.sum(axis=1).to_numpy(), margin, atol=1e-4)


def test_shap_device_works_on_a_copy(
    shap: pd.DataFrame, booster: xgb.Booster, features: pd.DataFrame
) -> None:
    before = booster.save_config()
    again = shap_values(booster, features, device="cpu")
    np.testing.assert_allclose(again.to_numpy(), shap.to_numpy(), atol=1e-6)
    assert booster.save_config() == before


def test_shap_refuses_a_feature_named_bias(booster: xgb.Booster) -> None:
    with pytest.raises(DataError, match="bias"):
        shap_values(booster, pd.DataFrame({BIAS: [1.0]}))


# --- explanation_summary --------------------------------------------------------------------


def test_summary_global_importance_is_mean_abs_sorted(
    shap: pd.DataFrame, raw: pd.DataFrame
) -> None:
    summary = explanation_summary(shap, raw[["sex", "race"]])
    names = [item.feature for item in summary.global_importance]
    values = [item.mean_abs_shap for item in summary.global_importance]
    assert values == sorted(values, reverse=True)
    assert set(names) == {"age", "hours", "job", "sex"}
    for item in summary.global_importance:
        assert item.mean_abs_shap == pytest.approx(shap[item.feature].abs().mean(), rel=1e-12)
    assert summary.n_rows == len(raw)
    assert summary.expected_margin == pytest.approx(shap[BIAS].iloc[0])


def test_summary_per_group_matches_direct_computation(
    shap: pd.DataFrame, raw: pd.DataFrame
) -> None:
    summary = explanation_summary(shap, raw[["sex", "race"]])
    sex = {g.group: g for g in summary.groups if g.column == "sex"}
    assert set(sex) == {"F", "M", MISSING}
    assert sex[MISSING].n == 20
    rows = raw["sex"] == "F"
    assert sex["F"].n == int(rows.sum())
    for feature in ("age", "job"):
        expected = shap.loc[rows, feature].abs().mean()
        assert sex["F"].mean_abs_shap[feature] == pytest.approx(expected, rel=1e-12)
    assert [g.column for g in summary.groups] == ["sex"] * 3 + ["race"] * 3


def test_summary_merges_smallest_groups_past_max_groups(
    shap: pd.DataFrame, raw: pd.DataFrame
) -> None:
    summary = explanation_summary(shap, raw[["race"]], max_groups=2)
    groups = {g.group: g.n for g in summary.groups}
    assert set(groups) == {"A", OTHER}
    assert summary.merged_groups == {"race": ("B", "C")}
    assert sum(groups.values()) == len(raw)


def test_summary_needs_aligned_rows(shap: pd.DataFrame, raw: pd.DataFrame) -> None:
    with pytest.raises(DataError, match="index"):
        explanation_summary(shap, raw[["sex"]].reset_index(drop=True))


# --- plots and files ------------------------------------------------------------------------


def test_plots_are_pngs(
    shap: pd.DataFrame, features: pd.DataFrame, raw: pd.DataFrame, tmp_path: Path
) -> None:
    summary = explanation_summary(shap, raw[["sex", "race"]])
    beeswarm = summary_plot(shap, features, tmp_path / "swarm.png", top_k=3)
    bars = group_importance_plot(summary, tmp_path / "bars.png", top_k=3)
    assert beeswarm.read_bytes().startswith(PNG_MAGIC)
    assert bars.read_bytes().startswith(PNG_MAGIC)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bars.png", "swarm.png"]


def test_write_explanations_round_trips(
    shap: pd.DataFrame, features: pd.DataFrame, raw: pd.DataFrame, tmp_path: Path
) -> None:
    summary = explanation_summary(shap, raw[["sex", "race"]])
    proxies = proxy_check(features, raw[["sex", "race"]], seed=0, max_rows=None)
    files = write_explanations(shap, features, summary, proxies, tmp_path / "explain")
    names = sorted(p.name for p in (tmp_path / "explain").iterdir())
    assert names == sorted(
        [layout.EXPLANATIONS_FILE, layout.SHAP_SUMMARY_PLOT_FILE, layout.SHAP_BY_GROUP_PLOT_FILE]
    )  # no temp files left
    payload = json.loads(files.json_path.read_text())
    assert "NaN" not in files.json_path.read_text()
    assert set(payload) == {"summary", "proxies"}
    back = read_explanations(files.json_path)
    assert back.summary == summary
    assert back.proxies == proxies


def test_import_selects_no_backend() -> None:
    """matplotlib is imported inside the plotting functions only (or for type checking)."""
    tree = ast.parse(Path(explain.__file__).read_text(encoding="utf-8"))
    top_level = [
        node
        for node in tree.body
        if isinstance(node, ast.Import | ast.ImportFrom) and "matplotlib" in ast.unparse(node)
    ]
    assert top_level == []


def test_sample_rows_is_seeded_and_keeps_small_frames(raw: pd.DataFrame) -> None:
    assert sample_rows(raw, None, 0) is raw
    assert sample_rows(raw, 5_000, 0) is raw
    first, second = sample_rows(raw, 100, 3), sample_rows(raw, 100, 3)
    assert len(first) == 100
    assert first.index.equals(second.index)
    assert first.index.is_monotonic_increasing


# --- proxy check ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def proxy_data() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Sex has a noisy copy among the features; coin is independent of every feature."""
    rng = np.random.default_rng(5)
    n = 2_000
    sex = rng.choice(np.array(["F", "M"], dtype=object), n)
    coin = rng.choice(np.array(["heads", "tails"], dtype=object), n)
    region = rng.choice(np.array(["north", "south", "east"], dtype=object), n)
    zone = pd.Series(region).map({"north": "z1", "south": "z2", "east": "z3"})
    flip = rng.uniform(size=n) < 0.1
    zone[flip] = rng.choice(["z1", "z2", "z3"], int(flip.sum()))
    features = pd.DataFrame(
        {
            "copy": (sex == "M") + rng.normal(0.0, 0.3, n),
            "noise": rng.normal(size=n),
            "zone": pd.Categorical(zone, categories=["z1", "z2", "z3"]),
            "sex": pd.Categorical(sex, categories=["F", "M"]),
        }
    )
    sensitive = pd.DataFrame({"sex": sex, "coin": coin, "region": region})
    return features, sensitive


def test_proxy_finds_a_noisy_copy_and_not_noise(
    proxy_data: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    features, sensitive = proxy_data
    results = proxy_check(features, sensitive, seed=0, max_rows=None)
    assert list(results) == ["sex", "coin", "region"]
    sex, coin = results["sex"], results["coin"]
    assert sex.auc is not None
    assert sex.auc > 0.9
    assert sex.auc_kind == "binary"
    assert sex.top_features[0].feature == "copy"
    assert coin.auc is not None
    assert 0.4 < coin.auc < 0.6
    for result in results.values():
        assert "sex" not in result.features_used  # the sensitive columns are excluded
        assert result.n_rows == len(features)


def test_proxy_multiclass_is_macro_one_vs_rest(
    proxy_data: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    features, sensitive = proxy_data
    region = proxy_check(features, sensitive[["region"]], seed=0, max_rows=1_500)["region"]
    assert region.auc_kind == "macro_ovr"
    assert set(region.class_auc) == {"east", "north", "south"}
    assert region.auc == pytest.approx(np.mean(list(region.class_auc.values())))
    assert region.auc is not None
    assert region.auc > 0.9
    assert region.top_features[0].feature == "zone"
    assert region.n_rows == 1_500


def test_proxy_merges_rare_classes_and_reports_missing(
    proxy_data: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    features, sensitive = proxy_data
    odd = sensitive["coin"].copy()
    odd.iloc[:2] = "rare"
    odd.iloc[2:40] = None
    result = proxy_check(features, odd.to_frame("coin"), seed=1, max_rows=None)["coin"]
    assert result.merged_classes == ("rare",)
    assert set(result.classes) == {"heads", "tails", MISSING}  # two rare rows dropped
    assert result.n_rows == len(features) - 2


def test_proxy_without_other_features_says_so(
    proxy_data: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    features, sensitive = proxy_data
    result = proxy_check(features[["sex"]], sensitive[["sex"]], seed=0)["sex"]
    assert result.auc is None
    assert result.auc_kind == "none"
    assert result.note == "no non-sensitive features"
