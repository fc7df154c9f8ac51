"""Time the fairness report on the built-in example's test split (target: under 10 s on 2 cores).

The score comes from a quick HistGradientBoostingClassifier fitted on the train rows (categorical
columns as pandas categories, which it encodes ordinally). Only ``fairness_report`` is timed.

    .venv/bin/python benchmarks/bench_fairness.py [--replicates 1000] [--repeats 3] [--html DIR]

Prints one JSON line: seconds (best of the repeats), replicates, n_groups, and the baseline figures.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score

from evenflow.assess.fairness import Estimate, FairnessReport, fairness_report
from evenflow.config.fairness import FairnessParams
from evenflow.config.run import BUILTIN_EXAMPLE
from evenflow.reports.fairness_html import write_fairness_report

SENSITIVE = ("sex", "race")
TARGET, POSITIVE = "income", ">50K"


def adult_test_predictions(seed: int = 0) -> pd.DataFrame:
    """Test-split predictions of a quick, honest model trained on the train split only."""
    frame = pd.read_csv(BUILTIN_EXAMPLE.parent / "adult.csv.gz")
    features = [c for c in frame.columns if c not in {TARGET, "split"}]
    x = frame[features].copy()
    for column in x.columns:
        if x[column].dtype == object:
            x[column] = x[column].astype("category")
    y = (frame[TARGET] == POSITIVE).astype(int)
    train, test = frame["split"] == "train", frame["split"] == "test"
    model = HistGradientBoostingClassifier(
        categorical_features="from_dtype", max_iter=300, learning_rate=0.08, random_state=seed
    )
    model.fit(x[train], y[train])
    score = model.predict_proba(x[test])[:, 1].astype(np.float64)
    rows = frame.loc[test, list(SENSITIVE)].reset_index(drop=True)
    rows.insert(0, "_row_id", np.flatnonzero(test.to_numpy()).astype(np.int64))
    rows["label"] = y[test].to_numpy()
    rows["score"] = score
    return rows


def _interval(value: Estimate | None) -> list[float | None]:
    if value is None:
        return [None, None, None]
    return [value.value, value.low, value.high]


def baseline(report: FairnessReport, predictions: pd.DataFrame) -> dict[str, object]:
    """The issue's headline figures for sex: accuracy, AUC, DPD and EOD with intervals."""
    sex = report.slice("sex").summary
    return {
        "accuracy": _interval(report.overall.accuracy),
        "auc": float(roc_auc_score(predictions["label"], predictions["score"])),
        "dpd_sex": _interval(sex.demographic_parity_difference),
        "eod_sex": _interval(sex.equalized_odds_difference),
        "calibration_gap_sex": _interval(sex.calibration_gap),
        "left_out": [f"{c.slice}: {c.group} ({c.status})" for c in report.left_out],
    }


def run(replicates: int = 1000, repeats: int = 3, html: Path | None = None) -> dict[str, object]:
    """Fit the quick model, time the report ``repeats`` times and return the result row."""
    predictions = adult_test_predictions()
    params = FairnessParams(n_bootstrap=replicates)
    timings = []
    report = None
    for _ in range(repeats):
        started = time.perf_counter()
        report = fairness_report(predictions, SENSITIVE, params)
        timings.append(time.perf_counter() - started)
    assert report is not None
    result: dict[str, object] = {
        "benchmark": "fairness_report",
        "seconds": round(min(timings), 3),
        "seconds_median": round(statistics.median(timings), 3),
        "replicates": replicates,
        "n_rows": report.n_rows,
        "n_groups": sum(len(s.groups) for s in report.slices) + 1,
        "n_slices": len(report.slices),
        "cpus": os.cpu_count(),
        **baseline(report, predictions),
    }
    if html is not None:
        started = time.perf_counter()
        write_fairness_report(report, html)
        result["render_seconds"] = round(time.perf_counter() - started, 3)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--replicates", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--html", type=Path, default=None, help="also write the report here")
    args = parser.parse_args()
    print(json.dumps(run(args.replicates, max(1, args.repeats), args.html)))


if __name__ == "__main__":
    main()
