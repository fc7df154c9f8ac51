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

The input file is only read; every output is written to a temp path and renamed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from mlflow.exceptions import MlflowException
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from evenflow import contracts, registry
from evenflow.datasets import content_md5, read_table
from evenflow.errors import ConfigError, DataError
from evenflow.io import atomic_path, file_md5, write_json_atomic
from evenflow.settings import EvenflowSettings

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
        """sha256 of what the run was asked to do (paths excluded, as for training runs)."""
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

    key: str
    column: str
    failing: Callable[[pd.Series], pd.Series]
    explain: Callable[[pd.Series], pd.Series]
    secondary: bool = False
    """Counted only for rows no contract rule on the same column already rejected."""


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
    """Check, score and write one batch; the input is only read.

    Raises:
        DataError: the file cannot be read, is empty, lacks a feature column, holds a column of
            the wrong kind, or no row passes the contract.
        ConfigError: the dataset has no contract, or the alias moved while the model loaded.
    """
    import mlflow.pyfunc  # noqa: PLC0415  (loads the model flavour machinery only when scoring)

    suite_path = settings.expectations_dir / f"{params.name}.json"
    suite = contracts.load_suite(suite_path)
    data_md5 = input_md5(params.data)
    frame = read_table(params.data)
    if frame.empty:
        raise DataError(f"{params.data}: the file has no rows")
    frame.columns = [str(c) for c in frame.columns]
    registry.client_for(settings)
    pyfunc = mlflow.pyfunc.load_model(model.uri)
    if pyfunc.metadata.run_id and pyfunc.metadata.run_id != model.run_id:
        raise ConfigError(
            f"alias {model.alias!r} of {model.name!r} moved while scoring started "
            f"(expected the model of run {model.run_id}); run again"
        )
    signature = _signature_types(pyfunc)
    require_features(frame, signature, source=params.data, model=model)
    target = model.target or _suite_target(suite)
    check = check_rows(frame, suite, features=signature, target=target)
    frame = frame.assign(**{INPUT_ROW: np.arange(len(frame), dtype=np.int64)})
    rejects = frame.loc[check.rejected].assign(**{FAILED_RULES: check.reasons.to_numpy()})
    accepted = frame.loc[~check.rejected]
    lineage = {
        "model_name": model.name,
        "model_version": model.version,
        "model_alias": model.alias,
        "model_run_id": model.run_id,
        "input_md5": data_md5,
    }
    reject_file = _write_table(rejects, rejects_path(params.out), lineage)
    if accepted.empty:
        raise DataError(
            f"{params.data}: none of its {len(frame)} rows meets the contract "
            f"{suite_path}; rows per failed rule: {check.counts}; see {reject_file}"
        )
    typed = typed_for_signature(accepted, signature)
    try:
        decided = pyfunc.predict(typed)
    except MlflowException as exc:
        raise DataError(
            f"{params.data}: model {model.name!r} version {model.version} refused the checked "
            f"rows: {_first_line(exc)}"
        ) from None
    scored = typed.assign(
        **{SCORE: decided["score"].to_numpy(), PREDICTION: decided["prediction"].to_numpy()}
    )
    threshold = _threshold_used(pyfunc, scored)
    summary = {
        "dataset": params.name,
        "model": {**model.model_dump(), "uri": model.uri},
        "input": {
            "path": str(params.data.resolve()),
            "md5": data_md5,
            "rows": len(frame),
            "columns": [c for c in frame.columns if c != INPUT_ROW],
        },
        "contract": {"path": str(suite_path), "md5": file_md5(suite_path)},
        "counts": {
            "input_rows": len(frame),
            "scored_rows": len(scored),
            "rejected_rows": len(rejects),
        },
        "rejected_by_rule": check.counts,
        "not_checked_per_row": list(check.skipped),
        "warnings": list(check.warnings),
        "threshold": threshold,
        "positive_rate": float(scored[PREDICTION].mean()),
        "mean_score": float(scored[SCORE].mean()),
        "mlflow_run_id": scoring_run_id,
        "flow_run_id": flow_run_id,
        "scored_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    out_file = _write_table(scored, params.out, lineage, summary)
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
        len(scored),
        len(rejects),
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
        n_input=len(frame),
        n_scored=len(scored),
        n_rejected=len(rejects),
        rejected_by_rule=check.counts,
        threshold=threshold,
        positive_rate=float(scored[PREDICTION].mean()),
        mean_score=float(scored[SCORE].mean()),
        warnings=check.warnings,
    )


def require_features(
    frame: pd.DataFrame, signature: Mapping[str, str], *, source: Path, model: ScoringModel
) -> None:
    """Every model input column must be in the batch: without one, no row can be scored.

    Raises:
        DataError: naming the file, the missing columns and the model.
    """
    missing = [column for column in signature if column not in frame.columns]
    if missing:
        raise DataError(
            f"{source}: missing feature column(s) {missing} that model {model.name!r} version "
            f"{model.version} needs (columns in the file: {list(frame.columns)})"
        )


