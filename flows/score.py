"""The scoring flow: resolve the alias → check rows against the contract → score → record."""

from __future__ import annotations

from prefect import flow

from evenflow.config.score import ScoreParams
from evenflow.config.settings import EvenflowSettings
from evenflow.usecases.score import ScoringResult
from tasks.artifacts import publish_scoring
from tasks.scoring import record_scoring, resolve_model, score_rows, start_scoring_run
from tasks.tracking import finish_tracking


@flow(name="score")
def score_batch(params: ScoreParams) -> ScoringResult:
    """Score a batch with the model behind an alias (``champion`` by default).

    Rows that break the dataset's contract are written to a rejects file with the rules they
    failed, never scored; the predictions carry the model's name, version, alias and run id and
    the input's md5 (as columns, in a sidecar ``<out>.json`` and as Parquet metadata). The run is
    logged to MLflow in the ``NAME-scoring`` experiment. The input file is only read, and only
    ``params.chunk_rows`` rows of it are held at a time; the results do not depend on that size.
    """
    settings = EvenflowSettings()
    # Model: a missing alias stops here, before anything is read or logged.
    model = resolve_model(params, settings)
    run_id = start_scoring_run(params, settings, model)
    try:
        # Check, score and write chunk by chunk (rejects, predictions, then the sidecar)
        result = score_rows(params, settings, model, run_id)
        record_scoring(params, settings, run_id, result)
        publish_scoring(result)
    except BaseException:
        finish_tracking(settings, run_id, failed=True)
        raise
    finish_tracking(settings, run_id, failed=False)
    return result
