"""Batch scoring: check each row against the data contract, score the rest with a registered model.

A batch is scored by the model version behind an alias (``champion`` by default), loaded as the
registered pyfunc (``models:/NAME@ALIAS``), so its threshold policy is applied exactly as in
serving. Rows that break the contract are not scored: they go to a rejects file, each with the
rules it failed. A batch that is unusable as a whole (unreadable file, missing feature column, a
column of the wrong kind) stops with an error that names the file, column or rule.

Row checks evaluate the contract's column expectations directly in pandas, one vectorised mask
per expectation, rather than running Great Expectations with ``unexpected_index_list``:

- **Meaning.** A contract is written for batches; some of its expectations are not about single
  rows. ``mostly`` < 1 says a share of nulls or odd values is normal, so a row with one is not
  wrong (the batch share is still checked and reported as a warning); the table-level checks (the
  column set, a training-size row floor, "the positive label occurs") do not apply to a scoring
  batch; a scoring row without a label is the normal case. GX's type check judges a CSV column's
  dtype, so one unreadable cell makes every value of the column "unexpected"; here a cell fails
  only if it is not a value of the contracted kind ("37" is a number, "unknown" is not).
- **Speed.** GX builds a context, resolves metrics and, with the COMPLETE result format, lists
  every unexpected index and value in Python; the masks are plain vectorised pandas (see the
  scoring benchmark in README, "Batch scoring"). A unit test checks that both agree row for row
  on the expectations they share.

The batch is read, checked, scored and written ``chunk_rows`` rows at a time, so memory holds one
chunk and the model whatever the batch size; the results do not depend on the chunk size:

- a CSV's chunks get the dtypes one whole-file ``read_csv`` would give (a first pass learns them),
  a Parquet batch's come from ``evenflow.data.datasets.iter_chunks``, which promises the same;
- what a contract says about the whole batch (a ``mostly`` share, a column holding no value of
  its kind, an empty label column, no row passing) is tallied across chunks and judged at the end;
- a threshold policy's randomised decisions draw from one stream across the chunks' predict calls;
- outputs are streamed to temp files beside their targets with one schema, fsync'd and renamed
  only when every chunk succeeded. The input file is only read.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
from mlflow.exceptions import MlflowException
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from evenflow.config.settings import EvenflowSettings
from evenflow.contracts import suite as contracts
from evenflow.data.batch_io import StagedTable, open_batch, peek_columns, staged_table
from evenflow.data.datasets import content_md5
from evenflow.errors import ConfigError, DataError
from evenflow.io import file_md5, write_json_atomic
from evenflow.registry import store as registry
from evenflow.serving import DECISION_SEED, EvenflowModel

logger = logging.getLogger(__name__)

DEFAULT_ALIAS = registry.CHAMPION
INPUT_ROW = "input_row"
SCORE = "score"
PREDICTION = "prediction"
FAILED_RULES = "failed_rules"
LINEAGE_COLUMNS = ("model_name", "model_version", "model_alias", "model_run_id", "input_md5")
PARQUET_METADATA_KEY = b"evenflow.scoring"
SUMMARY_ARTIFACT = "scoring"

_NAME = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}"
_OUTPUT_SUFFIXES = (".csv.gz", ".csv", ".parquet", ".pq")
# Most example values quoted in one warning line.
_MAX_EXAMPLES = 3
# A type rule that every one of at least this many values breaks describes the column, not rows.
_WHOLE_COLUMN = 2

# GX type names by the kind of value they admit (see evenflow.contracts).
_NUMERIC_NAMES = frozenset(
    {
        *(f"{sign}int{bits}" for sign in ("", "u") for bits in (8, 16, 32, 64)),
        "float16",
        "float32",
        "float64",
        *(f"{sign}Int{bits}Dtype" for sign in ("", "U") for bits in (8, 16, 32, 64)),
        "Float32Dtype",
        "Float64Dtype",
        "int",
        "float",
    }
)
_TEXT_NAMES = frozenset({"str", "StringDtype", "string"})
_BOOL_NAMES = frozenset({"bool", "BooleanDtype"})
_DATETIME_NAMES = frozenset(
    {"datetime64[s]", "datetime64[ms]", "datetime64[us]", "datetime64[ns]", "datetime", "Timestamp"}
)
_INTEGER_SIGNATURE = frozenset({"long", "integer"})
_SIGNATURE_DTYPES = {"long": "int64", "integer": "int32", "double": "float64", "float": "float32"}

Kind = Literal["numeric", "text", "boolean", "datetime"]


class ScoreParams(BaseModel):
    """One batch scoring run: which file, which model (by alias) and where the predictions go."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    data: Path = Field(description="CSV (optionally gzip-compressed) or Parquet file to score.")
    out: Path = Field(
        description="Predictions file: Parquet, or CSV if it ends in .csv (or .csv.gz)."
    )
    name: str = Field(
        default="",
        pattern=rf"^({_NAME})?$",
        description="Dataset name: its contract (expectations/NAME.json); default: data file stem.",
    )
    model: str = Field(
        default="",
        pattern=rf"^({_NAME}(@[A-Za-z0-9_-]{{1,64}})?)?$",
        description="Registered model as NAME or NAME@ALIAS; default: the dataset name @champion.",
    )
    chunk_rows: int = Field(
        default=1_000_000,
        ge=1_000,
        le=100_000_000,
        description="Rows read, checked and scored at a time; the results do not depend on it.",
    )

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("name") and data.get("data"):
            stem = Path(str(data["data"])).name.split(".")[0]
            data = {**data, "name": "".join(c if c.isalnum() or c in "_.-" else "-" for c in stem)}
        return data

    @model_validator(mode="after")
    def _output_is_not_the_input(self) -> ScoreParams:
        output_format(self.out)
        if self.out.resolve() == self.data.resolve():
            raise ValueError(f"--out {self.out} is the input file; the input is never overwritten")
        return self

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], source: str = "parameters") -> ScoreParams:
        """Validate, turning pydantic's errors into one line per problem.

        Raises:
            ConfigError: naming ``source`` and each field at fault.
        """
        try:
            return cls.model_validate(dict(data))
        except ValidationError as exc:
            problems = "; ".join(
                f"'{'.'.join(str(p) for p in error['loc']) or 'params'}': {error['msg']}"
                for error in exc.errors()
            )
            raise ConfigError(f"{source}: invalid scoring parameters: {problems}") from None

    @property
    def model_name(self) -> str:
        """Registered model name."""
        return (self.model or self.name).split("@")[0]

    @property
    def alias(self) -> str:
        """Alias whose version scores the batch."""
        _, _, alias = self.model.partition("@")
        return alias or DEFAULT_ALIAS

    @property
    def model_uri(self) -> str:
        """The pyfunc URI, by alias."""
        return f"models:/{self.model_name}@{self.alias}"

    def params_hash(self) -> str:
        """sha256 of what the run was asked to do.

        Paths are left out, as for training runs, and so is the chunk size: it changes no result.
        """
        payload = {"name": self.name, "model": self.model_name, "alias": self.alias}
        canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ScoringModel(_Record):
    """The registered version an alias pointed at when the batch was scored."""

    name: str
    alias: str
    version: str
    run_id: str
    target: str | None = Field(description="Label column of the model's training data.")

    @property
    def uri(self) -> str:
        """The pyfunc URI, by alias."""
        return f"models:/{self.name}@{self.alias}"


