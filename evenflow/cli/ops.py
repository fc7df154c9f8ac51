"""The ops commands: the local server stack, and serving the scheduled deployments."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from evenflow.cli.environment import settings
from evenflow.cli.options import comma_separated

PortOption = Annotated[int, typer.Option(min=1, max=65535)]


def stack_up(
    postgres_url: Annotated[
        str, typer.Option(help="PostgreSQL server; its databases are created if missing.")
    ] = "postgresql://postgres@127.0.0.1:5432",
    workers: Annotated[int, typer.Option(help="Dask worker processes.", min=1, max=64)] = 2,
    mlflow_port: PortOption = 5000,
    prefect_port: PortOption = 4200,
    dask_port: PortOption = 8786,
    dask_http_port: PortOption = 8787,
    worker_port: Annotated[
        int, typer.Option(help="First worker's port (then +1, +2...).", min=1, max=65535)
    ] = 8790,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for health.", min=1)] = 180.0,
) -> None:
    """Start MLflow (basic auth), Prefect, a Dask scheduler and workers; write .evenflow/stack/env."""
    from evenflow.ops import stack
    from evenflow.reports.stack import render_env, render_status

    config = stack.StackConfig(
        state_dir=stack.stack_dir(settings()),
        postgres_url=postgres_url,
        n_workers=workers,
        mlflow_port=mlflow_port,
        prefect_port=prefect_port,
        dask_port=dask_port,
        dask_http_port=dask_http_port,
        worker_port=worker_port,
        health_timeout_s=timeout,
    )
    env = stack.up(config)
    typer.echo(render_status(stack.status(config.state_dir)))
    typer.echo(f"\n{render_env(env)}")
    typer.echo(f"\nuse it: source {config.state_dir / stack.ENV_FILE}")


def stack_status() -> None:
    """Show each service of the stack with its pid, port and health (exit 1 unless all healthy)."""
    from evenflow.ops import stack
    from evenflow.reports.stack import render_status

    statuses = stack.status(stack.stack_dir(settings()))
    typer.echo(render_status(statuses))
    if not all(item.healthy for item in statuses):
        raise typer.Exit(code=1)


def stack_down(
    timeout: Annotated[float, typer.Option(help="Seconds before SIGKILL.", min=0)] = 20.0,
) -> None:
    """Stop every service of the stack (its databases and artifacts are kept)."""
    from evenflow.ops import stack

    stopped = stack.down(stack.stack_dir(settings()), timeout_s=timeout)
    for name, pid, how in stopped:
        typer.echo(f"{name} (pid {pid}) {how}")
    if not stopped:
        typer.echo("nothing was running")


def serve(
    file: Annotated[
        Path | None,
        typer.Option("--file", help="Deployments file (default: infra/prefect.yaml)."),
    ] = None,
    only: Annotated[
        list[str] | None,
        typer.Option("--only", help="Serve only these deployments (repeat or comma-separate)."),
    ] = None,
) -> None:
    """Serve the deployments of infra/prefect.yaml with their schedules on this machine (blocks)."""
    from evenflow.reports.stack import render_serving
    from flows import serve as serving

    selected = serving.load_deployments(file or serving.DEFAULT_FILE, comma_separated(only))
    typer.echo(render_serving((d.flow.name, d.spec.name, d.spec.schedules) for d in selected))
    if not serving.api_url():
        typer.echo(
            "warning: PREFECT_API_URL is not set; Prefect's ephemeral server cannot run "
            "schedules. Start a server (prefect server start) and set PREFECT_API_URL.",
            err=True,
        )
    serving.serve(selected)
