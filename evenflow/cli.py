"""The ``evenflow`` command line: parses arguments into params models and calls flows. No logic."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from evenflow.errors import EvenflowError
from evenflow.params import DatasetSpec, RunParams, builtin_example
from evenflow.settings import EvenflowSettings

if TYPE_CHECKING:
    from evenflow.promotion import LedgerEntry

app = typer.Typer(
    help="evenflow: fair, explainable, reproducible tabular models.", no_args_is_help=True
)
expectations_app = typer.Typer(
    help="Data contracts (Great Expectations suites).", no_args_is_help=True
)
app.add_typer(expectations_app, name="expectations")

DataOption = Annotated[Path | None, typer.Option("--data", help="CSV or Parquet file to train on.")]
TargetOption = Annotated[str | None, typer.Option("--target", help="Label column.")]
PositiveOption = Annotated[
    str | None, typer.Option("--positive-label", help="Target value that counts as positive.")
]
SensitiveOption = Annotated[
    str | None, typer.Option("--sensitive", help="Sensitive columns, comma-separated.")
]
NameOption = Annotated[
    str | None, typer.Option("--name", help="Dataset name (default: file stem).")
]


def _prepare_environment(settings: EvenflowSettings) -> None:
    """Keep Prefect's state in the project and every library's telemetry off, before Prefect loads."""
    defaults = {
        "PREFECT_HOME": str(settings.state_dir / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
        "PREFECT_LOGGING_EXTRA_LOGGERS": "evenflow",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
        "DASK_DISTRIBUTED__LOGGING__DISTRIBUTED": "warning",
        "DVC_NO_ANALYTICS": "1",
        "DO_NOT_TRACK": "1",
    }
    for key, value in defaults.items():
        os.environ.setdefault(key, value)
    Path(os.environ["PREFECT_HOME"]).mkdir(parents=True, exist_ok=True)


class _NoTracebackForKnownErrors(logging.Filter):
    """Drop the engine's traceback records for our own errors: the CLI states them in plain words."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], EvenflowError))


def _quiet_known_errors() -> None:
    for handler in logging.getLogger().handlers:
        handler.addFilter(_NoTracebackForKnownErrors())


def _fail(exc: EvenflowError) -> None:
    first, *rest = str(exc).splitlines() or [type(exc).__name__]
    typer.echo(f"error: {first}", err=True)
    for line in rest:
        typer.echo(f"  - {line}", err=True)
    raise typer.Exit(code=2)


def _dataset_from_flags(
    data: Path,
    target: str | None,
    positive_label: str | None,
    sensitive: str | None,
    name: str | None,
) -> dict[str, Any]:
    missing = [
        flag
        for flag, value in (
            ("--target", target),
            ("--positive-label", positive_label),
            ("--sensitive", sensitive),
        )
        if value is None
    ]
    if missing:
        raise EvenflowError(f"--data {data} also needs {', '.join(missing)}")
    return {
        "name": name or _dataset_name(data),
        "path": str(data.resolve()),
        "target": target,
        "positive_label": positive_label,
        "sensitive": sensitive,
    }


def _dataset_name(data: Path) -> str:
    """A dataset name from a file name: its stem, with unusual characters replaced."""
    return re.sub(r"[^A-Za-z0-9_.-]", "-", data.name.split(".")[0])


def _run_params(
    config: Path | None, data: Path | None, dataset_flags: dict[str, Any], overrides: dict[str, Any]
) -> RunParams:
    if data is not None:
        dataset = _dataset_from_flags(data, **dataset_flags)
        base = RunParams.from_yaml(config) if config else None
        if base is None:
            return RunParams.from_mapping(
                {"dataset": dataset, **overrides}, source="command-line flags"
            )
        return base.with_overrides({"dataset": dataset, **overrides})
    base = RunParams.from_yaml(config) if config else builtin_example()
    return base.with_overrides(overrides) if overrides else base


@app.command()
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
) -> None:
    """Validate, shard, train, evaluate and register a candidate (the built-in example by default)."""
    settings = EvenflowSettings()
    _prepare_environment(settings)
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
    flags = {
        "target": target,
        "positive_label": positive_label,
        "sensitive": sensitive,
        "name": name,
    }
    try:
        params = _run_params(config, data, flags, overrides)
        from flows.train_and_register import train_and_register

        _quiet_known_errors()
        version = train_and_register(params, compare_mitigations=compare_mitigations)
    except EvenflowError as exc:
        _fail(exc)
    typer.echo(
        f"registered {version.name} version {version.version} as 'candidate' (run {version.run_id})\n"
        f"review it: mlflow ui --backend-store-uri {settings.tracking_uri}"
    )


@app.command()
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
    from evenflow import handoff

    settings = EvenflowSettings()
    _prepare_environment(settings)
    dataset = name or _dataset_name(path)
    try:
        report = handoff.validate_candidate(
            settings, path, dataset, fail_on_schema_change=fail_on_schema_change
        )
    except EvenflowError as exc:
        _fail(exc)
    typer.echo(handoff.render_handoff(report))
    raise typer.Exit(code=0 if report.passed else 1)


