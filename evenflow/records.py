"""The records that flow between stages: small, typed, JSON-serialisable references, never frames."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

SplitName = Literal["train", "valid", "test"]


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RawBatch(_Record):
    """An input file as received: it is read, never modified."""

    dataset: str
    path: Path
    md5: str = Field(description="md5 of the file's bytes.")
    n_rows: int
    columns: tuple[str, ...]


class ExpectationFailure(_Record):
    """One failed expectation with what was observed."""

    expectation: str = Field(description="GX expectation type, e.g. expect_column_to_exist.")
    column: str | None
    observed: str = Field(description="Observed value or a short summary of unexpected values.")
    kwargs: dict[str, object] = Field(default_factory=dict)

    def describe(self) -> str:
        """One line: expectation, column and observed value."""
        where = f" on column '{self.column}'" if self.column else ""
        return f"{self.expectation}{where}: observed {self.observed}"


class ValidationReport(_Record):
    """The outcome of checking a batch against its Great Expectations suite."""

    success: bool
    suite_name: str
    n_expectations: int
    n_rows: int
    failures: tuple[ExpectationFailure, ...] = ()
    result_path: Path = Field(description="GX validation result as JSON.")
    docs_path: Path | None = Field(default=None, description="Data Docs HTML page of the result.")


class FeatureSpec(_Record):
    """A model input column and how it is typed for training and serving."""

    name: str
    kind: Literal["numeric", "categorical"]
    categories: tuple[str, ...] = ()


class ShardInfo(_Record):
    """One parquet shard of one split."""

    split: SplitName
    path: str = Field(description="Path relative to the shard directory.")
    md5: str
    n_rows: int


class ShardManifest(_Record):
    """A versioned, sharded dataset: its DVC hash restores exactly these files."""

    dataset: str
    raw_md5: str
    data_md5: str = Field(description="DVC object hash of the shard directory (….dir).")
    shard_dir: Path
    shards: tuple[ShardInfo, ...]
    features: tuple[FeatureSpec, ...]
    target: str
    positive_label: str
    sensitive: tuple[str, ...]
    row_id: str = "_row_id"

    def split_paths(self, split: SplitName) -> list[Path]:
        """Absolute paths of a split's shards, in shard order."""
        return [self.shard_dir / s.path for s in self.shards if s.split == split]

    def split_rows(self, split: SplitName) -> int:
        """Rows in a split."""
        return sum(s.n_rows for s in self.shards if s.split == split)


class TrainingResult(_Record):
    """A trained booster and how it was made."""

    model_path: Path
    trainer: Literal["xgboost", "lightgbm"] = "xgboost"
    params: dict[str, object]
    device: Literal["cpu", "cuda"]
    device_reason: str
    n_workers: int
    partition_workers: dict[str, int] = Field(
        description="Shard path -> worker rank it was read on."
    )
    seed: int
    best_iteration: int
    num_boosted_rounds: int
    valid_auc: float
    predictions_path: Path = Field(description="Test-split predictions as parquet.")
    valid_predictions_path: Path = Field(description="Valid-split predictions (fits thresholds).")
    train_seconds: float
    resumed_from_round: int = Field(
        default=0,
        ge=0,
        description="Rounds restored from a checkpoint (not redone) after a failed attempt; 0 if none.",
    )


class EvalReport(_Record):
    """Test-split evaluation: overall and per-group metrics plus report files."""

    metrics: dict[str, float]
    confusion_matrix: dict[str, int]
    groups_path: Path = Field(description="Per-group metrics as JSON.")
    report_dir: Path = Field(description="Folder of HTML/JSON reports to log with the run.")
    predictions_path: Path
    fairness_path: Path | None = Field(default=None, description="Fairness report as JSON.")
    drift_path: Path | None = Field(default=None, description="Drift summary as JSON.")
    threshold_policy_path: Path | None = Field(
        default=None, description="Per-group thresholds the model applies, when mitigated so."
    )


class ModelVersionRef(_Record):
    """A registered model version."""

    name: str
    version: str
    run_id: str
    aliases: tuple[str, ...] = ()
