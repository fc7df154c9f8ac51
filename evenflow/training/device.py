"""Where training runs: the XGBoost device (CPU or CUDA) and the kind of local cluster, with the reason."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
from collections.abc import Sequence
from typing import Literal

import xgboost as xgb

from evenflow.errors import ConfigError
from evenflow.records import Record

Device = Literal["cpu", "cuda"]


class DevicePlan(Record):
    """Where training runs and why: the XGBoost device and the kind of local cluster to start."""

    device: Device
    cuda_cluster: bool
    reason: str


GPU_EXTRA_HINT = "dask-cuda not installed: `uv sync --extra gpu`"


def plan_device(
    requested: Literal["cpu", "cuda", "auto"],
    gpus: Sequence[str],
    *,
    xgboost_cuda: bool,
    dask_cuda: bool,
    trainer: Literal["xgboost", "lightgbm"] = "xgboost",
) -> DevicePlan:
    """Decide the training device and local cluster kind (a pure function).

    CUDA needs a visible GPU, a CUDA build of XGBoost and, for the local cluster of one worker per
    GPU, dask-cuda. ``auto`` falls back to CPU saying why; an explicit ``cuda`` that cannot be
    honoured is a ``ConfigError``. LightGBM is CPU-only in our build.
    """
    if trainer == "lightgbm":
        if requested == "cuda":
            raise ConfigError(
                "model.trainer 'lightgbm' is CPU-only in this build; use device cpu or auto"
            )
        return DevicePlan(device="cpu", cuda_cluster=False, reason="lightgbm is CPU-only here")
    if requested == "cpu":
        return DevicePlan(device="cpu", cuda_cluster=False, reason="cpu requested")
    if requested == "cuda":
        if not gpus or not xgboost_cuda:
            raise ConfigError(
                "model.device is 'cuda' but "
                + ("no GPU is visible" if not gpus else "this XGBoost build has no CUDA support")
            )
        if not dask_cuda:
            raise ConfigError(f"model.device is 'cuda' but {GPU_EXTRA_HINT}")
        return DevicePlan(
            device="cuda", cuda_cluster=True, reason=f"cuda requested; GPUs: {', '.join(gpus)}"
        )
    missing = (
        "no GPU visible"
        if not gpus
        else "XGBoost built without CUDA"
        if not xgboost_cuda
        else GPU_EXTRA_HINT
        if not dask_cuda
        else None
    )
    if missing is not None:
        return DevicePlan(device="cpu", cuda_cluster=False, reason=f"auto: {missing}")
    return DevicePlan(device="cuda", cuda_cluster=True, reason=f"auto: GPU visible ({gpus[0]})")


def device_plan(
    requested: Literal["cpu", "cuda", "auto"], trainer: Literal["xgboost", "lightgbm"] = "xgboost"
) -> DevicePlan:
    """``plan_device`` for this machine: its GPUs, its XGBoost build, whether dask-cuda imports."""
    if requested == "cpu":  # no probing needed
        return plan_device("cpu", [], xgboost_cuda=False, dask_cuda=False, trainer=trainer)
    return plan_device(
        requested,
        visible_gpus(),
        xgboost_cuda=bool(xgb.build_info().get("USE_CUDA")),
        dask_cuda=importlib.util.find_spec("dask_cuda") is not None,
        trainer=trainer,
    )


def resolve_device(requested: Literal["cpu", "cuda", "auto"]) -> tuple[Device, str]:
    """Pick the XGBoost training device and say why (see ``plan_device``)."""
    plan = device_plan(requested)
    return plan.device, plan.reason


def visible_gpus() -> list[str]:
    """Names of the GPUs ``nvidia-smi`` can see (empty when there is none)."""
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        listing = subprocess.run(
            ["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20, check=True
        ).stdout
    except (subprocess.SubprocessError, OSError):
        return []
    return [line.strip() for line in listing.splitlines() if line.startswith("GPU")]
