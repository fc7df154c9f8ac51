"""Time the monitoring core on 1M rows x 15 feature columns per side (reference and batch).

Both sides are Adult-like synthetic data (``evenflow.data.synth``, 15 features: the planted schema padded
with noise columns); the batch has two planted shifts (``age`` + 8 years, a new ``workclass``
mix) and carries labels, so the whole core runs: per-column drift (normed Wasserstein / PSI) and
prediction drift through Evidently, then performance, per-group metrics and the fairness report
(``evenflow.usecases.monitor.assess``). The model is a quick HistGradientBoostingClassifier fitted on 20k
reference rows; its fit and the data generation are not timed.

    .venv/bin/python benchmarks/bench_monitor.py [--rows 1000000] [--max-rows N] [--bootstrap 1000]

Prints one JSON line: seconds (total and per step), peak traced memory of the timed call, peak
RSS of the process, rows compared per side, and the columns flagged.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier

from evenflow.config.fairness import FairnessParams
from evenflow.config.monitor import DriftPolicy
from evenflow.config.run import DatasetSpec
from evenflow.data.planted_parquet import (
    POSITIVE_LABEL,
    SENSITIVE,
    TARGET,
    feature_names,
    training_chunk,
)
from evenflow.data.synth import PlantedEffects as Effects
from evenflow.data.synth import plan_planted
from evenflow.govern.monitoring import ChampionEvaluation
from evenflow.records import FeatureSpec, RawBatch
from evenflow.usecases.monitor import assess
from tests.monitoring_inputs import unregistered_model

N_FEATURES = 15
CHUNK = 250_000
MOVED_SHARE = 0.4
# The planted data as a dataset: its label, its sensitive columns and no split column.
DATASET = DatasetSpec(
    name="synth",
    path=Path("batch.parquet"),
    target=TARGET,
    positive_label=POSITIVE_LABEL,
    sensitive=SENSITIVE,
)


def synth_frame(n_rows: int, seed: int) -> pd.DataFrame:
    """``n_rows`` Adult-like training rows with 15 features and the label column."""
    truth = plan_planted(Effects())
    features = feature_names(N_FEATURES)
    chunks = [
        training_chunk(i, min(CHUNK, n_rows - start), seed, truth, features)
        for i, start in enumerate(range(0, n_rows, CHUNK))
    ]
    return pd.concat(chunks, ignore_index=True)


def plant_drift(frame: pd.DataFrame, seed: int = 3) -> pd.DataFrame:
    """Shift ``age`` by 8 years and move 40% of rows to the rarest ``workclass``."""
    drifted = frame.copy()
    drifted["age"] = drifted["age"] + 8
    moved = np.random.default_rng(seed).random(len(drifted)) < MOVED_SHARE
    workclass = drifted["workclass"].astype(object)
    rarest = str(workclass.value_counts().idxmin())  # a real mix change, whatever the seed
    workclass[moved] = rarest
    drifted["workclass"] = workclass
    return drifted


def feature_specs(frame: pd.DataFrame) -> tuple[FeatureSpec, ...]:
    """Numeric columns as numeric, the rest as categorical (with their categories)."""
    specs = []
    for name in feature_names(N_FEATURES):
        column = frame[name]
        if pd.api.types.is_numeric_dtype(column):
            specs.append(FeatureSpec(name=name, kind="numeric"))
        else:
            categories = tuple(sorted(str(v) for v in column.dropna().unique()))
            specs.append(FeatureSpec(name=name, kind="categorical", categories=categories))
    return tuple(specs)


def quick_scorer(reference: pd.DataFrame, specs: tuple[FeatureSpec, ...], seed: int = 0) -> Any:
    """Fit a small gradient-boosted model on 20k reference rows; return a scorer of raw rows."""
    names = [f.name for f in specs]
    categorical = [f for f in specs if f.kind == "categorical"]

    def typed(frame: pd.DataFrame) -> pd.DataFrame:
        x = frame.loc[:, names].copy()
        for f in categorical:
            x[f.name] = pd.Categorical(x[f.name].astype(str), categories=list(f.categories))
        return x

    fit_rows = reference.sample(n=min(20_000, len(reference)), random_state=seed)
    model = HistGradientBoostingClassifier(
        categorical_features="from_dtype", max_iter=50, random_state=seed
    )
    model.fit(typed(fit_rows), (fit_rows[TARGET] == POSITIVE_LABEL).astype(int))

    def score(frame: pd.DataFrame) -> np.ndarray:
        return np.asarray(model.predict_proba(typed(frame))[:, 1], dtype=np.float64)

    return score


def run(
    rows: int = 1_000_000, max_rows: int | None = None, bootstrap: int = 1000
) -> dict[str, Any]:
    """Generate both sides, fit the quick model, then time ``assess`` once under tracemalloc."""
    reference = synth_frame(rows, seed=0)
    batch = plant_drift(synth_frame(rows, seed=1))
    specs = feature_specs(reference)
    scorer = quick_scorer(reference, specs)
    model = unregistered_model(DATASET, specs, FairnessParams(n_bootstrap=bootstrap))
    policy = DriftPolicy(max_rows=max_rows)
    raw = RawBatch(dataset=DATASET.name, path=DATASET.path, md5="-", n_rows=rows, columns=())
    with tempfile.TemporaryDirectory(prefix="bench-monitor-") as out:
        tracemalloc.start()
        started = time.perf_counter()
        report = assess(
            batch,
            reference,
            batch=raw,
            model=model,
            policy=policy,
            scorer=scorer,
            champion=ChampionEvaluation(),
            out_dir=Path(out),
        )
        seconds = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        html_mb = report.drift.evidently_html.stat().st_size / 2**20
    drift = report.drift
    return {
        "benchmark": "monitoring_core",
        "rows_per_side": rows,
        "feature_columns": len(specs),
        "rows_compared_reference": drift.rows_reference,
        "rows_compared_batch": drift.rows_batch,
        "sampled": drift.sampled,
        "seconds": round(seconds, 2),
        "seconds_by_step": report.seconds,
        "peak_traced_mib": round(peak / 2**20, 1),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "evidently_html_mib": round(html_mb, 2),
        "drifted_columns": list(drift.drifted_columns),
        "drift_values": {c.column: round(c.value, 4) for c in drift.columns},
        "prediction_drift": [drift.prediction.statistic, round(drift.prediction.value, 4)],
        "fairness_bootstrap": bootstrap,
        "cpus": os.cpu_count(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--max-rows", type=int, default=None, help="policy.max_rows (sample)")
    parser.add_argument("--bootstrap", type=int, default=1000)
    args = parser.parse_args()
    print(json.dumps(run(args.rows, args.max_rows, args.bootstrap)))


if __name__ == "__main__":
    main()
