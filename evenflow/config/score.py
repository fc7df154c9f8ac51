"""Parameters of a batch scoring run, and the names of the files it writes."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, model_validator

from evenflow.config.fields import NAME_PATTERN, BatchRows, ColumnNames
from evenflow.config.loading import canonical_hash
from evenflow.config.monitor import DEFAULT_ALIAS
from evenflow.errors import ConfigError
from evenflow.records import Record

_OUTPUT_SUFFIXES = (".csv.gz", ".csv", ".parquet", ".pq")


class ScoreParams(Record):
    """One batch scoring run: which file, which model (by alias) and where the predictions go."""

    data: Path = Field(description="CSV (optionally gzip-compressed) or Parquet file to score.")
    out: Path = Field(
        description="Predictions file: Parquet, or CSV if it ends in .csv (or .csv.gz)."
    )
    name: str = Field(
        default="",
        pattern=rf"^({NAME_PATTERN})?$",
        description="Dataset name: its contract (expectations/NAME.json); default: the model's "
        "name when a model is given (the dataset it was trained on), else the data file's stem.",
    )
    model: str = Field(
        default="",
        pattern=rf"^({NAME_PATTERN}(@[A-Za-z0-9_-]{{1,64}})?)?$",
        description="Registered model as NAME or NAME@ALIAS; default: the dataset name @champion.",
    )
    chunk_rows: BatchRows = Field(
        default=1_000_000,
        description="Rows read, checked and scored at a time; the results do not depend on it.",
    )
    keep_columns: ColumnNames = Field(
        default=(),
        description="Input columns copied into the predictions and rejects besides the model's "
        "own (an id to join on, say); every other input column is left out.",
    )
    reasons: bool = Field(
        default=True,
        description="Give each adverse decision its principal reasons (reason_1..k, from the "
        "model's exact TreeSHAP contributions and its run configuration's reasons: section); "
        "sensitive columns and immutable features are never given.",
    )
    log_rejected_rows: bool = Field(
        default=False,
        description="Also log the rejected rows themselves with the MLflow run; by default it gets "
        "their count per rule and their row numbers, never their values.",
    )

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data: Any) -> Any:
        """A registered model is named after its dataset: it, not the file's name, names the contract."""
        if not isinstance(data, dict) or data.get("name"):
            return data
        if data.get("model"):
            return {**data, "name": str(data["model"]).partition("@")[0]}
        if data.get("data"):
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
        ``reasons`` enters only when turned off, so runs made before it existed keep their hash.
        """
        payload: dict[str, Any] = {"name": self.name, "model": self.model_name, "alias": self.alias}
        if not self.reasons:
            payload["reasons"] = False
        return canonical_hash(payload)


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
