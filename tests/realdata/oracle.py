"""Fairlearn's ``MetricFrame`` as the oracle for every per-group figure evenflow logs.

The figures are recomputed from the logged predictions alone (``label``, ``score``, the sensitive
columns, and ``decision`` where the run made its own decisions), so a report that drifts from its
predictions, drops a group or mislabels one is caught.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from fairlearn.metrics import (
    MetricFrame,
    count,
    demographic_parity_ratio,
    equalized_odds_difference,
    false_negative_rate,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)
from sklearn.metrics import accuracy_score, brier_score_loss, precision_score, roc_auc_score

TOLERANCE = 1e-9


def decisions(predictions: pd.DataFrame, threshold: float) -> pd.Series:
    """The run's decisions: its ``decision`` column if it logged one, else ``score >= threshold``."""
    if "decision" in predictions.columns:
        return predictions["decision"].astype(int)
    return (predictions["score"] >= threshold).astype(int)


def _ece(n_bins: int) -> Callable[..., float]:
    def ece(y_true: Any, y_pred: Any, score: Any) -> float:
        s = np.asarray(score, dtype=np.float64)
        y = np.asarray(y_true, dtype=np.float64)
        bins = np.minimum((s * n_bins).astype(np.int64), n_bins - 1)
        gaps = np.bincount(bins, weights=s - y, minlength=n_bins)
        return float(np.abs(gaps).sum() / len(s))

    return ece


def _with_score(fn: Callable[[np.ndarray, np.ndarray], float]) -> Callable[..., float]:
    def metric(y_true: Any, y_pred: Any, score: Any) -> float:
        y = np.asarray(y_true)
        if len(np.unique(y)) < 2 and fn is roc_auc_score:
            return math.nan
        return float(fn(y, np.asarray(score, dtype=np.float64)))

    return metric


def _mean_score(y_true: Any, y_pred: Any, score: Any) -> float:
    return float(np.mean(np.asarray(score, dtype=np.float64)))


def _base_rate(y_true: Any, y_pred: Any) -> float:
    return float(np.mean(np.asarray(y_true)))


def _n_pos(y_true: Any, y_pred: Any) -> float:
    return float(np.sum(np.asarray(y_true) == 1))


def _n_pred_pos(y_true: Any, y_pred: Any) -> float:
    return float(np.sum(np.asarray(y_pred) == 1))


def _precision(y_true: Any, y_pred: Any) -> float:
    return float(precision_score(y_true, y_pred, zero_division=np.nan))


# Report metric name -> (Fairlearn-style metric, the counts its denominator needs, uses score)
RATE_METRICS: dict[str, tuple[Callable[..., float], str]] = {
    "base_rate": (_base_rate, "n"),
    "selection_rate": (selection_rate, "n"),
    "tpr": (true_positive_rate, "n_pos"),
    "fpr": (false_positive_rate, "n_neg"),
    "fnr": (false_negative_rate, "n_pos"),
    "precision": (_precision, "n_pred_pos"),
    "accuracy": (accuracy_score, "n"),
}


def metric_frame(
    predictions: pd.DataFrame, columns: Sequence[str], threshold: float, calibration_bins: int
) -> MetricFrame:
    """Every figure the reports hold, per group of ``columns`` (as text, like the reports)."""
    score = predictions["score"].to_numpy(dtype=np.float64)
    scored = {
        "mean_score": _mean_score,
        "ece": _ece(calibration_bins),
        "roc_auc": _with_score(roc_auc_score),
        "brier": _with_score(brier_score_loss),
    }
    metrics: dict[str, Callable[..., float]] = {
        "n": count,
        "n_pos": _n_pos,
        "n_pred_pos": _n_pred_pos,
        **{name: fn for name, (fn, _) in RATE_METRICS.items()},
        **scored,
    }
    return MetricFrame(
        metrics=metrics,
        y_true=predictions["label"].astype(int).to_numpy(),
        y_pred=decisions(predictions, threshold).to_numpy(),
        sensitive_features=predictions[list(columns)].astype("string").fillna("(missing)"),
        sample_params={name: {"score": score} for name in scored},
    )


def _close(reported: float, expected: float, what: str) -> None:
    assert abs(reported - expected) <= TOLERANCE, (
        f"{what}: reported {reported!r}, Fairlearn {expected!r}"
    )


def _value(group: dict[str, Any], metric: str) -> float | None:
    estimate = group.get(metric)
    return None if estimate is None else estimate["value"]


def expected_status(n: int, n_pos: int, n_neg: int, params: dict[str, Any]) -> str:
    """DESIGN.md's one rule for small groups, restated: private, insufficient or reported."""
    if n < params["min_cell"]:
        return "private"
    if n_pos < params["min_positives"] or n_neg < params["min_negatives"]:
        return "insufficient"
    return "reported"


# Between-group summary -> the Fairlearn-style metric whose max - min over the reported groups it
# is. calibration_gap is left out: it needs the report's bins (per-group ECE is checked above).
SPREAD_METRICS: dict[str, Callable[..., float]] = {
    "demographic_parity_difference": selection_rate,
    "equal_opportunity_difference": true_positive_rate,
    "false_positive_rate_difference": false_positive_rate,
    "predictive_parity_difference": _precision,
    "base_rate_difference": _base_rate,
}


