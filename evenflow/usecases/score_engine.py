"""The chunked scoring engine: the registered model, and the loop that checks, scores and writes.

The batch is read, checked, scored and written one chunk at a time, so memory holds one chunk and
the model whatever the batch size; the results do not depend on the chunk size:

- a threshold policy's randomised decisions draw from one stream across the chunks' predict calls
  (``one_draw_stream``);
- the running totals are summed row after row, so the chunk size cannot change their last bits;
- outputs are staged beside their targets with one schema and committed only when every chunk
  succeeded (``staged_output``, over ``evenflow.data.batch_io.staged_table``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from mlflow.exceptions import MlflowException
from pydantic import Field

from evenflow.assess.reasons import ReasonPolicy, contributions, reason_columns, top_reasons
from evenflow.config.score import output_format
from evenflow.config.settings import EvenflowSettings
from evenflow.contracts.row_check import RowChecker
from evenflow.data.batch_io import StagedTable, staged_table
from evenflow.data.features import typed_features
from evenflow.errors import ConfigError, DataError
from evenflow.layout import SCORING_PARQUET_KEY
from evenflow.records import Record
from evenflow.registry import store as registry
from evenflow.serving import DECISION_SEED, EvenflowModel

INPUT_ROW = "input_row"
SCORE = "score"
PREDICTION = "prediction"
FAILED_RULES = "failed_rules"
LINEAGE_COLUMNS = ("model_name", "model_version", "model_alias", "model_run_id", "input_md5")

_SIGNATURE_DTYPES = {"long": "int64", "integer": "int32", "double": "float64", "float": "float32"}


class ScoringModel(Record):
    """The registered version an alias pointed at when the batch was scored."""

    name: str
    alias: str
    version: str
    run_id: str
    target: str | None = Field(description="Label column of the model's training data.")
    dataset: str | None = Field(
        default=None, description="The dataset (and contract) the model was trained under."
    )

    @property
    def uri(self) -> str:
        """The pyfunc URI, by alias."""
        return f"models:/{self.name}@{self.alias}"


def typed_for_signature(frame: pd.DataFrame, signature: Mapping[str, str]) -> pd.DataFrame:
    """Cast checked rows' model columns to the signature's types (numbers read as text, ints).

    Raises:
        DataError: a numeric model input holds a value that is not a number.
    """
    typed = frame.copy()
    for column, signature_type in signature.items():
        dtype = _SIGNATURE_DTYPES.get(signature_type)
        if dtype is None:
            continue
        try:
            typed[column] = pd.to_numeric(typed[column], errors="raise").astype(dtype)
        except (ValueError, TypeError) as exc:
            raise DataError(
                f"column {column!r} cannot be read as the model's {signature_type} input "
                f"({exc}); the contract has no type check for it to reject such rows"
            ) from None
    return typed


def signature_types(pyfunc: Any) -> dict[str, str]:
    """Model input columns and their MLflow types, from the registered model's signature."""
    schema = pyfunc.metadata.get_input_schema()
    if schema is None:
        raise ConfigError("the registered model has no input signature; re-register it")
    names = schema.input_names()
    types = schema.input_types()
    return {str(name): _type_name(kind) for name, kind in zip(names, types, strict=True)}


def _type_name(kind: Any) -> str:
    return str(getattr(kind, "name", kind))


def threshold_used(pyfunc: Any, columns: Sequence[str]) -> str:
    """Describe how the model turned scores into decisions for this batch."""
    model = _python_model(pyfunc)
    if model is None:
        return "the model's own decision rule"
    policy = getattr(model, "policy", None)
    if policy is not None and policy.sensitive_column in columns:
        return (
            f"per-group thresholds on {policy.sensitive_column!r} ({policy.constraint}; groups "
            f"{', '.join(sorted(policy.groups))}; others: score >= {policy.default_threshold})"
        )
    return f"score >= {getattr(model, 'threshold', 0.5)}"