def check_rows(
    frame: pd.DataFrame,
    suite: Mapping[str, Any],
    *,
    features: Mapping[str, str],
    target: str | None,
) -> RowCheck:
    """Evaluate the suite's column expectations row by row (see the module docstring).

    Args:
        frame: The batch as read.
        suite: The dataset's contract (GX suite JSON).
        features: Model input columns and their signature types ("long", "double", "string", ...):
            whole-number columns must hold whole numbers, or the model refuses the batch.
        target: The label column; absent from a scoring batch, its expectations are skipped.

    Raises:
        DataError: a column holds no value of the contracted kind at all (a wrong column or file).
    """
    rules, skipped, warnings = row_rules(frame, suite, features=features, target=target)
    masks: dict[str, np.ndarray] = {}
    by_column: dict[str, np.ndarray] = {}
    pieces: list[pd.Series] = []
    for rule in rules:
        column = frame[rule.column]
        failing = rule.failing(column).to_numpy(dtype=bool)
        if rule.secondary and rule.column in by_column:
            failing &= ~by_column[rule.column]
        if not failing.any():
            continue
        masks[rule.key] = failing
        by_column[rule.column] = by_column.get(rule.column, False) | failing
        positions = np.flatnonzero(failing)
        pieces.append(
            pd.Series(rule.explain(column.iloc[positions]).to_numpy(), index=positions, dtype=str)
        )
    rejected = np.zeros(len(frame), dtype=bool)
    for failing in masks.values():
        rejected |= failing
    if pieces:
        joined = pd.concat(pieces).groupby(level=0, sort=True).agg("; ".join)
        reasons = joined.reindex(np.flatnonzero(rejected))
    else:
        reasons = pd.Series([], dtype=str)
    counts = {key: int(mask.sum()) for key, mask in masks.items()}
    return RowCheck(rejected, reasons, counts, tuple(skipped), tuple(warnings))


def row_rules(
    frame: pd.DataFrame,
    suite: Mapping[str, Any],
    *,
    features: Mapping[str, str],
    target: str | None,
) -> tuple[list[RowRule], list[str], list[str]]:
    """Turn the suite's expectations into row rules; list what is skipped and why.

    Returns the rules, the expectations not checked per row (with the reason) and batch-level
    warnings (``mostly`` limits the batch as a whole breaks).
    """
    rules: list[RowRule] = []
    skipped: list[str] = []
    warnings: list[str] = []
    for expectation in suite.get("expectations", []):
        kind = str(expectation.get("type"))
        kwargs: dict[str, Any] = dict(expectation.get("kwargs") or {})
        column = kwargs.get("column")
        where = f"{kind} on '{column}'" if column is not None else kind
        if kind == "expect_column_to_exist" and column in frame.columns:
            continue  # met: nothing to check per row
        reason = _not_row_level(kind, kwargs, column, frame, target)
        if reason:
            skipped.append(f"{where}: {reason}")
            continue
        assert isinstance(column, str)  # _not_row_level skips expectations without a column
        series = frame[column]
        mostly = float(kwargs.get("mostly", 1.0))
        rule = _RULE_BUILDERS[kind](kind, column, kwargs, series)
        if rule is None:
            skipped.append(f"{where}: type list {kwargs.get('type_list')} not checkable per row")
            continue
        if mostly < 1.0:
            share = float(rule.failing(series).mean())
            if share > 1.0 - mostly:
                warnings.append(
                    f"{where}: {share:.1%} of rows break it, the contract allows "
                    f"{1.0 - mostly:.1%} (mostly={mostly}); rows kept: a single row may break it"
                )
            continue
        rules.append(rule)
    for column, signature_type in features.items():
        if signature_type in _INTEGER_SIGNATURE and column in frame.columns:
            rules.append(_whole_number_rule(column))
    return rules, skipped, warnings


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
    kind: str, kwargs: Mapping[str, Any], column: Any, frame: pd.DataFrame, target: str | None
) -> str | None:
    """Why an expectation is not checked per row, or None when it is."""
    if kind in _TABLE_LEVEL:
        return _TABLE_LEVEL[kind]
    if kind not in _RULE_BUILDERS and kind != "expect_column_to_exist":
        return "not an expectation type evenflow checks per row"
    if column is None or kwargs.get("row_condition"):
        return "names no column, or holds a row condition"
    return _not_in_batch(kind, str(column), frame, target)


def _not_in_batch(kind: str, column: str, frame: pd.DataFrame, target: str | None) -> str | None:
    """Expectations on columns a scoring batch need not carry, or on the label's nulls."""
    label = column == target
    if column not in frame.columns:
        return "the label is absent" if label else "column absent (not a model input)"
    if label and kind == "expect_column_values_to_not_be_null":
        return "a scoring row may have no label"
    if label and bool(frame[column].isna().all()):
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


