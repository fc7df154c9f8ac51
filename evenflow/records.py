"""The records that flow between stages: small, typed, JSON-serialisable references, never frames."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

SplitName = Literal["train", "valid", "test"]


class Record(BaseModel):
    """Base of every record: immutable, and unknown fields are an error (typos fail loudly)."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class RawBatch(Record):
    """An input file as received: it is read, never modified."""

    dataset: str
    path: Path = Field(description="The file as received.")
    md5: str = Field(description="md5 of the file's bytes.")
    n_rows: int
    columns: tuple[str, ...]


class ExpectationFailure(Record):
    """One failed expectation with what was observed."""

    expectation: str = Field(description="GX expectation type, e.g. expect_column_to_exist.")
    column: str | None
    observed: str = Field(description="Observed value or a short summary of unexpected values.")
    kwargs: dict[str, object] = Field(default_factory=dict)

    def describe(self) -> str:
        """One line: expectation, column and observed value."""
        where = f" on column '{self.column}'" if self.column else ""
        return f"{self.expectation}{where}: observed {self.observed}"


class ValidationReport(Record):
    """The outcome of checking a batch against its Great Expectations suite."""

    success: bool = Field(description="Every expectation of the suite held.")
    suite_name: str
    n_expectations: int
    n_rows: int = Field(description="Rows checked.")
    failures: tuple[ExpectationFailure, ...] = ()
    result_path: Path = Field(description="GX validation result as JSON.")
    docs_path: Path | None = Field(default=None, description="Data Docs HTML page of the result.")


class FeatureSpec(Record):
    """A model input column and how it is typed for training and serving."""

    name: str
    kind: Literal["numeric", "categorical"]
    categories: tuple[str, ...] = ()


Evaluation = Literal["holdout", "cross_fit"]


class ShardInfo(Record):
    """One parquet shard of one split (and, when cross-fitted, of one fold)."""

    split: SplitName
    path: str = Field(description="Path relative to the shard directory.")
    md5: str
    n_rows: int
    fold: int | None = Field(default=None, description="Cross-fitting fold; None when held out.")


class SplitPlan(Record):
    """How rows are assigned: a held-out test split, or k-fold cross-fitting, and why."""

    evaluation: Evaluation
    folds: int = Field(default=0, ge=0, description="Folds when cross-fitted, else 0.")
    rule: Literal["shipped", "features", "group", "time"] = Field(
        description="What keeps rows together: the dataset's own split, identical feature "
        "values, the group column, or time order."
    )
    reason: str = Field(description="Why this plan, in the user's words.")
    time_cuts: tuple[float, float] | None = Field(
        default=None,
        description="Out-of-time: valid starts at the first value, test at the second.",
    )


class SplitSummary(Record):
    """One split (or fold) of the split report: rows, base rate and rows per sensitive group."""

    name: str = Field(description="train, valid, test, or fold-K.")
    rows: int
    positives: int
    base_rate: float | None
    groups: dict[str, dict[str, int]] = Field(description="Sensitive column -> group -> rows.")


class ShardManifest(Record):
    """A versioned, sharded dataset: its DVC hash restores exactly these files."""

    dataset: str
    raw_md5: str = Field(description="md5 of the raw file the shards were cut from.")
    data_md5: str = Field(description="DVC object hash of the shard directory (….dir).")
    shard_dir: Path = Field(description="Folder of the shards, tracked by DVC.")
    shards: tuple[ShardInfo, ...]
    features: tuple[FeatureSpec, ...]
    target: str
    positive_label: str
    sensitive: tuple[str, ...]
    row_id: str = "_row_id"
    plan: SplitPlan = Field(
        default=SplitPlan(evaluation="holdout", rule="features", reason="hash split"),
        description="Held out or cross-fitted, and why.",
    )
    split_report: tuple[SplitSummary, ...] = ()

    def split_paths(self, split: SplitName) -> list[Path]:
        """Absolute paths of a split's shards, in shard order."""
        return [self.shard_dir / s.path for s in self.shards if s.split == split]

    def split_rows(self, split: SplitName) -> int:
        """Rows in a split."""
        return sum(s.n_rows for s in self.shards if s.split == split)

    @property
    def cross_fitted(self) -> bool:
        """Every row is evaluated out of fold; there is no held-out test split."""
        return self.plan.evaluation == "cross_fit"

    @property
    def evaluated_split(self) -> SplitName:
        """The split whose rows carry the evaluation's predictions (all rows when cross-fitted)."""
        return "train" if self.cross_fitted else "test"

    @property
    def evaluated_rows(self) -> int:
        """Rows behind the evaluation's figures."""
        return self.split_rows(self.evaluated_split)

    def fold_manifest(self, fold: int) -> ShardManifest:
        """The manifest one fold trains on: fold ``fold`` is its test, the next fold its valid.

        Training on the other folds with early stopping on the next one keeps the test fold
        unseen by both the trees and the choice of rounds.
        """
        if not self.cross_fitted:
            raise ValueError("fold_manifest needs a cross-fitted manifest")
        valid_fold = (fold + 1) % self.plan.folds

        def role(info: ShardInfo) -> SplitName:
            if info.fold == fold:
                return "test"
            return "valid" if info.fold == valid_fold else "train"

        shards = tuple(s.model_copy(update={"split": role(s)}) for s in self.shards)
        return self.model_copy(update={"shards": shards})

    def refit_manifest(self) -> ShardManifest:
        """The manifest of the final model: every row trains.

        Fold 0 is listed again as the valid and test splits only because the trainer scores
        them; those scores are never used.
        """
        if not self.cross_fitted:
            raise ValueError("refit_manifest needs a cross-fitted manifest")
        train = tuple(s.model_copy(update={"split": "train"}) for s in self.shards)
        first = [s for s in train if s.fold == 0]
        extra = tuple(
            s.model_copy(update={"split": name}) for name in ("valid", "test") for s in first
        )
        return self.model_copy(update={"shards": train + extra})


class TrainingResult(Record):
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
    fold_best_iterations: tuple[int, ...] = Field(
        default=(),
        description="Cross-fitted: each fold's early-stopped best iteration (they set the refit's "
        "rounds); empty when held out.",
    )


class EvalReport(Record):
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


class ModelVersionRef(Record):
    """A registered model version."""

    name: str
    version: str
    run_id: str
    aliases: tuple[str, ...] = ()
    existing: bool = Field(
        default=False,
        description="True when the run registered nothing: this version already held its build.",
    )
