"""Terminal output of the ops commands: the stack's services, a client's settings, served schedules.

Rendering only: the records come from ``evenflow.ops`` (a layer above), so they are described here
by the fields this module reads.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

from rich.console import Console
from rich.table import Table

#: Settings whose value is a secret: masked on the terminal.
PASSWORD_KEYS = ("MLFLOW_TRACKING_PASSWORD", "PREFECT_API_AUTH_STRING")
_WIDTH = 200  # wide enough that no row wraps: scripts read the columns


class ServiceRow(Protocol):
    """What ``stack status`` shows of one service."""

    @property
    def name(self) -> str:
        """Service or process name."""

    @property
    def pid(self) -> int | None:
        """Process id from its pid file (None for PostgreSQL, which runs elsewhere)."""

    @property
    def port(self) -> int:
        """Port it listens on."""

    @property
    def running(self) -> bool:
        """Whether its process runs."""

    @property
    def healthy(self) -> bool:
        """Whether it answers its health check."""


class ScheduleRow(Protocol):
    """A cron schedule of a served deployment."""

    @property
    def cron(self) -> str:
        """Cron string."""

    @property
    def timezone(self) -> str | None:
        """IANA time zone (None: UTC)."""


def render_status(statuses: Iterable[ServiceRow]) -> str:
    """A table: service, pid, port, health; one row per service, no borders (easy to parse)."""
    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    for column in ("service", "pid", "port", "health"):
        table.add_column(column, no_wrap=True)
    for item in statuses:
        table.add_row(item.name, str(item.pid or "-"), str(item.port), _health(item))
    return _text(table)


def render_env(env: Mapping[str, str]) -> str:
    """A client's settings for a terminal, passwords masked."""
    return "\n".join(
        f"{key}={'********' if key in PASSWORD_KEYS else value}" for key, value in env.items()
    )


def render_serving(deployments: Iterable[tuple[str, str, Sequence[ScheduleRow]]]) -> str:
    """One line per served deployment ``(flow, deployment, schedules)``: what runs when."""
    lines = []
    for flow, deployment, schedules in deployments:
        when = (
            ", ".join(f"cron '{s.cron}' ({s.timezone or 'UTC'})" for s in schedules)
            or "on demand (no schedule)"
        )
        lines.append(f"serving {flow}/{deployment}: {when}")
    return "\n".join(lines)


def _health(item: ServiceRow) -> str:
    if item.name == "postgres":
        return "reachable (external)" if item.healthy else "unreachable (external)"
    return "healthy" if item.healthy else ("unhealthy" if item.running else "stopped")


def _text(table: Table) -> str:
    console = Console(
        file=io.StringIO(), width=_WIDTH, color_system=None, highlight=False, emoji=False
    )
    with console.capture() as captured:
        console.print(table)
    return "\n".join(line.rstrip() for line in captured.get().splitlines())