class ScoringResult(_Record):
    """What a scoring run wrote and counted."""

    dataset: str
    model: ScoringModel
    input_path: Path
    input_md5: str
    out_path: Path
    rejects_path: Path
    summary_path: Path = Field(description="Sidecar JSON beside the predictions (<out>.json).")
    n_input: int
    n_scored: int
    n_rejected: int
    rejected_by_rule: dict[str, int] = Field(description="Rows failing each rule.")
    threshold: str = Field(description="How decisions were made: the policy or the threshold.")
    positive_rate: float
    mean_score: float
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class RowRule:
    """One contract expectation evaluated per row: ``failing`` marks the rows that break it."""

    expectation: str
    column: str
    failing: Callable[[pd.Series], pd.Series]
    explain: Callable[[pd.Series], pd.Series]
    secondary: bool = False
    """Counted only for rows no contract rule on the same column already rejected."""
    mostly: float = 1.0
    """Below 1 a share of odd rows is normal: no row is rejected, the batch share is reported."""
    expects: Kind | None = None
    """Type rules: the kind of value a column must hold at least once (else it is the wrong one)."""

    @property
    def key(self) -> str:
        """The rule as counted and quoted: ``expectation[column]``."""
        return f"{self.expectation}[{self.column}]"


@dataclass(frozen=True)
class ChunkCheck:
    """Which rows of one chunk break the contract, and the rules each broke."""

    rejected: np.ndarray
    reasons: pd.Series


