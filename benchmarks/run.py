"""Run every benchmark once; write benchmarks/results.json and benchmarks/results.md."""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

from benchmarks import bench_fairness, bench_training, bench_workers
from evenflow.io import write_json_atomic, write_text_atomic

OUT = Path(__file__).parent


def machine() -> str:
    """Describe the machine the figures come from."""
    return f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"


def table(results: list[dict[str, Any]]) -> str:
    """Markdown table: one row per figure."""
    lines = [f"Machine: {machine()}", "", "| benchmark | figure | value |", "|---|---|---|"]
    for result in results:
        name = result["benchmark"]
        lines += [
            f"| {name} | {key} | {value} |" for key, value in result.items() if key != "benchmark"
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    """Run the benchmarks in sequence (they share the machine's two cores)."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DVC_NO_ANALYTICS", "1")
    os.environ.setdefault("DASK_DISTRIBUTED__LOGGING__DISTRIBUTED", "warning")
    results = [bench_training.run(), bench_fairness.run(1000, 3, None), bench_workers.run()]
    write_json_atomic(OUT / "results.json", {"machine": machine(), "results": results})
    write_text_atomic(OUT / "results.md", table(results))
    print(table(results))


if __name__ == "__main__":
    main()
