"""The ``evenflow`` command line: parses arguments into params models and calls flows. No logic."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from evenflow.config.run import DatasetSpec, RunParams, builtin_example
from evenflow.config.settings import EvenflowSettings
from evenflow.contracts.preflight import check_dataset
from evenflow.errors import EvenflowError

if TYPE_CHECKING:
    from evenflow.govern.ledger import LedgerEntry

app = typer.Typer(
    help="evenflow: fair, explainable, reproducible tabular models.", no_args_is_help=True
)
expectations_app = typer.Typer(
    help="Data contracts (Great Expectations suites).", no_args_is_help=True
)
app.add_typer(expectations_app, name="expectations")
stack_app = typer.Typer(
    help="The server stack (MLflow, Prefect, Dask) as local processes.", no_args_is_help=True
)
app.add_typer(stack_app, name="stack")

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
    _show_cache_reasons()


# The logger of the cache policy (tasks/caching.py): one line per cached stage saying why it re-ran.
CACHE_LOGGER = "evenflow.cache"


def _show_cache_reasons() -> None:
    """Cache lines (``cache train: miss, code changed: ...``) at INFO on the console.

    The root logger (Prefect's console handler) shows warnings only, so library noise stays hidden;
    the cache logger alone is lowered to INFO and its records propagate to that handler. Prefect's
    configuration leaves this level alone (it only resets its own loggers' children).
    """
    logging.getLogger(CACHE_LOGGER).setLevel(logging.INFO)


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
    force: Annotated[
        bool,
        typer.Option(
            help="Register a new version even when one already holds the same data, parameters, "
            "code and environment."
        ),
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
        # Seconds, before any server starts: the file and every column the run names.
        check_dataset(params.dataset)
        from flows.train_and_register import train_and_register

        _quiet_known_errors()
        version = train_and_register(params, compare_mitigations=compare_mitigations, force=force)
    except EvenflowError as exc:
        _fail(exc)
    if version.existing:
        typer.echo(
            f"nothing new: {version.name} version {version.version} already holds this build "
            f"(run {version.run_id}); pass --force to register anyway"
        )
        return
    typer.echo(
        f"registered {version.name} version {version.version} as 'candidate' (run {version.run_id})\n"
        f"review it: {_review_hint(settings.tracking_uri)}"
    )


def _review_hint(tracking_uri: str) -> str:
    """Where a reviewer looks: the tracking server itself, or a local UI over the SQLite store."""
    if tracking_uri.startswith(("http://", "https://")):
        return f"open {tracking_uri} (MLflow tracking server)"
    return f"mlflow ui --backend-store-uri {tracking_uri}"


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
    from evenflow.reports.handoff import render_handoff
    from evenflow.usecases import handoff

    settings = EvenflowSettings()
    _prepare_environment(settings)
    dataset = name or _dataset_name(path)
    try:
        report = handoff.validate_candidate(
            settings, path, dataset, fail_on_schema_change=fail_on_schema_change
        )
    except EvenflowError as exc:
        _fail(exc)
    typer.echo(render_handoff(report))
    raise typer.Exit(code=0 if report.passed else 1)


@app.command()
def monitor(
    data: Annotated[Path, typer.Option("--data", help="New batch (CSV or Parquet).")],
    name: NameOption = None,
    model: Annotated[
        str | None,
        typer.Option("--model", help="MODEL or MODEL@ALIAS (default: NAME@champion)."),
    ] = None,
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
    settings = EvenflowSettings()
    _prepare_environment(settings)
    from evenflow.config.monitor import MonitorParams, parse_model_ref
    from evenflow.usecases.monitor import DriftDetected
    from flows.monitor import monitor_batch

    try:
        model_name, alias = parse_model_ref(model) if model else (None, None)
        flags = {
            "dataset": name or _dataset_name(data),
            "data": str(data.resolve()),
            "model": model_name,
            "alias": alias,
            **(
                {"retrain": True, "retrain_config": str(retrain_config.resolve())}
                if retrain_config
                else {}
            ),
        }
        given = {k: v for k, v in flags.items() if v is not None}
        params = (
            MonitorParams.from_yaml(config, given)
            if config
            else MonitorParams.from_mapping(given, source="command-line flags")
        )
        _quiet_known_errors()
        report = monitor_batch(params)
    except DriftDetected as exc:
        typer.echo(f"error: {exc.summary}", err=True)
        for line in exc.breaches:
            typer.echo(f"  - {line}", err=True)
        raise typer.Exit(code=1) from None
    except EvenflowError as exc:
        _fail(exc)
    typer.echo(f"{report.headline()}\nreport: {report.html_path}")


ModelArgument = Annotated[str, typer.Argument(help="Registered model name (the dataset name).")]
ReviewerOption = Annotated[str, typer.Option("--reviewer", help="Who decides.")]
NoteOption = Annotated[str, typer.Option("--note", help="Why, in the reviewer's words.")]


@app.command()
def review(
    model: ModelArgument,
    version: Annotated[str | None, typer.Argument(help="Version (default: the candidate).")] = None,
) -> None:
    """Show a version beside the champion and record that its evidence was reviewed."""
    from evenflow.govern.review import review as read_review
    from evenflow.reports.review import render_review
    from evenflow.usecases.review import record_review

    settings = EvenflowSettings()
    _prepare_environment(settings)
    try:
        summary = read_review(settings, model, version)
        record_review(settings, model, summary.version.version, summary)
    except EvenflowError as exc:
        _fail(exc)
    typer.echo(render_review(summary))


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
    from evenflow.govern import promotion

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
    from evenflow.govern import promotion

    _ledger_action(lambda s: promotion.reject(s, model, version, reviewer, note))


@app.command()
def rollback(model: ModelArgument, reviewer: ReviewerOption, note: NoteOption) -> None:
    """Give champion back to the previous champion recorded in the ledger."""
    from evenflow.govern import promotion

    _ledger_action(lambda s: promotion.rollback(s, model, reviewer, note))


@app.command()
def history(model: ModelArgument) -> None:
    """Print the model's append-only promotion ledger."""
    from evenflow.govern.ledger import history as read_history
    from evenflow.reports.review import render_history

    settings = EvenflowSettings()
    _prepare_environment(settings)
    try:
        entries = read_history(settings, model)
    except EvenflowError as exc:
        _fail(exc)
    typer.echo(render_history(entries))


def _ledger_action(action: Callable[[EvenflowSettings], LedgerEntry]) -> None:
    from evenflow.reports.review import render_history

    settings = EvenflowSettings()
    _prepare_environment(settings)
    try:
        entry = action(settings)
    except EvenflowError as exc:
        _fail(exc)
    typer.echo(render_history([entry]))


@app.command()
def reproduce(
    run_id: Annotated[str, typer.Argument(help="MLflow run id of a training run.")],
) -> None:
    """Rebuild a run from its commit and data hash; exit 0 only if predictions are identical."""
    from evenflow.usecases.reproduce import reproduce as rebuild

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
def score(
    data: Annotated[Path, typer.Option("--data", help="Batch to score (CSV or Parquet).")],
    out: Annotated[
        Path, typer.Option("--out", help="Predictions: Parquet, or CSV if it ends in .csv.")
    ],
    model: Annotated[
        str | None,
        typer.Option("--model", help="MODEL or MODEL@ALIAS (default: NAME@champion)."),
    ] = None,
    name: NameOption = None,
    chunk_rows: Annotated[
        int | None,
        typer.Option(help="Rows read, checked and scored at a time (default 1,000,000)."),
    ] = None,
) -> None:
    """Score a batch with the model behind an alias; rows breaking the contract go to rejects."""
    settings = EvenflowSettings()
    _prepare_environment(settings)
    from evenflow.config.score import ScoreParams
    from flows.score import score_batch

    try:
        flags: dict[str, object] = {
            "data": str(data),
            "out": str(out),
            "name": name or _dataset_name(data),
        }
        if chunk_rows is not None:
            flags["chunk_rows"] = chunk_rows
        params = ScoreParams.from_mapping({**flags, "model": model or ""}, "command-line flags")
        _quiet_known_errors()
        result = score_batch(params)
    except EvenflowError as exc:
        _fail(exc)
    typer.echo(
        f"scored {result.n_scored:,} of {result.n_input:,} rows with {result.model.name} "
        f"version {result.model.version} (@{result.model.alias}) → {result.out_path}\n"
        f"rejected {result.n_rejected:,} → {result.rejects_path}\nsummary: {result.summary_path}"
    )


@app.command()
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
    settings = EvenflowSettings()
    _prepare_environment(settings)
    from flows import deployments

    try:
        names = [part.strip() for item in only or [] for part in item.split(",") if part.strip()]
        selected = deployments.load_deployments(file or deployments.DEFAULT_FILE, names)
    except EvenflowError as exc:
        _fail(exc)
    for line in deployments.describe(selected):
        typer.echo(line)
    if not deployments.api_url():
        typer.echo(
            "warning: PREFECT_API_URL is not set; Prefect's ephemeral server cannot run "
            "schedules. Start a server (prefect server start) and set PREFECT_API_URL.",
            err=True,
        )
    deployments.serve(selected)


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
    from evenflow.data.synth import write_planted_parquet

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
    from evenflow.contracts import suite as contracts
    from evenflow.data.datasets import iter_chunks
    from evenflow.usecases import train as pipeline

    settings = EvenflowSettings()
    try:
        spec = DatasetSpec.model_validate(
            _dataset_from_flags(data, target, positive_label, sensitive, name)
        )
        path = pipeline.contract_path(settings, spec)
        if path.exists() and not force:
            raise EvenflowError(f"{path} exists; pass --force to overwrite it")
        chunks = iter_chunks(spec.path, spec.chunk_rows)
        suite = contracts.infer_suite_from_chunks(chunks, spec)
        contracts.write_suite(suite, path)
    except EvenflowError as exc:
        _fail(exc)
    typer.echo(f"wrote {len(suite['expectations'])} expectations to {path}")


PortOption = Annotated[int, typer.Option(min=1, max=65535)]


@stack_app.command("up")
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

    settings = EvenflowSettings()
    config = stack.StackConfig(
        state_dir=stack.stack_dir(settings),
        postgres_url=postgres_url,
        n_workers=workers,
        mlflow_port=mlflow_port,
        prefect_port=prefect_port,
        dask_port=dask_port,
        dask_http_port=dask_http_port,
        worker_port=worker_port,
        health_timeout_s=timeout,
    )
    try:
        env = stack.up(config)
        statuses = stack.status(config.state_dir)
    except EvenflowError as exc:
        _fail(exc)
    typer.echo(stack.render_status(statuses))
    typer.echo(f"\n{stack.render_env(env)}")
    typer.echo(f"\nuse it: source {config.state_dir / stack.ENV_FILE}")


@stack_app.command("status")
def stack_status() -> None:
    """Show each service of the stack with its pid, port and health (exit 1 unless all healthy)."""
    from evenflow.ops import stack

    try:
        statuses = stack.status(stack.stack_dir(EvenflowSettings()))
    except EvenflowError as exc:
        _fail(exc)
    typer.echo(stack.render_status(statuses))
    if not all(item.healthy for item in statuses):
        raise typer.Exit(code=1)


@stack_app.command("down")
def stack_down(
    timeout: Annotated[float, typer.Option(help="Seconds before SIGKILL.", min=0)] = 20.0,
) -> None:
    """Stop every service of the stack (its databases and artifacts are kept)."""
    from evenflow.ops import stack

    stopped = stack.down(stack.stack_dir(EvenflowSettings()), timeout_s=timeout)
    for name, pid, how in stopped:
        typer.echo(f"{name} (pid {pid}) {how}")
    if not stopped:
        typer.echo("nothing was running")


def _nested(flat: dict[str, Any]) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for dotted, value in flat.items():
        if value is None:
            continue
        section, key = dotted.split(".")
        nested.setdefault(section, {})[key] = value
    return nested
