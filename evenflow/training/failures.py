"""Which training failures are the infrastructure's (a lost worker or peer: worth a retry) and which are ours."""

from __future__ import annotations

import errno

from distributed import KilledWorker
from distributed.comm.core import CommClosedError

from evenflow.errors import EvenflowError


class WorkerLost(RuntimeError):
    """A Dask worker left the cluster while it was training: an infrastructure failure."""


# Phrases of XGBoost / LightGBM errors raised when a peer of the collective went away.
_PEER_LOSS_WORDS = (
    "socket",
    "connection",
    "connect",
    "peer",
    "collective",
    "communicator",
    "tracker",
    "allreduce",
    "broken pipe",
    "timed out",
    "timeout",
    "worker",
)


#: Errors of this machine's files: a retry would meet them again, they are not a lost peer.
_LOCAL_FILE_ERRORS = (
    FileNotFoundError,
    FileExistsError,
    IsADirectoryError,
    NotADirectoryError,
    PermissionError,
)


def _disk_full(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno == errno.ENOSPC


def is_infrastructure_failure(exc: BaseException) -> bool:
    """Whether ``exc`` is an infrastructure failure, worth a retry.

    True for a lost worker, connection or collective peer (also as the cause of ``exc``);
    False for code and data errors (``EvenflowError``, ``ValueError``, ``KeyError``, ...).
    """
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, EvenflowError):
            return False
        if isinstance(current, _LOCAL_FILE_ERRORS) or _disk_full(current):
            return False
        if isinstance(
            current, KilledWorker | CommClosedError | WorkerLost | TimeoutError | OSError
        ):
            return True
        if _is_peer_loss(current):
            return True
        if isinstance(current, BaseExceptionGroup):
            pending.extend(current.exceptions)
        pending.extend(e for e in (current.__cause__, current.__context__) if e is not None)
    return False


def _is_peer_loss(exc: BaseException) -> bool:
    """An XGBoost or LightGBM error whose message says a collective peer was lost."""
    kind = type(exc)
    if not (
        kind.__module__.startswith(("xgboost", "lightgbm")) and kind.__name__.endswith("Error")
    ):
        return False
    message = str(exc).lower()
    return any(word in message for word in _PEER_LOSS_WORDS)
