"""Issue 6's benchmark suite: every figure a ratio measured in one run; JSON + a markdown table.

(a) ``xgboost.dask`` ÷ ``xgboost.train`` (same rows, rounds and total threads) at every size;
(b) the whole flow ÷ plain ``xgboost.train`` with early stopping, at the largest size;
(c) a warm re-run of the flow ÷ its cold run;
(d) out-of-core GX validation ÷ the same checks written in plain pandas (time, rows/s);
(e) Evidently data-drift report: time and peak memory of the process tree on 1M rows per side;
(f) LightGBM ÷ XGBoost training on Dask (same shards, workers and threads);
(g) 2 workers ÷ 1 worker (same 2 threads), training time;
(h) the monitoring core (``benchmarks.bench_monitor``), when that module is present.

Data: ``evenflow synth`` parts (30 features) under ``benchmarks/out/synth-<rows>``, generated once
and reused. Peak memory is the process and all its children (Dask workers, GX processes), sampled
by a background thread.

    .venv/bin/python -m benchmarks.run                    # 1M and 10M rows (make bench)
    .venv/bin/python -m benchmarks.run --quick            # 100k rows, a couple of minutes
    .venv/bin/python -m benchmarks.run --rows 200000 --out-name results-quick
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd
import psutil  # type: ignore[import-untyped]

from benchmarks import bench_training
from evenflow.assess import drift
from evenflow.config.run import ClusterParams, ModelParams, RunParams, ShardParams, SplitParams
from evenflow.contracts.suite import infer_suite
from evenflow.contracts.validation import validate_parquet
from evenflow.data import datasets
from evenflow.data.planted_parquet import write_planted_parquet
from evenflow.data.sharding import write_shard_chunks
from evenflow.io import write_json_atomic, write_text_atomic
from evenflow.records import ShardManifest
from evenflow.training.cluster import dask_client
from evenflow.training.engine import train_model
from evenflow.usecases.prepare import describe_shards

OUT = Path(__file__).parent
DATA = OUT / "out"
FEATURES = 30
FULL_ROWS = (1_000_000, 10_000_000)
QUICK_ROWS = (100_000,)
DRIFT_ROWS = 1_000_000
T = TypeVar("T")


# --- measuring ------------------------------------------------------------------------------


class PeakTreeRSS:
    """Peak resident memory of this process plus all its descendants, sampled in a thread."""

    def __init__(self, interval: float = 0.1) -> None:
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> PeakTreeRSS:
        self.peak = self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def peak_mib(self) -> float:
        return round(self.peak / 2**20, 1)

    @staticmethod
    def sample() -> int:
        """RSS of the tree now (processes that vanish mid-sample are skipped)."""
        root = psutil.Process()
        total = 0
        for process in [root, *root.children(recursive=True)]:
            try:
                total += process.memory_info().rss
            except psutil.Error:
                continue
        return total

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, self.sample())


@dataclass
class Timed:
    """A result with its wall time and the peak tree memory while it ran."""

    seconds: float
    peak_mib: float


@contextmanager
def measured() -> Iterator[Timed]:
    """Time a block and sample the process tree's memory while it runs."""
    timed = Timed(0.0, 0.0)
    with PeakTreeRSS() as memory:
        started = time.perf_counter()
        yield timed
        timed.seconds = time.perf_counter() - started
    timed.peak_mib = memory.peak_mib


def timed_call(fn: Callable[[], T]) -> tuple[T, Timed]:
    """Call ``fn`` under ``measured``."""
    with measured() as timed:
        result = fn()
    return result, timed


def machine() -> dict[str, Any]:
    """CPU model, cores, RAM and software of the machine the figures come from."""
    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "ram_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "os": platform.platform(terse=True),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


# --- data -----------------------------------------------------------------------------------


def synth_data(rows: int) -> Path:
    """``evenflow synth`` parts with 30 features, written once under benchmarks/out/."""
    path = DATA / f"synth-{rows}"
    if not path.is_dir():
        write_planted_parquet(rows, path, n_features=FEATURES)
    return path


