"""Batch scoring: check each row against the data contract, score the rest with a registered model.

A batch is scored by the model version behind an alias (``champion`` by default), loaded as the
registered pyfunc (``models:/NAME@ALIAS``), so its threshold policy is applied exactly as in
serving. Rows that break the contract are not scored: they go to a rejects file, each with the
rules it failed (``evenflow.contracts.row_rules`` says why rules are checked in pandas rather than
by GX). A batch that is unusable as a whole (unreadable file, missing feature column, a column of
the wrong kind) stops with an error that names the file, column or rule.

The batch is read, checked, scored and written ``chunk_rows`` rows at a time
(``evenflow.usecases.score_engine``); the results do not depend on the chunk size:

- a CSV's chunks get the dtypes one whole-file ``read_csv`` would give (a first pass learns them),
  a Parquet batch's come from ``evenflow.data.datasets.iter_chunks``, which promises the same;
- what a contract says about the whole batch (a ``mostly`` share, a column holding no value of
  its kind, an empty label column, no row passing) is tallied across chunks and judged at the end;
- outputs are streamed to temp files beside their targets with one schema, fsync'd and renamed
  only when every chunk succeeded. The input file is only read.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from mlflow.exceptions import MlflowException
from pydantic import Field

from evenflow import layout
from evenflow.assess.reasons import ReasonPolicy, reason_columns, recorded_policy
from evenflow.config.monitor import parse_model_ref
from evenflow.config.run import ReasonParams
from evenflow.config.score import ScoreParams, output_format, rejects_path, summary_path
from evenflow.config.settings import EvenflowSettings
from evenflow.contracts import suite as contracts
from evenflow.contracts.row_check import BatchCheck, RowChecker
from evenflow.data.batch_io import open_batch, peek_columns
from evenflow.data.datasets import content_md5
from evenflow.errors import ConfigError, DataError
from evenflow.io import file_md5, write_json_atomic
from evenflow.records import Record
from evenflow.registry import store as registry
from evenflow.usecases import champion
from evenflow.usecases.score_engine import (
    INPUT_ROW,
    ReasonGiver,
    Scorer,
    ScoringModel,
    ScoringTotals,
    Totals,
    evenflow_model,
    load_pyfunc,
    one_draw_stream,
    output_columns,
    score_chunks,
    signature_types,
    staged_output,
    threshold_used,
)

logger = logging.getLogger(__name__)

TARGET_PARAM = "dataset.target"
"""The training run's parameter naming the label column."""
DATASET_PARAM = "dataset.name"
"""The training run's parameter naming its dataset, and so the contract it was trained under."""
_KIND = "scoring"
"""Value of the kind tag on a scoring run."""


class ScoringResult(Record):
    """What a scoring run wrote and counted."""

    dataset: str
    model: ScoringModel
    input_path: Path
    input_md5: str
    out_path: Path
    rejects_path: Path
    summary_path: Path = Field(description="Sidecar JSON beside the predictions (<out>.json).")
    totals: ScoringTotals
    rejected_by_rule: dict[str, int] = Field(description="Rows failing each rule.")
    threshold: str = Field(description="How decisions were made: the policy or the threshold.")
    warnings: tuple[str, ...] = ()
    reason_policy: dict[str, Any] = Field(
        default_factory=dict,
        description="Whether reasons were given, how, and which features never are and why.",
    )


def resolve_model(settings: EvenflowSettings, params: ScoreParams) -> ScoringModel:
    """The version behind the alias, the label column and the dataset it was trained with.

    Raises:
        ModelNotFound: the model or the alias does not exist (a ConfigError).
        ConfigError: ``params.name`` is not the dataset the model was trained under.
    """
    client = registry.client_for(settings)
    version = registry.version_for_alias(client, params.model_name, params.alias)
    run_id = str(version.run_id)
    recorded = client.get_run(run_id).data.params
    model = ScoringModel(
        name=params.model_name,
        alias=params.alias,
        version=str(version.version),
        run_id=run_id,
        target=recorded.get(TARGET_PARAM),
        dataset=recorded.get(DATASET_PARAM),
    )
    _require_same_contract(model, params.name)
    return model


