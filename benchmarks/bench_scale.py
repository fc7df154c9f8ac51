"""Training overheads at scale: the training benchmark on synthetic Adult-like data.

Writes ``--rows`` rows x 30 features with ``evenflow synth``'s generator into a temporary folder, then
runs ``bench_training`` on it: the whole flow (cold and warm) and ``xgboost.dask`` against plain
``xgboost.train`` on the same rows and threads. Issue 6's goals: dask / train <= 1.3 and
flow / training <= 1.15 at 10M rows.

    .venv/bin/python -m benchmarks.bench_scale [--rows 1000000]
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import bench_training
from evenflow.config.run import RunParams
from evenflow.data.planted_parquet import write_planted_parquet


def run(rows: int = 1_000_000, features: int = 30) -> dict[str, Any]:
    """Generate the data, then run the training benchmark on it."""
    with tempfile.TemporaryDirectory(prefix="evenflow-scale-") as scratch:
        started = time.perf_counter()
        manifest = write_planted_parquet(rows, Path(scratch) / "synth", n_features=features)
        generated = time.perf_counter() - started
        params = RunParams.from_mapping(
            {
                "dataset": {
                    "name": "synth",
                    "path": str(manifest.path),
                    "target": manifest.target,
                    "positive_label": manifest.positive_label,
                    "sensitive": list(manifest.sensitive),
                },
                "shards": {"n_shards": 8},
                "model": {"device": "cpu"},
            }
        )
        result = bench_training.run(params=params)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        **result,
        "benchmark": "scale",
        "rows": rows,
        "features": features,
        "generate_seconds": round(generated, 2),
        "driver_peak_rss_mib": round(peak_mib),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    print(json.dumps(run(parser.parse_args().rows)))