def synth_params(path: Path, n_shards: int = 8) -> RunParams:
    """Run parameters of the flow on a synth folder (CPU, as the comparison needs)."""
    return RunParams.from_mapping(
        {
            "dataset": {
                "name": "synth",
                "path": str(path),
                "target": "income",
                "positive_label": ">50K",
                "sensitive": ["sex", "race"],
            },
            "shards": {"n_shards": n_shards},
            "model": {"device": "cpu"},
        }
    )


def shard_manifest(params: RunParams, root: Path) -> ShardManifest:
    """Shard the batch out of core into ``root`` (no DVC: the md5s are placeholders)."""
    spec = params.dataset
    shard_dir = root / "shards"
    shards, features = write_shard_chunks(
        datasets.iter_chunks(spec.path, spec.chunk_rows),
        spec,
        SplitParams(),
        ShardParams(n_shards=params.shards.n_shards),
        shard_dir,
    )
    return describe_shards(
        features,
        spec,
        raw_md5="benchmark",
        data_md5="unversioned.dir",
        shard_dir=shard_dir,
        shards=shards,
    )


# --- (a)-(c): training overheads ------------------------------------------------------------


def training_figures(rows: int, rounds: int) -> dict[str, Any]:
    """Flow cold and warm, plain and Dask XGBoost, on ``rows`` synthetic rows.

    Runs in a child process: Prefect binds its home folder at import, so each size gets a fresh
    interpreter (the child and its Dask workers count in the peak memory).
    """
    synth_data(rows)
    command = [sys.executable, "-m", "benchmarks.run", "--training-child", str(rows)]
    command += ["--rounds", str(rounds)]
    completed, timed = timed_call(
        lambda: subprocess.run(command, check=True, capture_output=True, text=True)
    )
    result: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return {**result, "rows": rows, "peak_tree_rss_mib": timed.peak_mib}


def _training_child(rows: int, rounds: int) -> None:
    print(json.dumps(bench_training.run(rounds, synth_params(synth_data(rows)))))


# --- (d): validation ------------------------------------------------------------------------


def plain_checks(frame: pd.DataFrame, suite: dict[str, Any]) -> dict[str, int]:
    """The inferred suite's checks in plain pandas: unexpected counts per expectation."""
    counts: dict[str, int] = {}
    for index, expectation in enumerate(suite["expectations"]):
        kind, kwargs = expectation["type"], expectation["kwargs"]
        column = kwargs.get("column")
        values = frame[column] if column is not None else None
        key = f"{index}:{kind}"
        if kind == "expect_table_columns_to_match_set":
            counts[key] = int(set(frame.columns) != set(kwargs["column_set"]))
        elif kind == "expect_table_row_count_to_be_between" or values is None:
            counts[key] = len(frame)
        elif kind == "expect_column_to_exist":
            counts[key] = 0
        elif kind == "expect_column_values_to_be_in_type_list":
            if values.dtype == object:
                counts[key] = int((~values.dropna().map(lambda v: isinstance(v, str))).sum())
            else:
                counts[key] = 0
        elif kind == "expect_column_values_to_not_be_null":
            counts[key] = int(values.isna().sum())
        elif kind == "expect_column_values_to_be_between":
            present = values.dropna()
            outside = (present < kwargs["min_value"]) | (present > kwargs["max_value"])
            counts[key] = int(outside.sum())
        elif kind == "expect_column_values_to_be_in_set":
            counts[key] = int((~values.dropna().isin(kwargs["value_set"])).sum())
        elif kind == "expect_column_distinct_values_to_contain_set":
            counts[key] = len(set(kwargs["value_set"]) - set(values.dropna().unique()))
    return counts