def scoring_dataset(settings: EvenflowSettings, model_ref: str, name: str | None) -> str:
    """The dataset whose contract checks a batch: the one the model records it was trained under.

    ``name`` (``--name``) may say it too, but must agree; a model that records no dataset (one
    registered outside evenflow) needs ``name``.

    Raises:
        ModelNotFound: the model or the alias does not exist.
        ConfigError: ``name`` disagrees with the model's record, or neither names a dataset.
    """
    model_name, alias = parse_model_ref(model_ref)
    uri = f"models:/{model_name}@{alias}"
    client = registry.client_for(settings)
    version = registry.version_for_alias(client, model_name, alias)
    recorded = client.get_run(str(version.run_id)).data.params.get(DATASET_PARAM)
    if recorded is None:
        if name:
            return name
        raise ConfigError(
            f"{uri} (version {version.version}) records no dataset name "
            f"('{DATASET_PARAM}' of run {version.run_id}): pass --name to name its contract"
        )
    if name and name != recorded:
        raise ConfigError(_mismatch(uri, recorded, name))
    return recorded


def _require_same_contract(model: ScoringModel, name: str) -> None:
    if model.dataset is not None and model.dataset != name:
        raise ConfigError(_mismatch(model.uri, model.dataset, name))


def _mismatch(model_uri: str, recorded: str, name: str) -> str:
    return (
        f"{model_uri} was trained under the contract of dataset {recorded!r} "
        f"(expectations/{recorded}.json), not {name!r}: leave out --name, or pass --name {recorded}"
    )


def served_model_uri(settings: EvenflowSettings, model_ref: str) -> str:
    """``models:/NAME@ALIAS`` (alias ``champion`` if none is given) once the registry knows it.

    Raises:
        ModelNotFound: no such model or alias.
        ConfigError: ``model_ref`` is not ``NAME`` or ``NAME@ALIAS``.
        UnrecordedChampion: ``champion`` points where the promotion ledger did not put it.
    """
    model_name, alias = parse_model_ref(model_ref)
    found = registry.version_for_alias(registry.client_for(settings), model_name, alias)
    champion.guard_alias(settings, model_name, alias, str(found.version))
    return f"models:/{model_name}@{alias}"


def input_md5(path: Path) -> str:
    """md5 of the input file (or folder of parts): the scoring run's data hash.

    Raises:
        DataError: the path does not exist.
    """
    if not path.exists():
        raise DataError(f"{path}: data file not found")
    return content_md5(path)


def score_file(
    settings: EvenflowSettings,
    params: ScoreParams,
    model: ScoringModel,
    *,
    scoring_run_id: str,
    flow_run_id: str,
) -> ScoringResult:
    """Check, score and write one batch ``params.chunk_rows`` rows at a time; only read the input.

    Raises:
        DataError: the file cannot be read, is empty, lacks a feature column, holds a column of
            the wrong kind, or no row passes the contract (the rejects file is still written).
        ConfigError: the dataset has no contract, or the alias moved while the model loaded.
    """
    suite_path = contracts.contract_path(settings, params.name)
    suite = contracts.load_suite(suite_path)
    data_md5 = input_md5(params.data)
    batch = open_batch(params.data, params.chunk_rows)
    columns, chunks = peek_columns(batch.chunks, params.data)
    pyfunc = load_pyfunc(settings, model)
    signature = signature_types(pyfunc)
    require_features(columns, signature, source=params.data, model=model)
    target = model.target or _suite_target(suite)
    checker = RowChecker(columns, suite, features=signature, target=target)
    lineage = _lineage(model, data_md5)
    giver, policy = reason_giver(settings, model, pyfunc, wanted=params.reasons)
    scorer = Scorer(pyfunc, signature, model, params.data, giver)
    run = _Run(params, model, data_md5, columns, suite_path, threshold_used(pyfunc, columns))
    reasons = giver.columns if giver else []
    with (
        staged_output(rejects_path(params.out), batch.object_types) as rejects,
        staged_output(params.out, batch.object_types, reasons) as predictions,
        one_draw_stream(pyfunc),
    ):
        kept = output_columns(columns, signature, params.keep_columns, source=params.data)
        totals = score_chunks(
            chunks, checker, scorer, lineage, kept=kept, rejects=rejects, predictions=predictions
        )
        check = checker.finish()
        reject_file = rejects.commit(lineage)
        if not totals.n_scored:
            raise DataError(
                f"{params.data}: none of its {totals.n_input} rows meets the contract "
                f"{suite_path}; rows per failed rule: {check.counts}; see {reject_file}"
            )
        summary = run.summary(totals, check, scoring_run_id, flow_run_id)
        summary["reasons"] = policy
        out_file = predictions.commit({**lineage, "summary": summary})
    summary["outputs"] = {
        "predictions": {"path": str(out_file.resolve()), "md5": file_md5(out_file)},
        "rejects": {"path": str(reject_file.resolve()), "md5": file_md5(reject_file)},
    }
    sidecar = write_json_atomic(summary_path(params.out), summary)
    logger.info(
        "scored %s with %s version %s: %d rows scored, %d rejected %s",
        params.data,
        model.name,
        model.version,
        totals.n_scored,
        totals.n_rejected,
        check.counts,
    )
    result = run.result(totals, check, out_file=out_file, reject_file=reject_file, sidecar=sidecar)
    return result.model_copy(update={"reason_policy": policy})


