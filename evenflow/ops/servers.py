"""Are the servers a command will use answering? Asked in seconds, before anything starts.

MLflow's client retries an unreachable tracking server for minutes and Prefect's for as long,
each ending in a traceback. A command that uses a server (a tracking server, a Prefect API, a Dask
scheduler named in the settings) asks each once, with a short timeout, and stops with one line
naming the server and what to do.
"""

from __future__ import annotations

import os
import socket
from urllib.error import HTTPError, URLError
from urllib.parse import urlsplit
from urllib.request import urlopen

from evenflow.config.settings import EvenflowSettings, is_tracking_server
from evenflow.errors import InfrastructureError

_TIMEOUT_S = 5.0
_HINT = "start it (`evenflow stack up`, then `source .evenflow/stack/env`) or unset {variable}"


def check_servers(settings: EvenflowSettings) -> None:
    """Every server named in the settings answers.

    Raises:
        InfrastructureError: naming the server that does not, and what to do.
    """
    if is_tracking_server(settings.tracking_uri):
        _http_answers(
            "the MLflow tracking server", f"{settings.tracking_uri}/health", "EVENFLOW_TRACKING_URI"
        )
    prefect_api = os.environ.get("PREFECT_API_URL")
    if prefect_api:
        _http_answers("the Prefect API", f"{prefect_api.rstrip('/')}/health", "PREFECT_API_URL")
    if settings.dask_address:
        _port_answers("the Dask scheduler", settings.dask_address, "EVENFLOW_DASK_ADDRESS")


def _http_answers(what: str, url: str, variable: str) -> None:
    try:
        with urlopen(url, timeout=_TIMEOUT_S):  # a URL from the user's own settings
            return
    except HTTPError:
        return  # it answered (even 401 or 404): it runs
    except (URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise InfrastructureError(
            f"{what} at {url.rsplit('/', 1)[0]} does not answer ({reason}): "
            + _HINT.format(variable=variable)
        ) from None


def _port_answers(what: str, address: str, variable: str) -> None:
    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    try:
        with socket.create_connection((parts.hostname or "", parts.port or 8786), _TIMEOUT_S):
            return
    except OSError as exc:
        raise InfrastructureError(
            f"{what} at {address} does not answer ({exc.strerror or exc}): "
            + _HINT.format(variable=variable)
        ) from None