def validation_figures(path: Path, chunk_rows: int) -> dict[str, Any]:
    """GX out of core ÷ plain pandas on the same chunks and the same suite."""
    first = next(datasets.iter_chunks(path, chunk_rows))
    suite = infer_suite(first, synth_params(path).dataset)
    # Ranges from one chunk could fail on the rest: widen them, the work stays the same.
    for expectation in suite["expectations"]:
        if expectation["type"] == "expect_column_values_to_be_between":
            expectation["kwargs"]["min_value"] = -1e12
            expectation["kwargs"]["max_value"] = 1e12
    with tempfile.TemporaryDirectory(prefix="evenflow-bench-gx-") as out:
        report, gx_time = timed_call(
            lambda: validate_parquet(path, suite, Path(out), dataset="synth", chunk_rows=chunk_rows)
        )
    rows = report.n_rows

    def pandas_pass() -> int:
        return sum(
            sum(plain_checks(c, suite).values()) for c in datasets.iter_chunks(path, chunk_rows)
        )

    _, pandas_time = timed_call(pandas_pass)
    return {
        "rows": rows,
        "expectations": report.n_expectations,
        "gx_success": report.success,
        "gx_seconds": round(gx_time.seconds, 2),
        "pandas_seconds": round(pandas_time.seconds, 2),
        "gx_rows_per_second": round(rows / gx_time.seconds),
        "pandas_rows_per_second": round(rows / pandas_time.seconds),
        "ratio_gx_over_pandas": round(gx_time.seconds / pandas_time.seconds, 2),
        "gx_peak_tree_rss_mib": gx_time.peak_mib,
        "pandas_peak_tree_rss_mib": pandas_time.peak_mib,
    }


# --- (e): drift -----------------------------------------------------------------------------


def drift_figures(rows: int) -> dict[str, Any]:
    """Evidently drift report on ``rows`` rows per side (``age`` shifted in the current side)."""
    path = synth_data(rows)
    reference = pd.read_parquet(path)
    current = reference.sample(frac=1.0, random_state=1, ignore_index=True)
    current["age"] = current["age"] + 8
    numeric = [c for c in reference.columns if pd.api.types.is_numeric_dtype(reference[c])]
    categorical = [c for c in reference.columns if c not in numeric]
    before = PeakTreeRSS.sample()
    with tempfile.TemporaryDirectory(prefix="evenflow-bench-drift-") as out:
        summary, timed = timed_call(
            lambda: drift.data_drift_report(reference, current, numeric, categorical, Path(out))
        )
    return {
        "rows_per_side": rows,
        "columns": len(numeric) + len(categorical),
        "seconds": round(timed.seconds, 2),
        "peak_tree_rss_mib": timed.peak_mib,
        "peak_over_inputs_mib": round(timed.peak_mib - before / 2**20, 1),
        "drifted_columns": list(summary.drifted_columns),
    }


# --- (f), (g): trainers and workers ---------------------------------------------------------


def cluster_figures(rows: int) -> dict[str, Any]:
    """LightGBM ÷ XGBoost on 2×1 workers, and XGBoost on 2×1 ÷ 1×2 workers, same shards."""
    params = synth_params(synth_data(rows))
    seconds: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="evenflow-bench-cluster-") as tmp:
        root = Path(tmp)
        manifest = shard_manifest(params, root)
        runs = {
            "xgboost_2_workers": (ClusterParams(n_workers=2, threads_per_worker=1), "xgboost"),
            "lightgbm_2_workers": (ClusterParams(n_workers=2, threads_per_worker=1), "lightgbm"),
            "xgboost_1_worker": (ClusterParams(n_workers=1, threads_per_worker=2), "xgboost"),
        }
        for name, (cluster, trainer) in runs.items():
            model = ModelParams.model_validate({"trainer": trainer, "device": "cpu"})
            with dask_client(None, cluster) as client:
                result = train_model(
                    client, manifest, model, cluster.threads_per_worker, root / name
                )
            seconds[name] = result.train_seconds
    return {
        "rows": rows,
        **{f"train_seconds_{k}": round(v, 2) for k, v in seconds.items()},
        "ratio_lightgbm_over_xgboost": round(
            seconds["lightgbm_2_workers"] / seconds["xgboost_2_workers"], 2
        ),
        "ratio_2_workers_over_1": round(
            seconds["xgboost_2_workers"] / seconds["xgboost_1_worker"], 2
        ),
    }