def reason_giver(
    settings: EvenflowSettings, model: ScoringModel, pyfunc: Any, *, wanted: bool
) -> tuple[ReasonGiver | None, dict[str, Any]]:
    """What gives the batch's adverse decisions their reasons, and the policy as recorded.

    The policy comes from the model's own training run (``params/run_params.json``): its
    ``reasons:`` section (texts, top_k, immutable features) and its sensitive columns, with the
    threshold policy's group column. A model whose run does not record them gets no reasons
    rather than reasons that might name a sensitive column; the record says why.
    """
    if not wanted:
        return None, {"given": False, "why": "turned off by --no-reasons"}
    loaded = evenflow_model(pyfunc)
    if loaded is None:
        return None, _not_given(model, "it is not an evenflow booster model")
    config = _training_config(settings, model.run_id)
    if config is None:
        return None, _not_given(
            model, f"its run records no {layout.RUN_PARAMS}, so its sensitive columns are unknown"
        )
    sensitive, reasons = config
    if loaded.policy is not None:
        sensitive = (*sensitive, loaded.policy.sensitive_column)
    policy = ReasonPolicy.for_model(
        [feature.name for feature in loaded.features],
        sensitive=sensitive,
        immutable=reasons.immutable,
        texts=reasons.texts,
        families=reasons.families,
        top_k=reasons.top_k,
        adverse_prediction=reasons.adverse_prediction,
    )
    logger.info(
        "reasons: %s for adverse decisions; never given: %s",
        ", ".join(reason_columns(policy.top_k)),
        ", ".join(f"{name} ({why})" for name, why in policy.excluded.items()) or "none",
    )
    return ReasonGiver(loaded, policy), recorded_policy(policy)


def _not_given(model: ScoringModel, why: str) -> dict[str, Any]:
    logger.warning("no reasons given: %s version %s: %s", model.name, model.version, why)
    return {"given": False, "why": why}


def _training_config(
    settings: EvenflowSettings, run_id: str
) -> tuple[tuple[str, ...], ReasonParams] | None:
    """The training run's sensitive columns and ``reasons:`` section; None if it records none."""
    client = registry.client_for(settings)
    with tempfile.TemporaryDirectory(prefix="evenflow-score-") as scratch:
        try:
            doc = registry.download_json(client, run_id, layout.RUN_PARAMS, Path(scratch))
        except (MlflowException, OSError):
            return None
    sensitive = tuple(str(c) for c in (doc.get("dataset") or {}).get("sensitive") or ())
    if not sensitive:
        return None
    return sensitive, ReasonParams.model_validate(doc.get("reasons") or {})


def _lineage(model: ScoringModel, data_md5: str) -> dict[str, str]:
    """What every output row and file carries: the model that scored it and the input's md5."""
    return {
        "model_name": model.name,
        "model_version": model.version,
        "model_alias": model.alias,
        "model_run_id": model.run_id,
        "input_md5": data_md5,
    }