def _python_model(pyfunc: Any) -> Any:
    """The Python model inside the pyfunc, or None for another flavour."""
    try:
        return pyfunc.unwrap_python_model()
    except MlflowException:
        return None


def load_pyfunc(settings: EvenflowSettings, model: ScoringModel) -> Any:
    """The registered pyfunc behind the alias, refused if the alias moved since it was resolved."""
    import mlflow.pyfunc  # noqa: PLC0415  (loads the model flavour machinery only when scoring)

    registry.client_for(settings)
    pyfunc = mlflow.pyfunc.load_model(model.uri)
    if pyfunc.metadata.run_id and pyfunc.metadata.run_id != model.run_id:
        raise ConfigError(
            f"alias {model.alias!r} of {model.name!r} moved while scoring started "
            f"(expected the model of run {model.run_id}); run again"
        )
    return pyfunc


@contextmanager
def one_draw_stream(pyfunc: Any) -> Iterator[None]:
    """Let the model's threshold policy draw from one stream across the chunks' predict calls.

    Each predict call would start ``RandomState(DECISION_SEED)`` afresh, giving a chunk's first
    row the draw of the batch's first row; one stream gives each scored row the draw a single
    whole-batch call gives it, so the decisions do not depend on the chunk size.
    """
    model = _python_model(pyfunc)
    if not isinstance(model, EvenflowModel):
        yield
        return
    model.draws = np.random.RandomState(DECISION_SEED)
    try:
        yield
    finally:
        model.draws = None


def evenflow_model(pyfunc: Any) -> EvenflowModel | None:
    """The loaded evenflow model inside the pyfunc (booster, features, trainer), or None."""
    model = _python_model(pyfunc)
    return model if isinstance(model, EvenflowModel) else None


@dataclass(frozen=True)
class ReasonGiver:
    """The booster behind the pyfunc and the policy that turns its contributions into reasons."""

    model: EvenflowModel
    policy: ReasonPolicy

    @property
    def columns(self) -> list[str]:
        """The output columns it adds: ``reason_1 … reason_k``."""
        return reason_columns(self.policy.top_k)

    def reasons(self, typed: pd.DataFrame, prediction: np.ndarray) -> pd.DataFrame:
        """Reasons for the adverse rows (their contributions only are computed); null elsewhere."""
        adverse = np.asarray(prediction) == self.policy.adverse_prediction
        given = pd.DataFrame(None, index=typed.index, columns=self.columns, dtype=object)
        if not adverse.any():
            return given
        rows = typed_features(typed.loc[adverse], self.model.features)
        found = contributions(self.model.booster, rows, self.model.trainer)
        given.loc[adverse] = top_reasons(
            found, np.ones(len(rows), dtype=bool), self.policy, index=rows.index
        )
        return given


@dataclass(frozen=True)
class Scorer:
    """The registered model and what it needs to score a chunk's checked rows."""

    pyfunc: Any
    signature: Mapping[str, str]
    model: ScoringModel
    source: Path
    reasons: ReasonGiver | None = None
    """Gives ``reason_1 … reason_k`` to adverse decisions; None: no reason columns."""

    def score(self, accepted: pd.DataFrame) -> pd.DataFrame:
        """The rows typed as the model's inputs, with its score and decision.

        Raises:
            DataError: the model refused the rows, or a numeric input is not a number.
        """
        typed = typed_for_signature(accepted, self.signature)
        if typed.empty:
            empty = typed.assign(**{SCORE: np.empty(0), PREDICTION: np.empty(0, dtype=np.int64)})
            if self.reasons is None:
                return empty
            return empty.assign(**{c: np.empty(0, dtype=object) for c in self.reasons.columns})
        try:  # the model's columns only: MLflow would drop the others, warning at each chunk
            decided = self.pyfunc.predict(typed[list(self.signature)])
        except MlflowException as exc:
            raise DataError(
                f"{self.source}: model {self.model.name!r} version {self.model.version} refused "
                f"the checked rows: {_first_line(exc)}"
            ) from None
        scored = typed.assign(
            **{SCORE: decided["score"].to_numpy(), PREDICTION: decided["prediction"].to_numpy()}
        )
        if self.reasons is None:
            return scored
        given = self.reasons.reasons(typed[list(self.signature)], scored[PREDICTION].to_numpy())
        return pd.concat([scored, given], axis=1)


