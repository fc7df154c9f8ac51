"""``evenflow run``: flags into a run's parameters, a check in seconds, then the training flow."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from evenflow.cli.environment import run_flow, servers_answer, settings
from evenflow.cli.options import (
    FLAGS_SOURCE,
    DataOption,
    NameOption,
    PositiveOption,
    SensitiveOption,
    TargetOption,
    dataset_from_flags,
)
from evenflow.cli.ui import next_commands, render_next
from evenflow.config.run import RunParams, builtin_example
from evenflow.usecases import preflight


def run(
    config: Annotated[
        Path | None, typer.Option("--config", help="Run configuration (YAML).")
    ] = None,
    data: DataOption = None,
    target: TargetOption = None,
    positive_label: PositiveOption = None,
    sensitive: SensitiveOption = None,
    name: NameOption = None,
    n_shards: Annotated[int | None, typer.Option(help="Parquet shards per split.")] = None,
    workers: Annotated[int | None, typer.Option(help="Local Dask workers.")] = None,
    threads: Annotated[int | None, typer.Option(help="Threads per Dask worker.")] = None,
    device: Annotated[str | None, typer.Option(help="cpu, cuda or auto.")] = None,
    trainer: Annotated[str | None, typer.Option(help="xgboost or lightgbm.")] = None,
    num_boost_round: Annotated[
        int | None, typer.Option(help="Upper bound of boosting rounds.")
    ] = None,
    compare_mitigations: Annotated[
        bool, typer.Option(help="Also train every mitigation and write the trade-off table.")
    ] = False,
    force: Annotated[
        bool,
        typer.Option(
            help="Register a new version even when one already holds the same data, parameters, "
            "code and environment."
        ),
    ] = False,
) -> None:
    """Validate, shard, train, evaluate and register a candidate (the built-in example by default)."""
    overrides = _nested(
        {
            "shards.n_shards": n_shards,
            "cluster.n_workers": workers,
            "cluster.threads_per_worker": threads,
            "model.device": device,
            "model.trainer": trainer,
            "model.num_boost_round": num_boost_round,
        }
    )
    flags = {"target": target, "positive_label": positive_label, "sensitive": sensitive}
    params = _run_params(config, data, {**flags, "name": name}, overrides)
    _warn_unmarked_personal(params, preflight.check_run(params))
    servers_answer()
    from flows.train_and_register import train_and_register

    version = run_flow(
        train_and_register, params, compare_mitigations=compare_mitigations, force=force
    )
    if version.existing:
        typer.echo(
            f"nothing new: {version.name} version {version.version} already holds this build "
            f"(run {version.run_id}); pass --force to register anyway"
        )
    else:
        typer.echo(
            f"registered {version.name} version {version.version} as 'candidate' "
            f"(run {version.run_id})"
        )
    alias = version.aliases[0] if version.aliases else None
    typer.echo(render_next(next_commands(settings(), version.name, alias, version.version)))


def _warn_unmarked_personal(params: RunParams, columns: tuple[str, ...]) -> None:
    for column in preflight.unmarked_personal(params, columns):
        typer.echo(
            f"warning: column '{column}' looks like personal data: list it in "
            "dataset.personal_columns to keep it out of features, shards, predictions and logs",
            err=True,
        )


def _run_params(
    config: Path | None, data: Path | None, dataset_flags: dict[str, Any], overrides: dict[str, Any]
) -> RunParams:
    """The run's parameters: a YAML file or the built-in example, the flags on top."""
    if data is not None:
        dataset = dataset_from_flags(data, **dataset_flags)
        if config is None:
            return RunParams.from_mapping({"dataset": dataset, **overrides}, source=FLAGS_SOURCE)
        return RunParams.from_yaml(config).with_overrides({"dataset": dataset, **overrides})
    base = RunParams.from_yaml(config) if config else builtin_example()
    return base.with_overrides(overrides) if overrides else base


def _nested(flat: dict[str, Any]) -> dict[str, Any]:
    """``{"model.device": "cpu"}`` → ``{"model": {"device": "cpu"}}``, flags not given left out."""
    nested: dict[str, Any] = {}
    for dotted, value in flat.items():
        if value is None:
            continue
        section, key = dotted.split(".")
        nested.setdefault(section, {})[key] = value
    return nested