def _type_rule(
    kind: str, column: str, kwargs: Mapping[str, Any], series: pd.Series
) -> RowRule | None:
    expected = _kind_of(kwargs.get("type_list") or [])
    if expected is None:
        return None
    key = f"{kind}[{column}]"

    def failing(values: pd.Series) -> pd.Series:
        return values.notna() & ~_of_kind(values, expected)

    def explain(values: pd.Series) -> pd.Series:
        return f"{key}: " + values.map(repr) + f" is not {_KIND_WORDS[expected]}"

    failures = failing(series)
    non_null = int(series.notna().sum())
    if non_null >= _WHOLE_COLUMN and int(failures.sum()) == non_null:
        examples = ", ".join(repr(v) for v in series.dropna().unique()[:_MAX_EXAMPLES])
        raise DataError(
            f"column {column!r} holds no {_KIND_WORDS[expected]} (dtype {series.dtype}, e.g. "
            f"{examples}); the contract ({kind}) expects {_KIND_WORDS[expected]}: wrong column "
            "or wrong file"
        )
    return RowRule(key, column, failing, explain)


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


def _between_rule(
    kind: str, column: str, kwargs: Mapping[str, Any], series: pd.Series
) -> RowRule | None:
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

    return RowRule(key, column, failing, explain)


def _in_set_rule(
    kind: str, column: str, kwargs: Mapping[str, Any], series: pd.Series
) -> RowRule | None:
    allowed = list(kwargs.get("value_set") or [])
    key = f"{kind}[{column}]"

    def failing(values: pd.Series) -> pd.Series:
        return values.notna() & ~values.isin(allowed)

    def explain(values: pd.Series) -> pd.Series:
        return f"{key}: " + values.map(repr) + " not in the set"

    return RowRule(key, column, failing, explain)


def _not_null_rule(
    kind: str, column: str, kwargs: Mapping[str, Any], series: pd.Series
) -> RowRule | None:
    key = f"{kind}[{column}]"

    def failing(values: pd.Series) -> pd.Series:
        return values.isna()

    def explain(values: pd.Series) -> pd.Series:
        return pd.Series(f"{key}: missing", index=values.index)

    return RowRule(key, column, failing, explain)


def _whole_number_rule(column: str) -> RowRule:
    key = f"model_signature_whole_number[{column}]"

    def failing(values: pd.Series) -> pd.Series:
        numbers = _numbers(values)
        return numbers.isna() | (numbers % 1 != 0)

    def explain(values: pd.Series) -> pd.Series:
        return f"{key}: " + values.map(repr) + " is not a whole number (the model's input)"

    return RowRule(key, column, failing, explain, secondary=True)


_RULE_BUILDERS: dict[str, Callable[[str, str, Mapping[str, Any], pd.Series], RowRule | None]] = {
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


def _threshold_used(pyfunc: Any, scored: pd.DataFrame) -> str:
    """Describe how the model turned scores into decisions for this batch."""
    try:
        model = pyfunc.unwrap_python_model()
    except MlflowException:
        return "the model's own decision rule"
    policy = getattr(model, "policy", None)
    if policy is not None and policy.sensitive_column in scored.columns:
        return (
            f"per-group thresholds on {policy.sensitive_column!r} ({policy.constraint}; groups "
            f"{', '.join(sorted(policy.groups))}; others: score >= {policy.default_threshold})"
        )
    return f"score >= {getattr(model, 'threshold', 0.5)}"


def _suite_target(suite: Mapping[str, Any]) -> str | None:
    meta = suite.get("meta") or {}
    target = (meta.get("evenflow") or {}).get("target")
    return str(target) if target else None


def _write_table(
    frame: pd.DataFrame,
    target: Path,
    lineage: Mapping[str, str],
    summary: Mapping[str, Any] | None = None,
) -> Path:
    """Write predictions or rejects atomically; lineage as columns and Parquet key-value metadata."""
    table = frame.assign(**{key: lineage[key] for key in LINEAGE_COLUMNS}).reset_index(drop=True)
    if output_format(target) == "csv":
        compression = "gzip" if target.name.lower().endswith(".gz") else None
        with atomic_path(target) as tmp:
            table.to_csv(tmp, index=False, compression=compression)
        return target
    arrow = pa.Table.from_pandas(_arrow_safe(table), preserve_index=False)
    meta = {**lineage, **({"summary": summary} if summary else {})}
    merged = {
        **(arrow.schema.metadata or {}),
        PARQUET_METADATA_KEY: json.dumps(meta, default=str, sort_keys=True).encode(),
    }
    arrow = arrow.replace_schema_metadata(merged)
    with atomic_path(target) as tmp:
        pq.write_table(arrow, tmp)
    return target


def _arrow_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """Object columns mixing kinds (rejected cells) are written as text."""
    safe = frame.copy()
    for column in safe.columns:
        if pd.api.types.is_object_dtype(safe[column].dtype):
            kinds = {type(v) for v in safe[column].dropna()}
            if len(kinds) > 1:
                safe[column] = safe[column].map(lambda v: v if _missing(v) else str(v))
    return safe


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0]


def describe_rejects(counts: Mapping[str, int]) -> str:
    """Reject counts per rule, most frequent first, in one line."""
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return ", ".join(f"{key}: {count}" for key, count in ordered) or "none"
