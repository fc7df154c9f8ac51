"""The stack is locked: loopback only, and anonymous writes are refused by MLflow and Prefect."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import httpx
import psutil  # type: ignore[import-untyped]

from evenflow.ops.stack.config import known_processes
from evenflow.ops.stack.detached import read_pid
from tests.integration.conftest import RunningStack


def listening_addresses(pid: int) -> set[tuple[str, int]]:
    """Every (address, port) that the process ``pid`` or one of its children listens on."""
    root = psutil.Process(pid)
    addresses = set()
    for process in (root, *root.children(recursive=True)):
        for conn in process.net_connections(kind="inet"):
            if conn.status == psutil.CONN_LISTEN:
                addresses.add((conn.laddr.ip, conn.laddr.port))
    return addresses


def test_no_stack_process_listens_beyond_loopback(server_stack: RunningStack) -> None:
    state_dir: Path = server_stack.config.state_dir
    seen: dict[str, set[tuple[str, int]]] = {}
    for spec in known_processes(state_dir):
        pid = read_pid(state_dir, spec.name)
        assert pid is not None, f"{spec.name} has no pid file"
        seen[spec.name] = listening_addresses(pid)
    assert all(seen.values()), f"a service listens nowhere: {seen}"
    exposed = {
        name: sorted(addr for addr in addresses if not ipaddress.ip_address(addr[0]).is_loopback)
        for name, addresses in seen.items()
    }
    assert not any(exposed.values()), f"listening beyond loopback: {exposed}"


def test_prefect_refuses_anonymous_writes(server_stack: RunningStack) -> None:
    api = server_stack.env["PREFECT_API_URL"]
    user, password = server_stack.env["PREFECT_API_AUTH_STRING"].split(":", 1)
    with httpx.Client(timeout=10) as http:
        assert http.post(f"{api}/flows/", json={"name": "anonymous"}).status_code == 401
        wrong = http.post(f"{api}/flows/", json={"name": "guess"}, auth=(user, "not-it"))
        assert wrong.status_code == 401
        assert http.post(f"{api}/flows/filter", json={}).status_code == 401
        assert http.get(f"{api}/health").status_code == 200
        created = http.post(f"{api}/flows/", json={"name": "admin-flow"}, auth=(user, password))
        assert created.status_code in {200, 201}
        names = {
            flow["name"]
            for flow in http.post(f"{api}/flows/filter", json={}, auth=(user, password)).json()
        }
    assert "admin-flow" in names
    assert not names & {"anonymous", "guess"}
