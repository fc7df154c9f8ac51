"""Scoring stages: resolve the alias, open the scoring run, check + score + write, record."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.runtime import flow_run

from evenflow.config.score import ScoreParams
from evenflow.config.settings import EvenflowSettings
from evenflow.govern import lineage
from evenflow.registry import store as registry
from evenflow.usecases import champion
from evenflow.usecases import score as scoring
from evenflow.usecases.score import ScoringResult
from evenflow.usecases.score_engine import ScoringModel
from tasks.progress import stage
from tasks.tracking import open_run


@task(name="resolve-model")
def resolve_model(params: ScoreParams, settings: EvenflowSettings) -> ScoringModel:
    """Find the version behind the alias; fail at once if there is none.

    A ``champion`` that the promotion ledger did not set is refused here too.
    """
    with stage("model", params.model_uri) as done:
        model = scoring.resolve_model(settings, params)
        champion.guard_alias(settings, model.name, model.alias, model.version)
        done.summary = f"{model.name} version {model.version} (run {model.run_id})"
    return model


@task(name="start-scoring-run")
def start_scoring_run(params: ScoreParams, settings: EvenflowSettings, model: ScoringModel) -> str:
    """Open the MLflow run in the ``NAME-scoring`` experiment, tagged with lineage and the model."""
    input_md5 = scoring.input_md5(params.data)
    code = lineage.code_version(settings.code_root)
    tags = lineage.lineage_tags(input_md5, code, params.params_hash(), str(flow_run.get_id()))
    run_name = f"{params.name}-scoring-{flow_run.get_name() or 'local'}"
    run_id = open_run(
        settings,
        f"{params.name}-scoring",
        run_name,
        scoring.scoring_tags(model, input_md5, tags),
    )
    registry.log_params(settings, run_id, params.model_dump(mode="json"))
    return run_id


@task(name="score-rows")
def score_rows(
    params: ScoreParams, settings: EvenflowSettings, model: ScoringModel, run_id: str
) -> ScoringResult:
    """Check each row against the contract, score the rest, write predictions and rejects.

    The batch goes through in chunks of ``params.chunk_rows`` rows; the outputs appear only
    when every chunk succeeded.
    """
    with stage("score", f"{params.data.name} with {model.uri} (version {model.version})") as done:
        result = scoring.score_file(
            settings, params, model, scoring_run_id=run_id, flow_run_id=str(flow_run.get_id())
        )
        totals = result.totals
        done.summary = (
            f"{totals.n_scored:,} of {totals.n_input:,} rows scored, {totals.n_rejected:,} "
            f"rejected → {result.out_path}"
        )
    logger = get_run_logger()
    if totals.n_rejected:
        logger.warning(
            "%d rows failed the contract and were not scored (%s); see %s",
            totals.n_rejected,
            scoring.describe_rejects(result.rejected_by_rule),
            result.rejects_path,
        )
    for line in result.warnings:
        logger.warning("contract: %s", line)
    return result


@task(name="record-scoring")
def record_scoring(
    params: ScoreParams, settings: EvenflowSettings, run_id: str, result: ScoringResult
) -> None:
    """Log counts, the sidecar and the rejects' summary (their rows only if asked)."""
    scoring.log_scoring(settings, run_id, result, log_rejected_rows=params.log_rejected_rows)