# --- (h): monitoring (another module's benchmark) --------------------------------------------


def monitor_figures(rows: int) -> dict[str, Any] | None:
    """``benchmarks.bench_monitor.run`` when the module exists (it returns a dict)."""
    if importlib.util.find_spec("benchmarks.bench_monitor") is None:
        return None  # MONITOR: wire benchmarks.bench_monitor in here once it exists.
    module = importlib.import_module("benchmarks.bench_monitor")
    result: dict[str, Any] = module.run(rows=rows)
    return result


# --- the suite ------------------------------------------------------------------------------


def run_suite(sizes: tuple[int, ...], *, quick: bool) -> dict[str, Any]:
    """Run every benchmark once, in sequence (they share the machine's cores)."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DVC_NO_ANALYTICS", "1")
    os.environ.setdefault("DASK_DISTRIBUTED__LOGGING__DISTRIBUTED", "warning")
    # A loaded machine can take longer than Prefect's default 20 s to start its ephemeral API.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    started = time.perf_counter()
    small, large = min(sizes), max(sizes)
    drift_rows = min(DRIFT_ROWS, small) if quick else DRIFT_ROWS
    rounds = 50 if quick else 300
    details: dict[str, Any] = {}
    details["training"] = {str(rows): training_figures(rows, rounds) for rows in sizes}
    details["validation"] = validation_figures(
        synth_data(large), synth_params(synth_data(large)).dataset.chunk_rows
    )
    details["drift"] = drift_figures(drift_rows)
    details["cluster"] = cluster_figures(small)
    details["monitor"] = monitor_figures(drift_rows)
    figures = summary_rows(details, sizes)
    return {
        "date": datetime.datetime.now(tz=datetime.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "quick": quick,
        "sizes": list(sizes),
        "total_seconds": round(time.perf_counter() - started, 1),
        "figures": figures,
        "details": details,
    }


def summary_rows(details: dict[str, Any], sizes: tuple[int, ...]) -> list[dict[str, Any]]:
    """One row per figure (a)-(h): ratio, goal and what it was measured on."""
    rows: list[dict[str, Any]] = []
    training = details["training"]
    for size in sizes:
        t = training[str(size)]
        rows.append(
            {
                "id": "a",
                "figure": f"xgboost.dask ÷ xgboost.train, {size:,} rows, {t['threads']} threads",
                "value": t["ratio_dask_over_xgboost_train"],
                "goal": "≤ 1.3",
                "note": f"{t['xgboost_dask_fixed_seconds']} s ÷ {t['xgboost_train_fixed_seconds']} s, {t['rounds_fixed']} rounds",
            }
        )
    largest = training[str(max(sizes))]
    rows.append(
        {
            "id": "b",
            "figure": f"whole flow ÷ xgboost.train (early stopping), {max(sizes):,} rows",
            "value": largest["ratio_flow_over_xgboost_train"],
            "goal": "≤ 1.15",
            "note": f"{largest['flow_seconds']} s ÷ {largest['xgboost_train_early_stopping_seconds']} s; peak tree RSS {largest['peak_tree_rss_mib']:.0f} MiB; {_stages(largest)}",
        }
    )
    rows.append(
        {
            "id": "c",
            "figure": f"warm re-run ÷ cold run, {max(sizes):,} rows",
            "value": largest["ratio_warm_over_cold"],
            "goal": "",
            "note": f"{largest['flow_warm_rerun_seconds']} s ÷ {largest['flow_seconds']} s",
        }
    )
    v = details["validation"]
    rows.append(
        {
            "id": "d",
            "figure": f"GX validation (out of core) ÷ same checks in pandas, {v['rows']:,} rows",
            "value": v["ratio_gx_over_pandas"],
            "goal": "",
            "note": f"{v['gx_rows_per_second']:,} vs {v['pandas_rows_per_second']:,} rows/s; {v['expectations']} expectations; GX peak {v['gx_peak_tree_rss_mib']:.0f} MiB",
        }
    )
    d = details["drift"]
    rows.append(
        {
            "id": "e",
            "figure": f"drift report, {d['rows_per_side']:,} rows per side, {d['columns']} columns",
            "value": d["seconds"],
            "goal": "",
            "note": f"seconds; peak tree RSS {d['peak_tree_rss_mib']:.0f} MiB ({d['peak_over_inputs_mib']:.0f} MiB above the inputs)",
        }
    )
    c = details["cluster"]
    rows.append(
        {
            "id": "f",
            "figure": f"LightGBM ÷ XGBoost on Dask, {c['rows']:,} rows, 2 workers × 1 thread",
            "value": c["ratio_lightgbm_over_xgboost"],
            "goal": "",
            "note": f"{c['train_seconds_lightgbm_2_workers']} s ÷ {c['train_seconds_xgboost_2_workers']} s (early stopping)",
        }
    )
    rows.append(
        {
            "id": "g",
            "figure": f"2 workers × 1 thread ÷ 1 worker × 2 threads, {c['rows']:,} rows",
            "value": c["ratio_2_workers_over_1"],
            "goal": "",
            "note": f"{c['train_seconds_xgboost_2_workers']} s ÷ {c['train_seconds_xgboost_1_worker']} s",
        }
    )
    monitor = details.get("monitor")
    if monitor is not None:
        rows.append(
            {
                "id": "h",
                "figure": (
                    f"monitoring core, {monitor['rows_per_side']:,} rows per side × "
                    f"{monitor['feature_columns']} columns (seconds)"
                ),
                "value": monitor["seconds"],
                "goal": "",
                "note": _monitor_note(monitor),
            }
        )
    return rows


def table(results: dict[str, Any]) -> str:
    """The markdown table with the machine and the date."""
    m = results["machine"]
    lines = [
        f"Run {results['date']} on {m['cpu']}, {m['cores']} cores, {m['ram_gib']} GiB RAM, "
        f"Python {m['python']} (load average at start {m['load_average_at_start']}); "
        f"total {results['total_seconds']} s{' (quick mode)' if results['quick'] else ''}.",
        "",
        "| | figure | value | goal | measured |",
        "|---|---|---|---|---|",
    ]
    for row in results["figures"]:
        lines.append(
            f"| ({row['id']}) | {row['figure']} | {row['value']} | {row['goal']} | {row['note']} |"
        )
    return "\n".join(lines) + "\n"


def _stages(training: dict[str, Any]) -> str:
    """The flow's largest stages, as Prefect timed them."""
    stages = list(training.get("flow_stage_seconds", {}).items())[:5]
    return "stages: " + ", ".join(f"{name} {seconds:.0f} s" for name, seconds in stages)