@dataclass(frozen=True)
class BatchCheck:
    """The batch as a whole: rows rejected per rule, what was not checked, batch warnings."""

    counts: dict[str, int]
    skipped: tuple[str, ...]
    warnings: tuple[str, ...]


@dataclass(frozen=True)
class RowCheck:
    """Outcome of the row checks: which rows failed which rules, and what was not checked."""

    rejected: np.ndarray
    reasons: pd.Series
    counts: dict[str, int]
    skipped: tuple[str, ...]
    warnings: tuple[str, ...]


def output_format(out: Path) -> Literal["csv", "parquet"]:
    """The format an output name asks for.

    Raises:
        ValueError: the name ends in none of .parquet, .pq, .csv, .csv.gz.
    """
    name = out.name.lower()
    if name.endswith((".csv", ".csv.gz")):
        return "csv"
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    raise ValueError(
        f"--out {out}: name the predictions file .parquet, .pq, .csv or .csv.gz "
        "(the suffix chooses the format)"
    )


def rejects_path(out: Path) -> Path:
    """``scores.parquet`` → ``scores.rejects.parquet``: the rows that were not scored."""
    name = out.name
    for suffix in _OUTPUT_SUFFIXES:
        if name.lower().endswith(suffix):
            return out.with_name(f"{name[: -len(suffix)]}.rejects{name[-len(suffix) :]}")
    raise ValueError(f"{out}: not a predictions file name")


def summary_path(out: Path) -> Path:
    """The sidecar JSON of a predictions file: ``<out>.json``."""
    return out.with_name(f"{out.name}.json")


