"""The data commands: a starter contract, a data team's check, scoring, monitoring, test data."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated, Any

import typer

from evenflow.cli.environment import run_flow, servers_answer, settings
from evenflow.cli.options import (
    FLAGS_SOURCE,
    ModelRefOption,
    NameOption,
    ScoreNameOption,
    dataset_from_flags,
    dataset_name,
)
from evenflow.config.run import DatasetSpec


def expectations_init(
    data: Annotated[Path, typer.Option("--data", help="CSV or Parquet file to infer from.")],
    name: Annotated[
        str, typer.Option("--name", help="Dataset name: writes expectations/NAME.json.")
    ],
    target: Annotated[str, typer.Option("--target", help="Label column.")],
    positive_label: Annotated[str, typer.Option("--positive-label", help="Positive label value.")],
    sensitive: Annotated[
        str, typer.Option("--sensitive", help="Sensitive columns, comma-separated.")
    ],
    force: Annotated[bool, typer.Option(help="Overwrite an existing suite.")] = False,
) -> None:
    """Infer a starter expectation suite from a data file, for the data team to review and edit."""
    from evenflow.usecases import starter

    spec = DatasetSpec.model_validate(
        dataset_from_flags(data, target, positive_label, sensitive, name)
    )
    path, count = starter.infer_contract(settings(), spec, force=force)
    typer.echo(f"wrote {count} expectations to {path}")


def validate(
    path: Annotated[Path, typer.Argument(help="Candidate batch (CSV or Parquet).")],
    name: NameOption = None,
    fail_on_schema_change: Annotated[
        bool, typer.Option(help="Also fail on missing columns or type changes.")
    ] = False,
) -> None:
    """Check a candidate batch against its contract and diff it with the champion's data.

    Exit 0 when it passes, 1 when it fails, 2 when it cannot be checked: ready for a data team's CI.
    """
    from evenflow.reports.handoff import render_handoff
    from evenflow.usecases import handoff

    report = handoff.validate_candidate(
        settings(), path, name or dataset_name(path), fail_on_schema_change=fail_on_schema_change
    )
    typer.echo(render_handoff(report))
    raise typer.Exit(code=0 if report.passed else 1)


def score(
    data: Annotated[Path, typer.Option("--data", help="Batch to score (CSV or Parquet).")],
    out: Annotated[
        Path, typer.Option("--out", help="Predictions: Parquet, or CSV if it ends in .csv.")
    ],
    model: ModelRefOption = None,
    name: ScoreNameOption = None,
    chunk_rows: Annotated[
        int | None,
        typer.Option(help="Rows read, checked and scored at a time (default 1,000,000)."),
    ] = None,
    keep_columns: Annotated[
        str | None,
        typer.Option(
            help="Input columns to copy into the outputs besides the model's own "
            "(comma-separated, e.g. an id); the others are left out."
        ),
    ] = None,
    log_rejected_rows: Annotated[
        bool,
        typer.Option(help="Log the rejected rows to MLflow (default: counts and row numbers)."),
    ] = False,
    reasons: Annotated[
        bool,
        typer.Option(
            help="Give each adverse decision its principal reasons (reason_1..k, exact TreeSHAP); "
            "sensitive columns and immutable features are never given."
        ),
    ] = True,
) -> None:
    """Score a batch with the model behind an alias; rows breaking the contract go to rejects.

    The contract is the one the model was trained under, as its run records it. Each adverse
    decision gets its principal reasons unless --no-reasons.
    """
    from evenflow.config.score import ScoreParams

    servers_answer()
    from evenflow.usecases.score import scoring_dataset

    model_ref = model or f"{name or dataset_name(data)}"
    flags: dict[str, object] = {
        "data": str(data),
        "out": str(out),
        "name": scoring_dataset(settings(), model_ref, name),
        "model": model or "",
        **({} if chunk_rows is None else {"chunk_rows": chunk_rows}),
        "keep_columns": keep_columns or (),
        "log_rejected_rows": log_rejected_rows,
        "reasons": reasons,
    }
    params = ScoreParams.from_mapping(flags, FLAGS_SOURCE)
    from flows.score import score_batch

    result = run_flow(score_batch, params)
    typer.echo(
        f"scored {result.totals.n_scored:,} of {result.totals.n_input:,} rows with {result.model.name} "
        f"version {result.model.version} (@{result.model.alias}) → {result.out_path}\n"
        f"rejected {result.totals.n_rejected:,} → {result.rejects_path}\n"
        f"summary: {result.summary_path}\n"
        f"{_reasons_line(result.reason_policy)}"
    )


def _reasons_line(policy: dict[str, Any]) -> str:
    """One line on the reasons: how many per adverse decision and what is never given."""
    if not policy.get("given"):
        return f"reasons: none given ({policy.get('why', 'not recorded')})"
    never = ", ".join(policy.get("excluded") or {}) or "nothing"
    return (
        f"reasons: reason_1..{policy['top_k']} for each adverse decision; "
        f"never given: {never} (sensitive or immutable)"
    )


def monitor(
    data: Annotated[Path, typer.Option("--data", help="New batch (CSV or Parquet).")],
    name: NameOption = None,
    model: ModelRefOption = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="Monitoring configuration (YAML).")
    ] = None,
    retrain_config: Annotated[
        Path | None,
        typer.Option("--retrain-config", help="On drift, train a candidate from this run YAML."),
    ] = None,
) -> None:
    """Check a new batch against a registered model: contract, drift, performance, fairness.

    Exit 0 within the drift policy, 1 on drift beyond it, 2 on bad input (contract, files, model).
    """
    from evenflow.config.monitor import MonitorParams, parse_model_ref

    model_name, alias = parse_model_ref(model) if model else (None, None)
    flags: dict[str, Any] = {
        "dataset": name or dataset_name(data),
        "data": str(data.resolve()),
        "model": model_name,
        "alias": alias,
    }
    if retrain_config:
        flags |= {"retrain": True, "retrain_config": str(retrain_config.resolve())}
    given = {key: value for key, value in flags.items() if value is not None}
    params = (
        MonitorParams.from_yaml(config, given)
        if config
        else MonitorParams.from_mapping(given, source=FLAGS_SOURCE)
    )
    servers_answer()
    from flows.monitor import monitor_batch

    report = run_flow(monitor_batch, params)
    from evenflow.reports.summaries import monitoring_headline

    typer.echo(f"{monitoring_headline(report)}\nreport: {report.html_path}")


def synth(
    rows: Annotated[int, typer.Option("--rows", help="Rows to generate.", min=1)],
    out: Annotated[Path, typer.Option("--out", help="Folder of parquet parts to write.")],
    seed: Annotated[int, typer.Option(help="Seed of the generator.")] = 0,
    chunk_rows: Annotated[
        int, typer.Option(help="Rows per part (bounds memory).", min=1)
    ] = 250_000,
    features: Annotated[
        int | None, typer.Option(help="Model input columns, padded with noise (at least 10).")
    ] = None,
) -> None:
    """Write Adult-like data with planted group effects, chunk by chunk (10M+ rows fit)."""
    from evenflow.usecases import starter

    manifest = starter.synthetic_data(
        rows, out, seed=seed, chunk_rows=chunk_rows, features=features
    )
    typer.echo(manifest.model_dump_json(indent=2))
    from evenflow.cli.ui import evenflow_command

    command = [
        "run",
        "--data",
        str(out),
        "--target",
        manifest.target,
        "--positive-label",
        manifest.positive_label,
        "--sensitive",
        ",".join(manifest.sensitive),
    ]
    typer.echo(f"train on it: {evenflow_command(settings())} {shlex.join(command)}")
