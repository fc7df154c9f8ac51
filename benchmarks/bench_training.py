"""Training overheads on the built-in example, as ratios measured in one run.

(a) ``xgboost.dask`` ÷ plain ``xgboost.train``: same rows, same parameters, same number of rounds
    (no early stopping, so both do the same work), same total threads.
(b) the whole training flow (validate → shard → train → evaluate → explain → gate → register)
    ÷ the plain ``xgboost.train`` time on the same rows with early stopping on valid.
(c) a warm re-run of the flow with nothing changed ÷ the cold run (content-hash caching).
Prefect's ephemeral server is started before either flow is timed, so neither pays for it.

    .venv/bin/python -m benchmarks.bench_training [--rounds 300]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd
import xgboost as xgb
import xgboost.dask as dxgb

from evenflow.config.run import RunParams, builtin_example
from evenflow.data.features import label_values, typed_features
from evenflow.records import ShardManifest
from evenflow.training.cluster import dask_client
from evenflow.training.partitions import LABEL, pinned_frame
from evenflow.training.xgboost_dask import booster_params


def _plain_matrices(manifest: ShardManifest) -> tuple[xgb.QuantileDMatrix, xgb.QuantileDMatrix]:
    def load(split: str) -> tuple[pd.DataFrame, pd.Series]:
        frame = pd.concat(
            [pd.read_parquet(p) for p in manifest.split_paths(split)], ignore_index=True
        )
        return typed_features(frame, manifest.features), label_values(
            frame[manifest.target], manifest.positive_label
        )

    x_train, y_train = load("train")
    x_valid, y_valid = load("valid")
    train = xgb.QuantileDMatrix(x_train, y_train, enable_categorical=True)
    return train, xgb.QuantileDMatrix(x_valid, y_valid, ref=train, enable_categorical=True)


def _timed(fn: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - started


def _dask_seconds(
    manifest: ShardManifest, params: RunParams, xgb_params: dict[str, Any], rounds: int
) -> float:
    with dask_client(None, params.cluster) as client:
        train, _ = pinned_frame(client, manifest, "train", keep=[])
        features = [f.name for f in manifest.features]
        dtrain = dxgb.DaskQuantileDMatrix(
            client, train[features], train[LABEL], enable_categorical=True
        )
        _, seconds = _timed(lambda: dxgb.train(client, xgb_params, dtrain, num_boost_round=rounds))
    return seconds


def stage_seconds(flow_run_id: Any) -> dict[str, float]:
    """Seconds each task of a flow run took, by task name, as Prefect recorded them."""
    from prefect.client.orchestration import get_client  # noqa: PLC0415 (after PREFECT_HOME)
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId  # noqa: PLC0415

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
        )
    seconds: dict[str, float] = {}
    for task_run in runs:
        name = task_run.name.rsplit("-", 1)[0]  # "validate-batch-3ef" → "validate-batch"
        seconds[name] = round(seconds.get(name, 0.0) + task_run.total_run_time.total_seconds(), 2)
    return dict(sorted(seconds.items(), key=lambda item: -item[1]))


def run(rounds: int = 300, params: RunParams | None = None) -> dict[str, Any]:
    """Run the flow (cold, then warm) on a dataset, then time plain and Dask training on its shards.

    Without ``params`` the dataset is the built-in example.
    """
    params = params or builtin_example()
    with tempfile.TemporaryDirectory(prefix="evenflow-bench-") as root:
        os.environ["EVENFLOW_PROJECT_ROOT"] = root
        os.environ.setdefault("EVENFLOW_CODE_ROOT", str(Path(__file__).resolve().parents[1]))
        os.environ["PREFECT_HOME"] = str(Path(root) / "prefect")
        Path(os.environ["PREFECT_HOME"]).mkdir()
        # Prefect reads PREFECT_HOME when it loads, so the flows are imported only now.
        from benchmarks.prefect_warmup import start_prefect  # noqa: PLC0415
        from flows.train_and_register import train_and_register  # noqa: PLC0415

        start_prefect()
        state, flow_seconds = _timed(lambda: train_and_register(params, return_state=True))
        version = state.result()
        stages = stage_seconds(state.state_details.flow_run_id)
        _, warm_seconds = _timed(lambda: train_and_register(params))
        manifest_path = next(Path(root, "mlruns").rglob("manifest.json"))
        manifest = ShardManifest.model_validate_json(manifest_path.read_text())
        threads = params.cluster.n_workers * params.cluster.threads_per_worker
        xgb_params = booster_params(params.model, "cpu", threads)
        dtrain, dvalid = _plain_matrices(manifest)
        _, plain_fixed = _timed(lambda: xgb.train(xgb_params, dtrain, num_boost_round=rounds))
        _, plain_early = _timed(
            lambda: xgb.train(
                xgb_params,
                dtrain,
                num_boost_round=params.model.num_boost_round,
                evals=[(dvalid, "valid")],
                early_stopping_rounds=params.model.early_stopping_rounds,
                verbose_eval=False,
            )
        )
        dask_worker_params = booster_params(params.model, "cpu", params.cluster.threads_per_worker)
        dask_fixed = _dask_seconds(manifest, params, dask_worker_params, rounds)
    return {
        "benchmark": "training",
        "rows_train": manifest.split_rows("train"),
        "rounds_fixed": rounds,
        "threads": threads,
        "registered_version": version.version,
        "flow_seconds": round(flow_seconds, 2),
        "flow_stage_seconds": stages,
        "flow_warm_rerun_seconds": round(warm_seconds, 2),
        "ratio_warm_over_cold": round(warm_seconds / flow_seconds, 3),
        "xgboost_train_early_stopping_seconds": round(plain_early, 2),
        "xgboost_train_fixed_seconds": round(plain_fixed, 2),
        "xgboost_dask_fixed_seconds": round(dask_fixed, 2),
        "ratio_flow_over_xgboost_train": round(flow_seconds / plain_early, 2),
        "ratio_dask_over_xgboost_train": round(dask_fixed / plain_fixed, 2),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=300)
    print(json.dumps(run(parser.parse_args().rounds)))