ModelArgument = Annotated[str, typer.Argument(help="Registered model name (the dataset name).")]
ReviewerOption = Annotated[str, typer.Option("--reviewer", help="Who decides.")]
NoteOption = Annotated[str, typer.Option("--note", help="Why, in the reviewer's words.")]


@app.command()
def review(
    model: ModelArgument,
    version: Annotated[str | None, typer.Argument(help="Version (default: the candidate).")] = None,
) -> None:
    """Show a version beside the champion and record that its evidence was reviewed."""
    from evenflow import promotion

    settings = EvenflowSettings()
    _prepare_environment(settings)
    try:
        summary = promotion.review(settings, model, version)
        promotion.record_review(settings, model, summary.version.version, summary)
    except EvenflowError as exc:
        _fail(exc)
    typer.echo(promotion.render_review(summary))


@app.command()
def promote(
    model: ModelArgument,
    version: Annotated[str, typer.Argument(help="Version to make champion.")],
    reviewer: ReviewerOption,
    note: NoteOption,
    override: Annotated[
        str | None, typer.Option(help="Promote despite failed gates; the reason is recorded.")
    ] = None,
) -> None:
    """Make a reviewed version champion (refused if it failed its gates or its evidence changed)."""
    from evenflow import promotion

    _ledger_action(
        lambda s: promotion.promote(s, model, version, reviewer, note, override=override)
    )


@app.command()
def reject(
    model: ModelArgument,
    version: Annotated[str, typer.Argument(help="Version to reject.")],
    reviewer: ReviewerOption,
    note: NoteOption,
) -> None:
    """Record that a reviewer rejected a version (nothing is deleted)."""
    from evenflow import promotion

    _ledger_action(lambda s: promotion.reject(s, model, version, reviewer, note))


@app.command()
def rollback(model: ModelArgument, reviewer: ReviewerOption, note: NoteOption) -> None:
    """Give champion back to the previous champion recorded in the ledger."""
    from evenflow import promotion

    _ledger_action(lambda s: promotion.rollback(s, model, reviewer, note))


@app.command()
def history(model: ModelArgument) -> None:
    """Print the model's append-only promotion ledger."""
    from evenflow import promotion

    settings = EvenflowSettings()
    _prepare_environment(settings)
    try:
        entries = promotion.history(settings, model)
    except EvenflowError as exc:
        _fail(exc)
    typer.echo(promotion.render_history(entries))


def _ledger_action(action: Callable[[EvenflowSettings], LedgerEntry]) -> None:
    from evenflow import promotion

    settings = EvenflowSettings()
    _prepare_environment(settings)
    try:
        entry = action(settings)
    except EvenflowError as exc:
        _fail(exc)
    typer.echo(promotion.render_history([entry]))


@app.command()
def reproduce(
    run_id: Annotated[str, typer.Argument(help="MLflow run id of a training run.")],
) -> None:
    """Rebuild a run from its commit and data hash; exit 0 only if predictions are identical."""
    from evenflow.reproduce import reproduce as rebuild

    settings = EvenflowSettings()
    _prepare_environment(settings)
    try:
        result = rebuild(settings, run_id)
    except EvenflowError as exc:
        _fail(exc)
    origin = f"commit {result.git_commit[:12]}, data {result.data_md5}"
    if result.git_dirty:
        typer.echo(f"note: run {run_id} was made from a dirty tree (diff: lineage/git_diff.json)")
    if result.identical:
        typer.echo(
            f"identical: all {result.n_rows:,} test predictions match bit for bit ({origin})"
        )
        return
    typer.echo(
        f"DIFFERENT: {result.n_different:,} of {result.n_rows:,} test predictions differ, "
        f"max |score difference| {result.max_abs_difference:.3g} ({origin})",
        err=True,
    )
    raise typer.Exit(code=1)


@app.command()
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
    from evenflow.synth import write_planted_parquet

    manifest = write_planted_parquet(
        rows, out, seed=seed, chunk_rows=chunk_rows, n_features=features
    )
    typer.echo(manifest.model_dump_json(indent=2))
    typer.echo(
        f"train on it: evenflow run --data {out} --target {manifest.target} "
        f"--positive-label '{manifest.positive_label}' --sensitive {','.join(manifest.sensitive)}"
    )


@expectations_app.command("init")
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
    from evenflow import contracts, pipeline
    from evenflow.datasets import read_table

    settings = EvenflowSettings()
    try:
        spec = DatasetSpec.model_validate(
            _dataset_from_flags(data, target, positive_label, sensitive, name)
        )
        path = pipeline.contract_path(settings, spec)
        if path.exists() and not force:
            raise EvenflowError(f"{path} exists; pass --force to overwrite it")
        suite = contracts.infer_suite(read_table(spec.path), spec)
        contracts.write_suite(suite, path)
    except EvenflowError as exc:
        _fail(exc)
    typer.echo(f"wrote {len(suite['expectations'])} expectations to {path}")


def _nested(flat: dict[str, Any]) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for dotted, value in flat.items():
        if value is None:
            continue
        section, key = dotted.split(".")
        nested.setdefault(section, {})[key] = value
    return nested