@dataclass(frozen=True)
class _Run:
    """What one scoring run knows before its chunks are scored, to summarise them after."""

    params: ScoreParams
    model: ScoringModel
    data_md5: str
    columns: list[str]
    suite_path: Path
    threshold: str

    def summary(
        self, totals: Totals, check: BatchCheck, scoring_run_id: str, flow_run_id: str
    ) -> dict[str, Any]:
        """The sidecar JSON and the Parquet metadata summary (outputs are added once written)."""
        return {
            "dataset": self.params.name,
            "model": {**self.model.model_dump(), "uri": self.model.uri},
            "input": {
                "path": str(self.params.data.resolve()),
                "md5": self.data_md5,
                "rows": totals.n_input,
                "columns": self.columns,
            },
            "contract": {"path": str(self.suite_path), "md5": file_md5(self.suite_path)},
            "counts": {
                "input_rows": totals.n_input,
                "scored_rows": totals.n_scored,
                "rejected_rows": totals.n_rejected,
            },
            "rejected_by_rule": check.counts,
            "not_checked_per_row": list(check.skipped),
            "warnings": list(check.warnings),
            "threshold": self.threshold,
            "positive_rate": totals.positive_rate,
            "mean_score": totals.mean_score,
            "mlflow_run_id": scoring_run_id,
            "flow_run_id": flow_run_id,
            "scored_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }

    def result(
        self, totals: Totals, check: BatchCheck, *, out_file: Path, reject_file: Path, sidecar: Path
    ) -> ScoringResult:
        """The run's record: what it wrote and counted."""
        return ScoringResult(
            dataset=self.params.name,
            model=self.model,
            input_path=self.params.data.resolve(),
            input_md5=self.data_md5,
            out_path=out_file,
            rejects_path=reject_file,
            summary_path=sidecar,
            totals=totals.record(),
            rejected_by_rule=check.counts,
            threshold=self.threshold,
            warnings=check.warnings,
        )


def require_features(
    columns: Sequence[str], signature: Mapping[str, str], *, source: Path, model: ScoringModel
) -> None:
    """Every model input column must be in the batch: without one, no row can be scored.

    Raises:
        DataError: naming the file, the missing columns and the model.
    """
    missing = [column for column in signature if column not in columns]
    if missing:
        raise DataError(
            f"{source}: missing feature column(s) {missing} that model {model.name!r} version "
            f"{model.version} needs (columns in the file: {list(columns)})"
        )


def scoring_tags(
    result_model: ScoringModel, data_md5: str, lineage_tags: Mapping[str, str]
) -> dict[str, str]:
    """The tags of a scoring run: lineage (data = the input's md5) and which model scored."""
    return {
        **lineage_tags,
        layout.DATA_MD5_TAG: data_md5,
        layout.KIND_TAG: _KIND,
        layout.MODEL_NAME_TAG: result_model.name,
        layout.MODEL_VERSION_TAG: result_model.version,
        layout.MODEL_ALIAS_TAG: result_model.alias,
        layout.MODEL_RUN_ID_TAG: result_model.run_id,
    }


def log_scoring(
    settings: EvenflowSettings, run_id: str, result: ScoringResult, *, log_rejected_rows: bool
) -> None:
    """Log counts, the sidecar and a summary of the rejects (their rows only if asked)."""
    totals = result.totals
    registry.log_metrics(
        settings,
        run_id,
        {
            "input_rows": totals.n_input,
            "scored_rows": totals.n_scored,
            "rejected_rows": totals.n_rejected,
            "rejected_fraction": totals.n_rejected / totals.n_input,
            "positive_rate": totals.positive_rate,
            "mean_score": totals.mean_score,
        },
    )
    registry.set_tags(
        settings,
        run_id,
        {
            layout.OUTPUT_TAG: str(result.out_path.resolve()),
            layout.THRESHOLD_TAG: result.threshold,
        },
    )
    registry.log_params(settings, run_id, reason_params(result.reason_policy))
    registry.log_artifact(settings, run_id, result.summary_path, layout.SCORING_DIR)
    registry.log_json(
        settings, run_id, rejects_summary(result), f"{layout.SCORING_DIR}/{layout.REJECTS_SUMMARY}"
    )
    if log_rejected_rows:
        registry.log_artifact(settings, run_id, result.rejects_path, layout.SCORING_DIR)


def reason_params(policy: Mapping[str, Any]) -> dict[str, str]:
    """The reason policy as MLflow parameters (the whole of it is in the logged sidecar)."""
    if not policy.get("given"):
        return {"reasons.given": "false", "reasons.why_not": str(policy.get("why", ""))}
    excluded = policy.get("excluded") or {}
    return {
        "reasons.given": "true",
        "reasons.top_k": str(policy["top_k"]),
        "reasons.never_given": ", ".join(f"{k} ({v})" for k, v in excluded.items()) or "none",
    }


def rejects_summary(result: ScoringResult) -> dict[str, Any]:
    """What the tracking server keeps of the rejected rows: counts per rule and row numbers.

    The rows' values stay in the local rejects file: they may hold personal data.
    """
    path = result.rejects_path
    rows = (
        pd.read_csv(path, usecols=[INPUT_ROW])
        if output_format(path) == "csv"
        else pd.read_parquet(path, columns=[INPUT_ROW])
    )
    return {
        "rejected_rows": result.totals.n_rejected,
        "by_rule": dict(result.rejected_by_rule),
        "input_rows": rows[INPUT_ROW].astype(int).tolist(),
    }


def _suite_target(suite: Mapping[str, Any]) -> str | None:
    meta = suite.get("meta") or {}
    target = (meta.get("evenflow") or {}).get("target")
    return str(target) if target else None


def describe_rejects(counts: Mapping[str, int]) -> str:
    """Reject counts per rule, most frequent first, in one line."""
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return ", ".join(f"{key}: {count}" for key, count in ordered) or "none"