def resolve_model(settings: EvenflowSettings, params: ScoreParams) -> ScoringModel:
    """The version behind the alias, and the label column it was trained with.

    Raises:
        ConfigError: the model or the alias does not exist.
    """
    client = registry.client_for(settings)
    try:
        version = client.get_model_version_by_alias(params.model_name, params.alias)
    except MlflowException as exc:
        raise ConfigError(
            f"model {params.model_name!r} has no version with alias {params.alias!r} in "
            f"{settings.tracking_uri} ({_first_line(exc)}); "
            f"promote one first: evenflow promote {params.model_name} VERSION ..."
        ) from None
    run_id = str(version.run_id)
    target = client.get_run(run_id).data.params.get("dataset.target")
    return ScoringModel(
        name=params.model_name,
        alias=params.alias,
        version=str(version.version),
        run_id=run_id,
        target=target,
    )


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
    suite_path = settings.expectations_dir / f"{params.name}.json"
    suite = contracts.load_suite(suite_path)
    data_md5 = input_md5(params.data)
    batch = open_batch(params.data, params.chunk_rows)
    columns, chunks = peek_columns(batch.chunks, params.data)
    pyfunc = _load_pyfunc(settings, model)
    signature = _signature_types(pyfunc)
    require_features(columns, signature, source=params.data, model=model)
    checker = RowChecker(
        columns, suite, features=signature, target=model.target or _suite_target(suite)
    )
    lineage = {
        "model_name": model.name,
        "model_version": model.version,
        "model_alias": model.alias,
        "model_run_id": model.run_id,
        "input_md5": data_md5,
    }
    scorer = _Scorer(pyfunc, signature, model, params.data)
    threshold = _threshold_used(pyfunc, columns)
    with (
        _staged(rejects_path(params.out), batch.object_types) as rejects,
        _staged(params.out, batch.object_types) as predictions,
        _one_draw_stream(pyfunc),
    ):
        totals = _score_chunks(
            chunks, checker, scorer, lineage, rejects=rejects, predictions=predictions
        )
        check = checker.finish()
        reject_file = rejects.commit(lineage)
        if not totals.n_scored:
            raise DataError(
                f"{params.data}: none of its {totals.n_input} rows meets the contract "
                f"{suite_path}; rows per failed rule: {check.counts}; see {reject_file}"
            )
        summary = {
            "dataset": params.name,
            "model": {**model.model_dump(), "uri": model.uri},
            "input": {
                "path": str(params.data.resolve()),
                "md5": data_md5,
                "rows": totals.n_input,
                "columns": columns,
            },
            "contract": {"path": str(suite_path), "md5": file_md5(suite_path)},
            "counts": {
                "input_rows": totals.n_input,
                "scored_rows": totals.n_scored,
                "rejected_rows": totals.n_rejected,
            },
            "rejected_by_rule": check.counts,
            "not_checked_per_row": list(check.skipped),
            "warnings": list(check.warnings),
            "threshold": threshold,
            "positive_rate": totals.positive_rate,
            "mean_score": totals.mean_score,
            "mlflow_run_id": scoring_run_id,
            "flow_run_id": flow_run_id,
            "scored_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
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
    return ScoringResult(
        dataset=params.name,
        model=model,
        input_path=params.data.resolve(),
        input_md5=data_md5,
        out_path=out_file,
        rejects_path=reject_file,
        summary_path=sidecar,
        n_input=totals.n_input,
        n_scored=totals.n_scored,
        n_rejected=totals.n_rejected,
        rejected_by_rule=check.counts,
        threshold=threshold,
        positive_rate=totals.positive_rate,
        mean_score=totals.mean_score,
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


def check_rows(
    frame: pd.DataFrame,
    suite: Mapping[str, Any],
    *,
    features: Mapping[str, str],
    target: str | None,
) -> RowCheck:
    """Evaluate the suite's column expectations row by row on one frame (see the module docstring).

    Args:
        frame: The batch as read.
        suite: The dataset's contract (GX suite JSON).
        features: Model input columns and their signature types ("long", "double", "string", ...):
            whole-number columns must hold whole numbers, or the model refuses the batch.
        target: The label column; absent from a scoring batch, its expectations are skipped.

    Raises:
        DataError: a column holds no value of the contracted kind at all (a wrong column or file).
    """
    checker = RowChecker(list(frame.columns), suite, features=features, target=target)
    rows = checker.check(frame)
    batch = checker.finish()
    return RowCheck(rows.rejected, rows.reasons, batch.counts, batch.skipped, batch.warnings)


@dataclass
class _KindTally:
    """What a type rule saw so far: a column of the wrong kind fails on every value it holds."""

    dtype: str
    values: int = 0
    failing: int = 0
    examples: list[Any] = field(default_factory=list)

    def add(self, values: pd.Series, failing: np.ndarray) -> None:
        """Count the chunk's values and failures; keep the first few values while all fail."""
        self.values += int(values.notna().sum())
        self.failing += int(failing.sum())
        if self.failing < self.values or len(self.examples) >= _MAX_EXAMPLES:
            return
        for value in values.dropna().unique():
            if len(self.examples) == _MAX_EXAMPLES:
                return
            if value not in self.examples:
                self.examples.append(value)

    def require(self, rule: RowRule) -> None:
        """Stop the batch when every one of its values (at least two) breaks the type rule."""
        if rule.expects is None or self.values < _WHOLE_COLUMN or self.failing < self.values:
            return
        words = _KIND_WORDS[rule.expects]
        raise DataError(
            f"column {rule.column!r} holds no {words} (dtype {self.dtype}, e.g. "
            f"{', '.join(repr(v) for v in self.examples)}); the contract ({rule.expectation}) "
            f"expects {words}: wrong column or wrong file"
        )


class RowChecker:
    """The contract's row checks for one batch, fed chunk by chunk.

    Rules come from the batch's columns, the same in every chunk. What a contract says about the
    batch as a whole (a ``mostly`` share, a column with no value of its kind, an empty label
    column) is tallied chunk by chunk and judged by ``finish``, so the chunk size changes nothing.
    """

    def __init__(
        self,
        columns: Sequence[str],
        suite: Mapping[str, Any],
        *,
        features: Mapping[str, str],
        target: str | None,
    ) -> None:
        self._columns = list(columns)
        self._suite = suite
        self._features = dict(features)
        self._target = target
        self._rules, _ = row_rules(self._columns, suite, features=features, target=target)
        self._rows = 0
        self._labels = 0
        self._failing = [0] * len(self._rules)
        self._kinds: dict[int, _KindTally] = {}
        self._counts: dict[str, int] = {}

    def check(self, chunk: pd.DataFrame) -> ChunkCheck:
        """Which rows of the chunk break which rules (rows by position in the chunk)."""
        self._rows += len(chunk)
        if self._target in chunk.columns:
            self._labels += int(chunk[self._target].notna().sum())
        masks: dict[str, np.ndarray] = {}
        by_column: dict[str, np.ndarray] = {}
        pieces: list[pd.Series] = []
        for index, rule in enumerate(self._rules):
            column = chunk[rule.column]
            failing = rule.failing(column).to_numpy(dtype=bool)
            self._tally(index, rule, column, failing)
            if rule.mostly < 1.0:
                continue
            if rule.secondary and rule.column in by_column:
                failing = failing & ~by_column[rule.column]
            if not failing.any():
                continue
            masks[rule.key] = failing
            by_column[rule.column] = by_column.get(rule.column, False) | failing
            positions = np.flatnonzero(failing)
            pieces.append(
                pd.Series(
                    rule.explain(column.iloc[positions]).to_numpy(), index=positions, dtype=str
                )
            )
        for key, mask in masks.items():
            self._counts[key] = self._counts.get(key, 0) + int(mask.sum())
        return _chunk_check(len(chunk), masks.values(), pieces)

    def finish(self) -> BatchCheck:
        """Judge the batch as a whole, once every chunk was checked.

        Raises:
            DataError: a column holds no value of the contracted kind at all.
        """
        for index, tally in self._kinds.items():
            tally.require(self._rules[index])
        label_empty = self._target in self._columns and not self._labels
        _, skipped = row_rules(
            self._columns,
            self._suite,
            features=self._features,
            target=self._target,
            label_empty=label_empty,
        )
        warnings = [
            f"{rule.expectation} on '{rule.column}': {share:.1%} of rows break it, the contract "
            f"allows {1.0 - rule.mostly:.1%} (mostly={rule.mostly}); rows kept: a single row "
            "may break it"
            for rule, failing in zip(self._rules, self._failing, strict=True)
            if rule.mostly < 1.0 and (share := failing / self._rows) > 1.0 - rule.mostly
        ]
        counts = {r.key: self._counts[r.key] for r in self._rules if r.key in self._counts}
        return BatchCheck(counts, tuple(skipped), tuple(warnings))

    def _tally(self, index: int, rule: RowRule, column: pd.Series, failing: np.ndarray) -> None:
        self._failing[index] += int(failing.sum())
        if rule.expects is not None:
            self._kinds.setdefault(index, _KindTally(str(column.dtype))).add(column, failing)


def _chunk_check(rows: int, masks: Iterable[np.ndarray], pieces: list[pd.Series]) -> ChunkCheck:
    """Rows rejected by any rule, each with its failed rules joined in rule order."""
    rejected = np.zeros(rows, dtype=bool)
    for failing in masks:
        rejected |= failing
    if not pieces:
        return ChunkCheck(rejected, pd.Series([], dtype=str))
    joined = pd.concat(pieces).groupby(level=0, sort=True).agg("; ".join)
    return ChunkCheck(rejected, joined.reindex(np.flatnonzero(rejected)))


def row_rules(
    columns: Sequence[str],
    suite: Mapping[str, Any],
    *,
    features: Mapping[str, str],
    target: str | None,
    label_empty: bool = False,
) -> tuple[list[RowRule], list[str]]:
    """Turn the suite's expectations into row rules; list what is skipped and why.

    Returns the rules (``mostly`` < 1 ones only report the batch share) and the expectations not
    checked per row, with the reason. ``label_empty``: the batch's label column holds no value.
    """
    rules: list[RowRule] = []
    skipped: list[str] = []
    for expectation in suite.get("expectations", []):
        kind = str(expectation.get("type"))
        kwargs: dict[str, Any] = dict(expectation.get("kwargs") or {})
        column = kwargs.get("column")
        where = f"{kind} on '{column}'" if column is not None else kind
        if kind == "expect_column_to_exist" and column in columns:
            continue  # met: nothing to check per row
        reason = _not_row_level(kind, kwargs, column, columns, target, label_empty=label_empty)
        if reason:
            skipped.append(f"{where}: {reason}")
            continue
        assert isinstance(column, str)  # _not_row_level skips expectations without a column
        rule = _RULE_BUILDERS[kind](kind, column, kwargs)
        if rule is None:
            skipped.append(f"{where}: type list {kwargs.get('type_list')} not checkable per row")
            continue
        rules.append(replace(rule, mostly=float(kwargs.get("mostly", 1.0))))
    for column, signature_type in features.items():
        if signature_type in _INTEGER_SIGNATURE and column in columns:
            rules.append(_whole_number_rule(column))
    return rules, skipped


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


def scoring_tags(
    result_model: ScoringModel, data_md5: str, lineage_tags: Mapping[str, str]
) -> dict[str, str]:
    """The tags of a scoring run: lineage (data = the input's md5) and which model scored."""
    return {
        **lineage_tags,
        "evenflow.data_md5": data_md5,
        "evenflow.kind": "scoring",
        "evenflow.model_name": result_model.name,
        "evenflow.model_version": result_model.version,
        "evenflow.model_alias": result_model.alias,
        "evenflow.model_run_id": result_model.run_id,
    }


def log_scoring(settings: EvenflowSettings, run_id: str, result: ScoringResult) -> None:
    """Log counts, the sidecar and the rejects with the scoring run."""
    registry.log_metrics(
        settings,
        run_id,
        {
            "input_rows": result.n_input,
            "scored_rows": result.n_scored,
            "rejected_rows": result.n_rejected,
            "rejected_fraction": result.n_rejected / result.n_input,
            "positive_rate": result.positive_rate,
            "mean_score": result.mean_score,
        },
    )
    registry.set_tags(
        settings,
        run_id,
        {
            "evenflow.output": str(result.out_path.resolve()),
            "evenflow.threshold": result.threshold,
        },
    )
    registry.log_artifact(settings, run_id, result.summary_path, SUMMARY_ARTIFACT)
    registry.log_artifact(settings, run_id, result.rejects_path, SUMMARY_ARTIFACT)


# --- rules ------------------------------------------------------------------------------------


def _not_row_level(
    kind: str,
    kwargs: Mapping[str, Any],
    column: Any,
    columns: Sequence[str],
    target: str | None,
    *,
    label_empty: bool,
) -> str | None:
    """Why an expectation is not checked per row, or None when it is."""
    if kind in _TABLE_LEVEL:
        return _TABLE_LEVEL[kind]
    if kind not in _RULE_BUILDERS and kind != "expect_column_to_exist":
        return "not an expectation type evenflow checks per row"
    if column is None or kwargs.get("row_condition"):
        return "names no column, or holds a row condition"
    return _not_in_batch(kind, str(column), columns, target, label_empty=label_empty)


def _not_in_batch(
    kind: str, column: str, columns: Sequence[str], target: str | None, *, label_empty: bool
) -> str | None:
    """Expectations on columns a scoring batch need not carry, or on the label's nulls."""
    label = column == target
    if column not in columns:
        return "the label is absent" if label else "column absent (not a model input)"
    if label and kind == "expect_column_values_to_not_be_null":
        return "a scoring row may have no label"
    if label and label_empty:
        return "the label column is empty"
    return None


_TABLE_LEVEL = {
    "expect_table_columns_to_match_set": "table-level; a scoring batch may lack the label and "
    "carry id columns (missing model inputs stop the batch)",
    "expect_table_row_count_to_be_between": "table-level; a training-size floor, not a row rule",
    "expect_column_distinct_values_to_contain_set": "batch-level; about the set of labels seen",
}


def _kind_of(type_list: Iterable[Any]) -> Kind | None:
    names = {str(name) for name in type_list}
    for kind, family in (
        ("numeric", _NUMERIC_NAMES),
        ("text", _TEXT_NAMES),
        ("boolean", _BOOL_NAMES),
        ("datetime", _DATETIME_NAMES),
    ):
        if names and names <= family:
            return kind  # type: ignore[return-value]
    return None


def _type_rule(kind: str, column: str, kwargs: Mapping[str, Any]) -> RowRule | None:
    expected = _kind_of(kwargs.get("type_list") or [])
    if expected is None:
        return None
    key = f"{kind}[{column}]"

    def failing(values: pd.Series) -> pd.Series:
        return values.notna() & ~_of_kind(values, expected)

    def explain(values: pd.Series) -> pd.Series:
        return f"{key}: " + values.map(repr) + f" is not {_KIND_WORDS[expected]}"

    return RowRule(kind, column, failing, explain, expects=expected)


_KIND_WORDS: dict[Kind, str] = {
    "numeric": "a number",
    "text": "text",
    "boolean": "a boolean",
    "datetime": "a date-time",
}


def _of_kind(values: pd.Series, kind: Kind) -> pd.Series:
    """Per value: is it of the kind (nulls count as yes; the null check judges them)."""
    dtype = values.dtype
    typed = {
        "numeric": _is_plain_numeric(values),
        "text": isinstance(dtype, pd.StringDtype),
        "boolean": pd.api.types.is_bool_dtype(dtype),
        "datetime": pd.api.types.is_datetime64_any_dtype(dtype),
    }
    inferred = pd.api.types.infer_dtype(values, skipna=True)
    if typed[kind] or inferred == "empty" or inferred in _PURE[kind]:
        return pd.Series(True, index=values.index)
    if pd.api.types.is_object_dtype(dtype) or isinstance(dtype, pd.CategoricalDtype):
        return values.isna() | values.map(_VALUE_TESTS[kind]).astype(bool)
    return values.isna()


def _is_number(value: Any) -> bool:
    if isinstance(value, bool | np.bool_):
        return False
    if isinstance(value, int | float | np.number):
        return True
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return False
        return True
    return False


def _is_datetime(value: Any) -> bool:
    if isinstance(value, datetime | np.datetime64):
        return True
    if isinstance(value, str):
        try:
            datetime.fromisoformat(value)
        except ValueError:
            return False
        return True
    return False


# pandas' inferred kinds of a column whose every non-null value is of the kind (checked in C).
_PURE: dict[Kind, frozenset[str]] = {
    "numeric": frozenset({"integer", "floating", "mixed-integer-float", "decimal"}),
    "text": frozenset({"string"}),
    "boolean": frozenset({"boolean"}),
    "datetime": frozenset({"datetime64", "datetime"}),
}
_VALUE_TESTS: dict[Kind, Callable[[Any], bool]] = {
    "numeric": _is_number,
    "text": lambda value: isinstance(value, str),
    "boolean": lambda value: isinstance(value, bool | np.bool_),
    "datetime": _is_datetime,
}


def _numbers(values: pd.Series) -> pd.Series:
    return pd.to_numeric(values, errors="coerce") if not _is_plain_numeric(values) else values


def _is_plain_numeric(values: pd.Series) -> bool:
    dtype = values.dtype
    return pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)


def _between_rule(kind: str, column: str, kwargs: Mapping[str, Any]) -> RowRule | None:
    low, high = kwargs.get("min_value"), kwargs.get("max_value")
    strict_low, strict_high = bool(kwargs.get("strict_min")), bool(kwargs.get("strict_max"))
    key = f"{kind}[{column}]"
    bounds = f"{'(' if strict_low else '['}{low}, {high}{')' if strict_high else ']'}"

    def failing(values: pd.Series) -> pd.Series:
        numbers = _numbers(values)
        out = pd.Series(False, index=values.index)
        if low is not None:
            out |= numbers <= low if strict_low else numbers < low
        if high is not None:
            out |= numbers >= high if strict_high else numbers > high
        return out & numbers.notna()

    def explain(values: pd.Series) -> pd.Series:
        return f"{key}: " + values.map(repr) + f" not in {bounds}"

    return RowRule(kind, column, failing, explain)


def _in_set_rule(kind: str, column: str, kwargs: Mapping[str, Any]) -> RowRule | None:
    allowed = list(kwargs.get("value_set") or [])
    key = f"{kind}[{column}]"

    def failing(values: pd.Series) -> pd.Series:
        return values.notna() & ~values.isin(allowed)

    def explain(values: pd.Series) -> pd.Series:
        return f"{key}: " + values.map(repr) + " not in the set"

    return RowRule(kind, column, failing, explain)


def _not_null_rule(kind: str, column: str, kwargs: Mapping[str, Any]) -> RowRule | None:
    key = f"{kind}[{column}]"

    def failing(values: pd.Series) -> pd.Series:
        return values.isna()

    def explain(values: pd.Series) -> pd.Series:
        return pd.Series(f"{key}: missing", index=values.index)

    return RowRule(kind, column, failing, explain)


def _whole_number_rule(column: str) -> RowRule:
    expectation = "model_signature_whole_number"
    key = f"{expectation}[{column}]"

    def failing(values: pd.Series) -> pd.Series:
        numbers = _numbers(values)
        return numbers.isna() | (numbers % 1 != 0)

    def explain(values: pd.Series) -> pd.Series:
        return f"{key}: " + values.map(repr) + " is not a whole number (the model's input)"

    return RowRule(expectation, column, failing, explain, secondary=True)


_RULE_BUILDERS: dict[str, Callable[[str, str, Mapping[str, Any]], RowRule | None]] = {
    "expect_column_values_to_be_in_type_list": _type_rule,
    "expect_column_values_to_be_between": _between_rule,
    "expect_column_values_to_be_in_set": _in_set_rule,
    "expect_column_values_to_not_be_null": _not_null_rule,
}


# --- model and outputs ------------------------------------------------------------------------


def _signature_types(pyfunc: Any) -> dict[str, str]:
    """Model input columns and their MLflow types, from the registered model's signature."""
    schema = pyfunc.metadata.get_input_schema()
    if schema is None:
        raise ConfigError("the registered model has no input signature; re-register it")
    names = schema.input_names()
    types = schema.input_types()
    return {str(name): _type_name(kind) for name, kind in zip(names, types, strict=True)}


def _type_name(kind: Any) -> str:
    return str(getattr(kind, "name", kind))


def _threshold_used(pyfunc: Any, columns: Sequence[str]) -> str:
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


def _suite_target(suite: Mapping[str, Any]) -> str | None:
    meta = suite.get("meta") or {}
    target = (meta.get("evenflow") or {}).get("target")
    return str(target) if target else None


def _load_pyfunc(settings: EvenflowSettings, model: ScoringModel) -> Any:
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
def _one_draw_stream(pyfunc: Any) -> Iterator[None]:
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


@dataclass(frozen=True)
class _Scorer:
    """The registered model and what it needs to score a chunk's checked rows."""

    pyfunc: Any
    signature: Mapping[str, str]
    model: ScoringModel
    source: Path

    def score(self, accepted: pd.DataFrame) -> pd.DataFrame:
        """The rows typed as the model's inputs, with its score and decision.

        Raises:
            DataError: the model refused the rows, or a numeric input is not a number.
        """
        typed = typed_for_signature(accepted, self.signature)
        if typed.empty:
            return typed.assign(**{SCORE: np.empty(0), PREDICTION: np.empty(0, dtype=np.int64)})
        try:  # the model's columns only: MLflow would drop the others, warning at each chunk
            decided = self.pyfunc.predict(typed[list(self.signature)])
        except MlflowException as exc:
            raise DataError(
                f"{self.source}: model {self.model.name!r} version {self.model.version} refused "
                f"the checked rows: {_first_line(exc)}"
            ) from None
        return typed.assign(
            **{SCORE: decided["score"].to_numpy(), PREDICTION: decided["prediction"].to_numpy()}
        )


@dataclass
class _Totals:
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


def _score_chunks(
    chunks: Iterator[pd.DataFrame],
    checker: RowChecker,
    scorer: _Scorer,
    lineage: Mapping[str, str],
    *,
    rejects: StagedTable,
    predictions: StagedTable,
) -> _Totals:
    """Check, score and write each chunk in turn; ``input_row`` is the row's place in the batch."""
    columns = {key: lineage[key] for key in LINEAGE_COLUMNS}
    totals = _Totals()
    for chunk in chunks:
        chunk.columns = [str(c) for c in chunk.columns]
        check = checker.check(chunk)
        frame = chunk.assign(**{INPUT_ROW: chunk.index.to_numpy(dtype=np.int64)})
        rejected = frame.loc[check.rejected].assign(**{FAILED_RULES: check.reasons.to_numpy()})
        scored = scorer.score(frame.loc[~check.rejected])
        rejects.write(rejected.assign(**columns))
        predictions.write(scored.assign(**columns))
        totals.add(len(chunk), scored, rejected)
        del chunk, frame, rejected, scored  # hold one chunk, not two, while the next is read
    return totals


def _staged(
    target: Path, object_types: Mapping[str, pa.DataType]
) -> AbstractContextManager[StagedTable]:
    """Predictions or rejects, staged beside ``target`` until committed."""
    types = {
        **object_types,
        FAILED_RULES: pa.string(),
        **dict.fromkeys(LINEAGE_COLUMNS, pa.string()),
    }
    return staged_table(
        target, types, file_format=output_format(target), metadata_key=PARQUET_METADATA_KEY
    )


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0]


def describe_rejects(counts: Mapping[str, int]) -> str:
    """Reject counts per rule, most frequent first, in one line."""
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return ", ".join(f"{key}: {count}" for key, count in ordered) or "none"
