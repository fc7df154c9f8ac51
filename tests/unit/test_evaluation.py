"""Overall and per-group metrics, checked against sklearn per subset and fairlearn's MetricFrame."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import (
    MetricFrame,
    count,
    false_negative_rate,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)
from sklearn.metrics import (
    accuracy_score,
    brier_score_loss,
    confusion_matrix,
    f1_score,
    log_loss,
    precision_score,
    recall_score,
    roc_auc_score,
)

from evenflow.assess import evaluation
from evenflow.assess.bootstrap import percentile_interval
from evenflow.assess.evaluation import (
    HEADLINE_METRICS,
    binary_metrics,
    confusion_counts,
    evaluate,
    headline_metrics,
    write_evaluation,
)
from evenflow.assess.group_metrics import GROUP_COLUMNS, group_metrics
from evenflow.assess.group_rates import bin_index
from evenflow.assess.predictions import MISSING as MISSING_GROUP
from evenflow.config.fairness import FairnessParams
from evenflow.config.run import EvalParams
from evenflow.errors import DataError
from evenflow.records import EvalReport

THRESHOLD = 0.4
# The one rule for small groups (min_cell 10, 20 positives, 20 negatives) and a quick bootstrap.
RULE = FairnessParams(threshold=THRESHOLD, n_bootstrap=200)
TOL = 1e-9
SENSITIVE = ["sex", "race"]
TINY = "Tiny"
FEW = "Few"  # 40 rows, 19 positives: insufficient evidence


@pytest.fixture(scope="module")
def predictions() -> pd.DataFrame:
    """4,000 rows; group base rates differ; sex has 60 missing; race has a 5-row group (private),
    a 40-row group with 19 positives (insufficient evidence) and 1 missing row (private)."""
    rng = np.random.default_rng(20240611)
    n = 4_000
    sex = rng.choice(np.array(["F", "M"], dtype=object), n, p=[0.45, 0.55])
    sex[rng.choice(n, 60, replace=False)] = None
    race = rng.choice(np.array(["A", "B", "C"], dtype=object), n, p=[0.6, 0.3, 0.1])
    race[:5] = TINY
    race[5] = None
    race[6:46] = FEW
    base = np.where(race == "A", 0.3, np.where(race == "B", 0.45, 0.6))
    label = (rng.uniform(size=n) < base).astype(np.int64)
    label[6:46] = np.repeat([1, 0], [19, 21])
    logit = 1.6 * (label - 0.5) + rng.normal(0.0, 1.0, n) + np.where(sex == "F", -0.3, 0.2)
    score = 1.0 / (1.0 + np.exp(-logit))
    return pd.DataFrame(
        {
            "_row_id": np.arange(n, dtype=np.int64),
            "label": label,
            "score": score.astype(np.float64),
            "sex": sex,
            "race": race,
        }
    )


@pytest.fixture(scope="module")
def groups(predictions: pd.DataFrame) -> pd.DataFrame:
    return group_metrics(predictions, SENSITIVE, THRESHOLD, RULE)


def _keys(predictions: pd.DataFrame, column: str) -> pd.Series:
    return predictions[column].fillna(MISSING_GROUP)


def _scored(groups: pd.DataFrame, column: str) -> pd.DataFrame:
    """Groups with figures: reported and insufficient ones (only private groups have none)."""
    rows = groups[(groups["column"] == column) & (groups["status"] != "private")]
    return rows.set_index("group")


def _direct(label: np.ndarray, score: np.ndarray) -> dict[str, float]:
    """Each metric the plain way, with sklearn on the subset."""
    pred = (score >= THRESHOLD).astype(int)
    tn, fp, fn, tp = confusion_matrix(label, pred, labels=[0, 1]).ravel()
    return {
        "n": len(label),
        "n_pos": int(label.sum()),
        "n_neg": int((label == 0).sum()),
        "roc_auc": roc_auc_score(label, score),
        "log_loss": log_loss(label, score, labels=[0, 1]),
        "brier": brier_score_loss(label, score),
        "mean_score": float(np.mean(score)),
        "accuracy": accuracy_score(label, pred),
        "precision": precision_score(label, pred),
        "recall": recall_score(label, pred),
        "f1": f1_score(label, pred),
        "tpr": recall_score(label, pred),
        "fpr": fp / (fp + tn),
        "fnr": fn / (fn + tp),
        "base_rate": float(label.mean()),
        "selection_rate": float(pred.mean()),
    }


@pytest.mark.parametrize("column", SENSITIVE)
def test_group_metrics_match_sklearn_on_each_subset(
    predictions: pd.DataFrame, groups: pd.DataFrame, column: str
) -> None:
    scored = _scored(groups, column)
    keys = _keys(predictions, column)
    assert len(scored) >= 3
    if column == "race":  # the insufficient group is checked too, not only the reported ones
        assert scored.loc[FEW, "status"] == "insufficient"
    for group, row in scored.iterrows():
        subset = predictions[keys == group]
        expected = _direct(subset["label"].to_numpy(), subset["score"].to_numpy())
        for name, value in expected.items():
            assert row[name] == pytest.approx(value, abs=TOL, rel=TOL), (column, group, name)


@pytest.mark.parametrize("column", SENSITIVE)
def test_group_metrics_match_fairlearn_metricframe(
    predictions: pd.DataFrame, groups: pd.DataFrame, column: str
) -> None:
    frame = MetricFrame(
        metrics={
            "recall": recall_score,
            "precision": precision_score,
            "accuracy": accuracy_score,
            "selection_rate": selection_rate,
            "tpr": true_positive_rate,
            "fpr": false_positive_rate,
            "fnr": false_negative_rate,
            "n": count,
        },
        y_true=predictions["label"],
        y_pred=(predictions["score"] >= THRESHOLD).astype(int),
        sensitive_features=_keys(predictions, column),
    )
    scored = _scored(groups, column)
    by_group = frame.by_group.loc[scored.index]
    for name in by_group.columns:
        np.testing.assert_allclose(
            scored[name].to_numpy(dtype=float),
            by_group[name].to_numpy(dtype=float),
            rtol=TOL,
            atol=TOL,
            err_msg=f"{column}.{name}",
        )


def test_every_group_is_listed_including_missing_and_tiny(
    predictions: pd.DataFrame, groups: pd.DataFrame
) -> None:
    assert list(groups.columns) == list(GROUP_COLUMNS)
    for column in SENSITIVE:
        rows = groups[groups["column"] == column]
        assert set(rows["group"]) == set(_keys(predictions, column))
        assert rows["n"].sum() == len(predictions)
    sex_missing = groups[(groups["column"] == "sex") & (groups["group"] == MISSING_GROUP)]
    assert sex_missing["n"].item() == 60
    assert sex_missing["status"].item() != "private"


@pytest.mark.parametrize(("group", "n"), [(TINY, 5), (MISSING_GROUP, 1)])
def test_private_groups_show_only_their_n(groups: pd.DataFrame, group: str, n: int) -> None:
    row = groups[(groups["column"] == "race") & (groups["group"] == group)]
    assert len(row) == 1
    assert row["status"].item() == "private"
    assert row["n"].item() == n
    hidden = row.drop(columns=["column", "group", "n", "status"])  # positives would give a rate
    assert hidden.isna().all(axis=None)


def test_insufficient_group_keeps_its_figures_and_is_marked(groups: pd.DataFrame) -> None:
    row = groups[(groups["column"] == "race") & (groups["group"] == FEW)].iloc[0]
    assert row["status"] == "insufficient"
    assert (row["n"], row["n_pos"], row["n_neg"]) == (40, 19, 21)
    assert row["base_rate"] == pytest.approx(19 / 40)
    assert np.isfinite(row[["recall", "precision", "roc_auc"]].to_numpy(dtype=float)).all()


def test_overall_metrics_match_sklearn(predictions: pd.DataFrame) -> None:
    label, score = predictions["label"].to_numpy(), predictions["score"].to_numpy()
    got = binary_metrics(label, score, THRESHOLD)
    expected = _direct(label, score)
    for name, value in expected.items():
        if name not in {"n_pos", "n_neg"}:
            assert got[name] == pytest.approx(value, abs=TOL, rel=TOL), name
    assert got["n"] == len(predictions)


def test_confusion_counts_match_sklearn(predictions: pd.DataFrame) -> None:
    label, score = predictions["label"], predictions["score"]
    tn, fp, fn, tp = confusion_matrix(label, score >= THRESHOLD).ravel()
    assert confusion_counts(label, score, THRESHOLD) == {"tp": tp, "fp": fp, "tn": tn, "fn": fn}


def test_score_at_threshold_counts_as_positive() -> None:
    counts = confusion_counts([1, 0], [THRESHOLD, THRESHOLD], THRESHOLD)
    assert counts == {"tp": 1, "fp": 1, "tn": 0, "fn": 0}


def test_single_class_gives_nan_auc_not_an_exception() -> None:
    frame = pd.DataFrame(
        {
            "label": [0] * 40 + [0, 1] * 20,
            "score": np.linspace(0.05, 0.95, 80),
            "grp": ["neg_only"] * 40 + ["mixed"] * 40,
        }
    )
    table = group_metrics(frame, ["grp"], 0.5, FairnessParams()).set_index("group")
    assert table.loc["neg_only", "status"] == "insufficient"  # no positives: shown, marked
    neg_only = table.loc["neg_only"]
    assert math.isnan(neg_only["roc_auc"])
    assert math.isnan(neg_only["recall"])  # no positives: recall is undefined, not 0
    assert math.isfinite(neg_only["log_loss"])
    assert math.isfinite(neg_only["fpr"])
    assert math.isfinite(table.loc["mixed", "roc_auc"])
    overall = binary_metrics([0, 0, 0], [0.1, 0.2, 0.9], 0.5)
    assert math.isnan(overall["roc_auc"])
    assert overall["fpr"] == pytest.approx(1 / 3)


@pytest.mark.parametrize(
    ("label", "score", "message"),
    [
        ([0, 2], [0.1, 0.2], "only 0 and 1"),
        ([0, 1], [0.1, np.nan], "finite probability"),
        ([0, 1], [0.1, 1.2], "finite probability"),
        ([0, 1], [0.1], "equal length"),
        ([], [], "empty"),
    ],
)
def test_bad_inputs_raise_data_error(label: list[int], score: list[float], message: str) -> None:
    with pytest.raises(DataError, match=message):
        binary_metrics(label, score, 0.5)


def test_missing_sensitive_column_is_named(predictions: pd.DataFrame) -> None:
    with pytest.raises(DataError, match="nope"):
        group_metrics(predictions, ["sex", "nope"], THRESHOLD, RULE)


def _strict_json(path: Path) -> object:
    def reject(token: str) -> None:
        raise AssertionError(f"{path.name} holds non-standard JSON token {token}")

    return json.loads(path.read_text(encoding="utf-8"), parse_constant=reject)


def test_write_evaluation_writes_strict_json_and_returns_report(
    predictions: pd.DataFrame, tmp_path: Path
) -> None:
    params = EvalParams(threshold=THRESHOLD)
    report = write_evaluation(
        predictions,
        SENSITIVE,
        params,
        tmp_path / "eval",
        predictions_path=tmp_path / "preds.parquet",
        report_dir=tmp_path / "reports",
        fairness=RULE,
    )
    assert isinstance(report, EvalReport)
    assert report.groups_path == tmp_path / "eval" / "groups.json"
    assert report.report_dir == tmp_path / "reports"
    assert report.confusion_matrix == confusion_counts(
        predictions["label"], predictions["score"], THRESHOLD
    )

    metrics = _strict_json(tmp_path / "eval" / "metrics.json")
    assert isinstance(metrics, dict)
    assert metrics["threshold"] == THRESHOLD
    assert metrics["metrics"]["roc_auc"] == pytest.approx(report.metrics["roc_auc"], abs=TOL)
    assert metrics["small_groups"] == {"min_cell": 10, "min_positives": 20, "min_negatives": 20}
    assert metrics["bootstrap"]["replicates"] == RULE.n_bootstrap
    for name in HEADLINE_METRICS:  # each headline metric with its interval, beside it
        low, value, high = (report.metrics[f"{name}{end}"] for end in ("_low", "", "_high"))
        assert low <= value <= high, name
        assert metrics["metrics"][f"{name}_low"] == pytest.approx(low, abs=TOL)

    records = _strict_json(report.groups_path)
    assert isinstance(records, list)
    assert len(records) == len(group_metrics(predictions, SENSITIVE, THRESHOLD, RULE))
    tiny = next(r for r in records if r["column"] == "race" and r["group"] == TINY)
    assert tiny["status"] == "private"
    assert tiny["n"] == 5
    assert tiny["n_pos"] is None and tiny["recall"] is None
    few = next(r for r in records if r["column"] == "race" and r["group"] == FEW)
    assert few["status"] == "insufficient" and few["n_pos"] == 19
    assert not list(tmp_path.glob("eval/.*.tmp"))


def test_decision_column_overrides_the_threshold_everywhere() -> None:
    rng = np.random.default_rng(11)
    frame = pd.DataFrame(
        {
            "label": rng.integers(0, 2, 400),
            "score": rng.random(400),
            "sex": rng.choice(["F", "M"], 400),
        }
    )
    decided = frame.assign(decision=(frame["score"] >= 0.3).astype(int))
    params = EvalParams(threshold=0.5)
    rule = FairnessParams(n_bootstrap=50)

    metrics, confusion, groups = evaluate(decided, ["sex"], params, rule)
    at_03, confusion_03, groups_03 = evaluate(frame, ["sex"], EvalParams(threshold=0.3), rule)

    assert metrics == at_03 and confusion == confusion_03
    pd.testing.assert_frame_equal(groups, groups_03)
    assert evaluate(frame, ["sex"], params, rule)[0]["selection_rate"] < metrics["selection_rate"]


# --- headline metrics with intervals -------------------------------------------------------


def _scored_sample(n: int, seed: int, decimals: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    label = (rng.uniform(size=n) < 0.35).astype(np.int64)
    score = 1.0 / (1.0 + np.exp(-(1.4 * (label - 0.5) + rng.normal(0.0, 1.0, n))))
    return label, score if decimals is None else np.round(score, decimals)


def _direct_ece(label: np.ndarray, score: np.ndarray, weight: np.ndarray, n_bins: int) -> float:
    bins = np.minimum((score * n_bins).astype(int), n_bins - 1)
    residual = np.bincount(bins, weights=weight * (score - label), minlength=n_bins)
    return float(np.abs(residual).sum() / weight.sum())


def test_headline_points_match_sklearn(predictions: pd.DataFrame) -> None:
    label, score = predictions["label"].to_numpy(), predictions["score"].to_numpy()
    got = headline_metrics(label, score, None, THRESHOLD, RULE)
    expected = _direct(label, score)
    for name in HEADLINE_METRICS:
        if name != "ece":
            assert got[name] == pytest.approx(expected[name], abs=TOL, rel=TOL), name
    ones = np.ones(label.size)
    assert got["ece"] == pytest.approx(_direct_ece(label, score, ones, 10), abs=TOL)
    assert set(got) == {f"{m}{end}" for m in HEADLINE_METRICS for end in ("", "_low", "_high")}


def test_headline_intervals_hold_the_point_shrink_with_n_and_follow_the_seed() -> None:
    params = FairnessParams(n_bootstrap=300, seed=4)
    small = headline_metrics(*_scored_sample(500, 1), None, 0.5, params)
    large = headline_metrics(*_scored_sample(20_000, 1), None, 0.5, params)
    for name in HEADLINE_METRICS:
        for figures in (small, large):
            assert figures[f"{name}_low"] <= figures[name] <= figures[f"{name}_high"], name
        width = {k: f[f"{name}_high"] - f[f"{name}_low"] for k, f in (("s", small), ("l", large))}
        assert 0 < width["l"] < width["s"] / 2, name  # 40x the rows: about 1/6 the width
    again = headline_metrics(*_scored_sample(500, 1), None, 0.5, params)
    other = headline_metrics(
        *_scored_sample(500, 1), None, 0.5, params.model_copy(update={"seed": 5})
    )
    assert again == small
    assert other != small
    assert other["roc_auc"] == small["roc_auc"]  # only the bounds depend on the seed


def test_no_bootstrap_gives_undefined_bounds() -> None:
    figures = headline_metrics(*_scored_sample(300, 2), None, 0.5, FairnessParams(n_bootstrap=0))
    assert math.isfinite(figures["roc_auc"])
    assert all(
        math.isnan(figures[f"{m}_{end}"]) for m in HEADLINE_METRICS for end in ("low", "high")
    )


@pytest.mark.parametrize("chunked", [False, True])
def test_headline_replicates_equal_sklearn_with_the_same_weights(
    monkeypatch: pytest.MonkeyPatch, chunked: bool
) -> None:
    """AUC (with tied scores), Brier, log loss, F1 and ECE per replicate, against direct code.

    The replicate weights are rebuilt from the same seeded stream; ``chunked`` forces many row
    chunks and replicate blocks (the AUC carries negative weight across chunks).
    """
    if chunked:
        monkeypatch.setattr(evaluation, "_BLOCK_ELEMENTS", 700)
        monkeypatch.setattr(evaluation, "_ROW_CHUNK", 37)
    label, score = _scored_sample(400, 3, decimals=2)  # ties within and across chunks
    params = FairnessParams(n_bootstrap=60, seed=8, confidence_level=0.9)
    predicted = score >= 0.5
    replicates = evaluation._headline_replicates(label, score, predicted, params)

    order = np.argsort(score, kind="stable")
    y, s, p = label[order], score[order], predicted[order].astype(int)
    chunks = evaluation._row_chunks(s, bin_index(s, params.calibration_bins), evaluation._ROW_CHUNK)
    assert (len(chunks) > 10) == chunked
    weights = np.zeros((params.n_bootstrap, s.size))
    for first, start, stop, block in evaluation._weight_blocks(chunks, params):
        weights[first : first + block.shape[0], start:stop] = block
    direct = {
        "roc_auc": [roc_auc_score(y, s, sample_weight=w) for w in weights],
        "brier": [brier_score_loss(y, s, sample_weight=w) for w in weights],
        "log_loss": [log_loss(y, s, sample_weight=w, labels=[0, 1]) for w in weights],
        "f1": [f1_score(y, p, sample_weight=w) for w in weights],
        "accuracy": [accuracy_score(y, p, sample_weight=w) for w in weights],
        "ece": [_direct_ece(y, s, w, params.calibration_bins) for w in weights],
    }
    for name, values in direct.items():
        np.testing.assert_allclose(replicates[name], values, rtol=0, atol=1e-9, err_msg=name)
    low, high = percentile_interval(np.asarray(direct["roc_auc"]), params.confidence_level)
    figures = headline_metrics(label, score, None, 0.5, params)
    assert figures["roc_auc_low"] == pytest.approx(float(low), abs=1e-9)
    assert figures["roc_auc_high"] == pytest.approx(float(high), abs=1e-9)
