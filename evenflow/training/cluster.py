"""The Dask cluster training runs on: connect or start one, and ask which workers are alive now."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

from distributed import Client, LocalCluster

from evenflow.config.run import ClusterParams, ModelParams
from evenflow.errors import ConfigError
from evenflow.logs import family, held_at
from evenflow.training.device import device_plan
from evenflow.training.failures import WorkerLost

logger = logging.getLogger(__name__)
#: The root of Dask's loggers.
DASK_LOGGER = "distributed"


@contextmanager
def dask_client(
    address: str | None, cluster: ClusterParams, model: ModelParams | None = None
) -> Iterator[Client]:
    """Connect to ``address``, or start a local cluster for the block.

    The local cluster has one worker per GPU (``dask_cuda.LocalCUDACluster``) when ``model``
    trains on CUDA, else ``cluster.n_workers`` worker processes.
    """
    if address:
        with Client(address) as client:
            _wait_for_a_worker(client, address)
            yield client
        return
    plan = device_plan(model.device, model.trainer) if model is not None else None
    if plan is not None and plan.cuda_cluster:
        from dask_cuda import LocalCUDACluster  # type: ignore[import-not-found]  # noqa: PLC0415

        logger.info("starting a LocalCUDACluster, one worker per GPU (%s)", plan.reason)
        local: Any = LocalCUDACluster(
            threads_per_worker=cluster.threads_per_worker,
            dashboard_address=":0",
            silence_logs=logging.WARNING,
        )
    else:
        if plan is not None and plan.reason.startswith("auto:"):
            logger.info("training on CPU: %s", plan.reason.removeprefix("auto: "))
        local = LocalCluster(
            n_workers=cluster.n_workers,
            threads_per_worker=cluster.threads_per_worker,
            processes=True,
            dashboard_address=":0",
            silence_logs=logging.WARNING,
        )
    with closing_quietly_when_clean() as resources:
        resources.enter_context(local)
        yield resources.enter_context(Client(local))


@contextmanager
def closing_quietly_when_clean() -> Iterator[ExitStack]:
    """An exit stack closed with Dask's shutdown warnings hidden, when its block succeeded.

    Closing a local cluster, the nanny warns that a worker "still alive after 4.0 seconds" is
    being killed: on a busy machine that is how every normal close ends, and it is not a warning
    to the person who asked for training. A block that failed closes with every line shown (a
    worker that died is why it failed); errors are shown either way.
    """
    with ExitStack() as resources:
        yield resources
        clean = resources.pop_all()
    with held_at(logging.ERROR, *family(DASK_LOGGER)):
        clean.close()


def _wait_for_a_worker(client: Client, address: str, timeout_s: float = 60.0) -> None:
    """An external scheduler may be between workers (a nanny restarting one): wait, then say so."""
    try:
        client.wait_for_workers(1, timeout=timeout_s)
    except TimeoutError as exc:
        raise ConfigError(
            f"the Dask scheduler at {address} has no workers after {timeout_s:.0f} s: "
            "start some (`dask worker " + address + "`) or unset EVENFLOW_DASK_ADDRESS"
        ) from exc


def live_workers(client: Client) -> dict[str, dict[str, Any]]:
    """The workers the scheduler knows now, asked directly.

    Not ``client.scheduler_info()``: it returns a cache that the client's periodic refresh
    overwrites with a summary holding no workers, so under load it can come back empty while every
    worker is alive (a false "worker lost" that cost one 10M-row training attempt).
    """
    if client.scheduler is None:
        raise WorkerLost("the Dask client is not connected to a scheduler")
    identity = client.sync(client.scheduler.identity, n_workers=-1)
    workers: dict[str, dict[str, Any]] = identity["workers"]
    return workers


def ranked_workers(client: Client) -> list[str]:
    """Worker addresses in rank order.

    XGBoost ranks workers by task id "[xgboost.dask-<worker name>]:<address>"; pinning in the
    same order keeps shard i on rank i mod n across clusters, so re-runs build the same model.
    """
    info = live_workers(client)
    if not info:
        raise WorkerLost("the Dask scheduler has no workers left")
    return sorted(info, key=lambda address: f"[xgboost.dask-{info[address]['name']}]:{address}")