def _monitor_note(monitor: dict[str, Any]) -> str:
    steps = monitor.get("seconds_by_step", {})
    sampled = "sampled" if monitor.get("sampled") else "no sampling"
    return (
        f"drift {steps.get('drift')} s + performance and fairness {steps.get('performance')} s; "
        f"{sampled}; peak RSS {monitor.get('peak_rss_mib', 0):.0f} MiB; "
        f"flagged {', '.join(monitor.get('drifted_columns', []))}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--rows", default=None, help="comma-separated sizes (default 1M,10M)")
    parser.add_argument("--quick", action="store_true", help="100k rows, 50 rounds: a check")
    parser.add_argument("--out-name", default="results", help="results file stem in benchmarks/")
    parser.add_argument("--training-child", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--rounds", type=int, default=300, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.training_child is not None:
        _training_child(args.training_child, args.rounds)
        return
    sizes: tuple[int, ...] = QUICK_ROWS if args.quick else FULL_ROWS
    if args.rows:
        sizes = tuple(int(float(part)) for part in args.rows.split(","))
    results = run_suite(sizes, quick=args.quick)
    write_json_atomic(OUT / f"{args.out_name}.json", results)
    write_text_atomic(OUT / f"{args.out_name}.md", table(results))
    print(table(results))


if __name__ == "__main__":
    main()
