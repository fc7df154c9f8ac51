"""Clean ends: what a killed evenflow process left running is closed by the next command.

Every command sweeps when it starts (cheap: a folder listing, unless something is to be closed).
The records come from :mod:`evenflow.ops.owners`. For each process that is gone, its MLflow
runs still RUNNING are ended as KILLED with the reason as a tag, and the local Prefect API it
started is stopped, if that process is still the Prefect server it was (a pid can be reused).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import psutil  # type: ignore[import-untyped]

from evenflow.config.settings import EvenflowSettings
from evenflow.ops.owners import ProcessRecord, owners_dir, read_record

#: The tag that says why a run was ended by someone other than its own process.
END_REASON_TAG = "evenflow.end_reason"
#: What a local Prefect API started by evenflow runs (Prefect's own ephemeral server command).
_PREFECT_SERVER_MARK = "prefect.server.api.server:create_app"


def sweep(settings: EvenflowSettings) -> list[str]:
    """Close what dead evenflow processes left behind; one line per thing closed."""
    folder = owners_dir(settings)
    if not folder.is_dir():
        return []
    said: list[str] = []
    for path in sorted(folder.glob("*.json")):
        record = read_record(path)
        if record is None:
            path.unlink(missing_ok=True)
            continue
        if record.alive():
            continue
        said += _stop_server(record)
        said += _kill_runs(settings, record)
        path.unlink(missing_ok=True)
    return said


def _stop_server(record: ProcessRecord) -> list[str]:
    """Stop the dead process's local Prefect API, if it still runs."""
    pid = record.prefect_server_pid
    if pid is None:
        return []
    try:
        server = psutil.Process(pid)
        if _PREFECT_SERVER_MARK not in " ".join(server.cmdline()):
            return []
        server.terminate()
        try:
            server.wait(timeout=10)
        except psutil.TimeoutExpired:
            server.kill()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return []
    return [f"stopped the local Prefect API (pid {pid}) left by evenflow process {record.pid}"]


def _kill_runs(settings: EvenflowSettings, record: ProcessRecord) -> list[str]:
    """End the dead process's MLflow runs that are still RUNNING as KILLED, saying why."""
    if not record.mlflow_runs:
        return []
    # MLflow loads in seconds: only when there is a run to close, not on every command.
    from mlflow.entities import RunStatus  # noqa: PLC0415
    from mlflow.exceptions import MlflowException  # noqa: PLC0415

    from evenflow.registry import store  # noqa: PLC0415

    client = store.client_for(settings)
    when = datetime.now(UTC).isoformat(timespec="seconds")
    reason = (
        f"evenflow process {record.pid} ended without closing this run (killed or crashed); "
        f"marked KILLED by the next evenflow command at {when}"
    )
    said = []
    for run_id in record.mlflow_runs:
        try:
            run = client.get_run(run_id)
            if run.info.status != RunStatus.to_string(RunStatus.RUNNING):
                continue
            client.set_tag(run_id, END_REASON_TAG, reason)
            client.set_terminated(run_id, status="KILLED", end_time=int(time.time() * 1000))
        except MlflowException as exc:
            said.append(f"could not close MLflow run {run_id} left by process {record.pid}: {exc}")
            continue
        said.append(f"marked MLflow run {run_id} KILLED: its process {record.pid} is gone")
    return said