def _check_group(group: dict[str, Any], row: pd.Series, params: dict[str, Any], where: str) -> int:
    """Counts, status and every figure of one group; returns how many figures were compared."""
    n, n_pos = int(row["n"]), int(row["n_pos"])
    counts = {"n": n, "n_pos": n_pos, "n_neg": n - n_pos, "n_pred_pos": int(row["n_pred_pos"])}
    status = group.get("status", expected_status(n, n_pos, n - n_pos, params))
    assert status == expected_status(n, n_pos, n - n_pos, params), f"{where}: status {status}"
    assert group["n"] == n, f"{where}: n"
    if status == "private":  # only n may be shown
        shown = [m for m in (*RATE_METRICS, "ece", "mean_score") if group.get(m) is not None]
        assert group["n_pos"] is None and not shown, f"{where}: private group shows {shown}"
        return 0
    for key in ("n_pos", "n_neg", "n_pred_pos"):
        assert group[key] == counts[key], f"{where}: {key} {group[key]} != {counts[key]}"
    figures = 0
    for metric, (_, denominator) in RATE_METRICS.items():
        value = _value(group, metric)
        if value is None:
            assert counts[denominator] == 0, f"{where}: {metric} withheld from a shown group"
            continue
        _close(value, row[metric], f"{where}: {metric}")
        figures += 1
    for metric in ("mean_score", "ece"):
        value = _value(group, metric)
        assert value is not None, f"{where}: {metric} missing"
        _close(value, row[metric], f"{where}: {metric}")
        figures += 1
    return figures


def _check_summary(
    item: dict[str, Any],
    predictions: pd.DataFrame,
    reported: set[tuple[str, ...]],
    threshold: float,
) -> int:
    """The slice's between-group summaries against Fairlearn on the reported groups' rows."""
    columns = list(item["columns"])
    summary = item["summary"]
    if len(reported) < 2:
        assert summary.get("demographic_parity_difference") is None, item["name"]
        return 0
    keys = predictions[columns].astype("string").fillna("(missing)")
    rows = predictions[[tuple(k) in reported for k in keys.itertuples(index=False)]]
    y_true = rows["label"].astype(int)
    y_pred = decisions(rows, threshold)
    sensitive = keys.loc[rows.index]
    by_group = MetricFrame(
        metrics=SPREAD_METRICS, y_true=y_true, y_pred=y_pred, sensitive_features=sensitive
    ).by_group
    figures = 0
    for name in SPREAD_METRICS:
        values = by_group[name].astype(float)
        expected = values.max() - values.min() if values.notna().sum() >= 2 else math.nan
        reported_value = (summary.get(name) or {}).get("value")
        if reported_value is None:
            assert math.isnan(expected), f"{item['name']}: {name} missing"
            continue
        _close(reported_value, expected, f"{item['name']}: {name}")
        figures += 1
    for name, fn in {
        "demographic_parity_ratio": demographic_parity_ratio,
        "equalized_odds_difference": equalized_odds_difference,
    }.items():
        reported_value = (summary.get(name) or {}).get("value")
        if reported_value is not None:
            expected = fn(y_true, y_pred, sensitive_features=sensitive)
            _close(reported_value, expected, f"{item['name']}: {name}")
            figures += 1
    return figures


def check_fairness_report(
    report: dict[str, Any], predictions: pd.DataFrame, min_cell: int
) -> dict[str, int]:
    """Assert every figure of ``fairness.json`` equals Fairlearn's; return what was compared.

    Every group of the data with at least ``min_cell`` rows must be in its slice, with its status
    as the small-group rule says; counts are compared for every listed group, every figure a
    shown group holds is compared, and each slice's rows add up (nothing left out uncounted).
    """
    params = report["params"]
    threshold, bins = params["threshold"], params["calibration_bins"]
    checked = {"slices": 0, "groups": 0, "figures": 0}
    overall = metric_frame(predictions.assign(_all="all"), ["_all"], threshold, bins).overall
    checked["figures"] += _check_group(report["overall"], overall, params, "overall")
    for item in report["slices"]:
        columns = list(item["columns"])
        by_group = metric_frame(predictions, columns, threshold, bins).by_group
        expected = {
            (key if isinstance(key, tuple) else (key,)): row for key, row in by_group.iterrows()
        }
        listed = {tuple(g["values"][c] for c in columns): g for g in item["groups"]}
        big_enough = {key for key, row in expected.items() if row["n"] >= min_cell}
        missing = big_enough - set(listed)
        assert not missing, f"slice {columns}: groups with >= {min_cell} rows missing: {missing}"
        unknown = set(listed) - set(expected)
        assert not unknown, f"slice {columns}: groups not in the predictions: {unknown}"
        for key, group in listed.items():
            where = f"{item['name']}={' × '.join(key)}"
            checked["figures"] += _check_group(group, expected[key], params, where)
            checked["groups"] += 1
        summary = item["summary"]
        if "n_rows_compared" in summary:
            assert summary["n_rows_compared"] + summary["n_rows_left_out"] == len(predictions), (
                f"{item['name']}: rows compared + left out != all rows"
            )
        reported = {k for k, g in listed.items() if g.get("status", "reported") == "reported"}
        checked["figures"] += _check_summary(item, predictions, reported, threshold)
        checked["slices"] += 1
    return checked


def check_groups_json(
    records: list[dict[str, Any]], predictions: pd.DataFrame, threshold: float
) -> int:
    """Assert each figure of ``groups.json`` (one row per column and group) equals Fairlearn's."""
    threshold_free = ("roc_auc", "brier", "mean_score")
    figures = 0
    by_column: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        by_column.setdefault(record["column"], []).append(record)
    for column, rows in by_column.items():
        frame = metric_frame(predictions, [column], threshold, 10).by_group
        for record in rows:
            row = frame.loc[record["group"]]
            where = f"groups.json {column}={record['group']}"
            assert (record["n"], record["n_pos"]) == (row["n"], row["n_pos"]), where
            for metric in (*RATE_METRICS, *threshold_free):
                if metric in record and record[metric] is not None:
                    _close(record[metric], row[metric], f"{where}: {metric}")
                    figures += 1
    return figures