class ScoringTotals(Record):
    """What the chunks added up to; the same whatever the chunk size."""

    n_input: int
    n_scored: int
    n_rejected: int
    positive_rate: float = Field(description="Share of scored rows decided positive.")
    mean_score: float = Field(description="Mean score of the scored rows.")


@dataclass
class Totals:
    """Running figures over the chunks scored so far."""

    n_input: int = 0
    n_scored: int = 0
    n_rejected: int = 0
    positives: int = 0
    score_sum: float = 0.0
    """Summed row after row, so the chunk size cannot change its last bits."""

    def add(self, rows: int, scored: pd.DataFrame, rejects: pd.DataFrame) -> None:
        """Count one chunk."""
        self.n_input += rows
        self.n_scored += len(scored)
        self.n_rejected += len(rejects)
        self.positives += int(scored[PREDICTION].sum())
        scores = scored[SCORE].to_numpy(dtype=np.float64)
        self.score_sum = float(np.cumsum(np.append(self.score_sum, scores))[-1])

    @property
    def positive_rate(self) -> float:
        """Share of scored rows decided positive."""
        return self.positives / self.n_scored

    @property
    def mean_score(self) -> float:
        """Mean score of the scored rows."""
        return self.score_sum / self.n_scored

    def record(self) -> ScoringTotals:
        """The figures as they stand, as an immutable record."""
        return ScoringTotals.model_validate(self, from_attributes=True)


def score_chunks(
    chunks: Iterator[pd.DataFrame],
    checker: RowChecker,
    scorer: Scorer,
    lineage: Mapping[str, str],
    *,
    kept: Sequence[str],
    rejects: StagedTable,
    predictions: StagedTable,
) -> Totals:
    """Check, score and write each chunk in turn; ``input_row`` is the row's place in the batch.

    The whole row is checked; only the ``kept`` input columns reach the outputs.
    """
    columns = {key: lineage[key] for key in LINEAGE_COLUMNS}
    totals = Totals()
    for chunk in chunks:
        chunk.columns = [str(c) for c in chunk.columns]
        check = checker.check(chunk)
        frame = chunk[list(kept)].assign(**{INPUT_ROW: chunk.index.to_numpy(dtype=np.int64)})
        rejected = frame.loc[check.rejected].assign(**{FAILED_RULES: check.reasons.to_numpy()})
        scored = scorer.score(frame.loc[~check.rejected])
        rejects.write(rejected.assign(**columns))
        predictions.write(scored.assign(**columns))
        totals.add(len(chunk), scored, rejected)
        del chunk, frame, rejected, scored  # hold one chunk, not two, while the next is read
    return totals


def output_columns(
    columns: Sequence[str], signature: Mapping[str, str], keep: Sequence[str], *, source: Path
) -> list[str]:
    """The input columns the outputs carry: the model's own and those asked for, in input order.

    Raises:
        DataError: a column asked for is not in the input.
    """
    missing = [name for name in keep if name not in columns]
    if missing:
        raise DataError(f"{source}: --keep-columns {missing} not in the input")
    return [name for name in columns if name in signature or name in keep]


def staged_output(
    target: Path, object_types: Mapping[str, pa.DataType], text_columns: Sequence[str] = ()
) -> AbstractContextManager[StagedTable]:
    """Predictions or rejects, staged beside ``target`` until committed.

    ``text_columns`` (the reasons) are text even in a chunk where every value is null.
    """
    types = {
        **object_types,
        **dict.fromkeys(text_columns, pa.string()),
        FAILED_RULES: pa.string(),
        **dict.fromkeys(LINEAGE_COLUMNS, pa.string()),
    }
    return staged_table(
        target, types, file_format=output_format(target), metadata_key=SCORING_PARQUET_KEY
    )


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0]
