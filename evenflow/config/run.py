"""Run parameters: one frozen pydantic model per stage, one ``RunParams`` per run.

A run is described by one YAML file (``RunParams.from_yaml``) and can be overridden by CLI flags
(``RunParams.with_overrides``). Unknown keys are errors that name the key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, model_validator

from evenflow.config.fairness import FairnessParams, ImpactRatioParams
from evenflow.config.fields import (
    BatchRows,
    ColumnName,
    ColumnNames,
    Name,
    NonNegative,
    Parallelism,
    PositiveShare,
    ScoreCut,
    Seed,
    refuse_retired_key,
)
from evenflow.config.gates import GatePolicy
from evenflow.config.loading import YamlParams, canonical_hash, deep_merge
from evenflow.config.mitigation import MitigationParams
from evenflow.records import Record

BUILTIN_EXAMPLE = Path(__file__).parents[1] / "examples" / "adult" / "adult.yaml"


class DatasetSpec(Record):
    """What the data is: where it lives, what to predict and which columns are sensitive."""

    name: Name = Field(
        description="Dataset name: names the expectation suite, MLflow experiment and model."
    )
    path: Path = Field(description="CSV (optionally gzip-compressed) or Parquet file to train on.")
    target: ColumnName = Field(description="Column holding the label.")
    positive_label: str = Field(description="Value of the target column that counts as positive.")
    sensitive: ColumnNames = Field(
        description="Sensitive columns: fairness is reported for each and their intersections.",
        min_length=1,
    )
    split_column: str | None = Field(
        default=None,
        description="Column with the dataset's own split (train/valid/test); rows are hashed if unset.",
    )
    drop_columns: ColumnNames = Field(
        default=(), description="Columns that are neither features nor label (ids, leakage)."
    )
    personal_columns: ColumnNames = Field(
        default=(),
        description="Columns holding personal data (names, national ids, contact details): never "
        "features, never in the shards, the contract's value checks, predictions or logs; only "
        "their presence is checked.",
    )
    group_column: str | None = Field(
        default=None,
        description="Column naming the person or entity behind each row: all rows of one entity "
        "share a split (and a fold). Not a feature.",
    )
    time_column: str | None = Field(
        default=None,
        description="Date or time column: train on the past, test on the latest period "
        "(out-of-time). Not a feature.",
    )
    sensitive_as_features: bool = Field(
        default=True,
        description="Train on the sensitive columns too. Dropping them does not remove their signal.",
    )
    chunk_rows: BatchRows = Field(
        default=1_000_000,
        description="Rows of a parquet batch held at once while it is validated and sharded.",
    )
    validation_workers: Annotated[int, Field(ge=1, le=64)] | Literal["auto"] = Field(
        default="auto",
        description="Processes validating a parquet batch's chunks in parallel (1 to 64); auto: "
        "one per CPU this process may use. Each holds one chunk.",
    )

    @model_validator(mode="after")
    def _target_is_not_sensitive(self) -> DatasetSpec:
        if self.target in self.sensitive:
            raise ValueError(f"target column {self.target!r} cannot also be a sensitive column")
        return self

    @model_validator(mode="after")
    def _one_split_rule(self) -> DatasetSpec:
        rules = [
            f"{name}={value!r}"
            for name, value in (
                ("split_column", self.split_column),
                ("group_column", self.group_column),
                ("time_column", self.time_column),
            )
            if value
        ]
        if len(rules) > 1:
            raise ValueError(
                f"set at most one of split_column, group_column, time_column; got {rules}"
            )
        special = {c for c in (self.group_column, self.time_column) if c}
        clash = special & {self.target, *self.sensitive, *self.drop_columns}
        if clash:
            raise ValueError(
                f"column(s) {sorted(clash)} cannot be the group or time column and also the "
                "target, a sensitive column or a dropped column"
            )
        return self

    @model_validator(mode="after")
    def _personal_is_not_a_role(self) -> DatasetSpec:
        roles = {self.target, *self.sensitive}
        roles.update(c for c in (self.split_column, self.group_column, self.time_column) if c)
        clash = roles & set(self.personal_columns)
        if clash:
            raise ValueError(
                f"column(s) {sorted(clash)} cannot be personal columns: the run needs their "
                "values (target, sensitive, split, group or time column)"
            )
        return self

    def not_features(self) -> set[str]:
        """Columns that never feed the model: target, split, group and time columns, drops."""
        excluded = {self.target, *self.drop_columns, *self.personal_columns}
        excluded.update(c for c in (self.split_column, self.group_column, self.time_column) if c)
        if not self.sensitive_as_features:
            excluded.update(self.sensitive)
        return excluded

    @property
    def file_format(self) -> Literal["csv", "parquet"]:
        """Infer the file format from the file name."""
        suffixes = [s.lower() for s in self.path.suffixes]
        return "parquet" if ".parquet" in suffixes or ".pq" in suffixes else "csv"


class SplitParams(Record):
    """How rows are assigned to train / valid / test when the dataset ships no split."""

    valid_fraction: float = Field(
        default=0.15, gt=0.0, lt=0.5, description="Share of rows in valid."
    )
    test_fraction: float = Field(default=0.2, gt=0.0, lt=0.5, description="Share of rows in test.")
    seed: Seed = Field(default=0, description="Salt of the row hash.")


class ShardParams(Record):
    """How each split is cut into parquet shards."""

    n_shards: int = Field(default=4, ge=1, le=4096, description="Shards per split.")


class ClusterParams(Record):
    """The local Dask cluster started when no scheduler address is configured."""

    n_workers: Parallelism = Field(default=2, description="Dask worker processes.")
    threads_per_worker: Parallelism = Field(default=1, description="Threads per worker.")


class ModelParams(Record):
    """Gradient-boosting parameters; defaults are tuned for tabular data of Adult's kind."""

    trainer: Literal["xgboost", "lightgbm"] = Field(
        default="xgboost", description="Training library: xgboost.dask or lightgbm.dask."
    )
    device: Literal["cpu", "cuda", "auto"] = Field(
        default="auto", description="cuda, cpu, or auto (CUDA when a GPU is visible)."
    )
    num_boost_round: int = Field(
        default=2000, ge=1, le=100_000, description="Upper bound of rounds."
    )
    early_stopping_rounds: int = Field(
        default=50, ge=1, le=10_000, description="Stop after this many rounds without valid gain."
    )
    learning_rate: PositiveShare = Field(default=0.05, description="Shrinkage (eta).")
    max_depth: int = Field(default=6, ge=1, le=32, description="Maximum tree depth.")
    min_child_weight: NonNegative = Field(default=1.0, description="Minimum hessian in a leaf.")
    subsample: PositiveShare = Field(default=0.9, description="Row sampling per tree.")
    colsample_bytree: PositiveShare = Field(default=0.8, description="Column sampling.")
    reg_lambda: NonNegative = Field(default=1.0, description="L2 regularisation.")
    max_cat_to_onehot: int = Field(
        default=4, ge=1, le=1024, description="Categories at or below this use one-hot splits."
    )
    max_bin: int = Field(default=256, ge=2, le=4096, description="Histogram bins per feature.")
    seed: Seed = Field(default=42, description="Random seed of the booster.")
    checkpoint_every: int = Field(
        default=50,
        ge=0,
        le=100_000,
        description=(
            "Save the booster every this many rounds to the stage folder; a retried training "
            "resumes from the last save instead of starting over. 0 turns checkpoints off."
        ),
    )


class EvalParams(Record):
    """How the test split is evaluated."""

    threshold: ScoreCut = Field(default=0.5, description="Score cut for a positive.")

    @model_validator(mode="before")
    @classmethod
    def _retired_keys(cls, data: Any) -> Any:
        # One rule for small groups: evaluation no longer has its own row-count floor.
        return refuse_retired_key(data, "min_group_size")

    drift_sample_rows: int = Field(
        default=50_000, ge=1_000, description="Rows sampled per side for the drift report."
    )
    cross_fit_below_rows: int = Field(
        default=50_000,
        ge=0,
        le=10_000_000,
        description="Batches with fewer rows (and no split, time column) are cross-fitted: every "
        "row gets an out-of-fold prediction. 0 always holds out a test split.",
    )
    folds: int = Field(
        default=5, ge=3, le=20, description="Folds of cross-fitting (stratified, grouped)."
    )
    baseline_max_rows: int = Field(
        default=200_000,
        ge=1_000,
        le=10_000_000,
        description="Training rows sampled to fit the baselines (prior, logistic regression).",
    )


class ExplainParams(Record):
    """How much data the explanations use (TreeSHAP and the proxy check are per-row work)."""

    shap_rows: int = Field(default=5_000, ge=100, le=1_000_000, description="Test rows explained.")
    proxy_rows: int = Field(
        default=20_000, ge=500, le=5_000_000, description="Train rows for the proxy check."
    )
    seed: Seed = Field(default=0, description="Seed of both row samples.")


class ModelCardParams(Record):
    """What the model card says about use; written by the model's owners, reviewed with the code."""

    intended_use: str = Field(
        default="Not stated: set model_card.intended_use in the run configuration.",
        description="Who may use the model's scores, for which decision, under what oversight.",
    )
    out_of_scope_use: str = Field(
        default="Not stated: set model_card.out_of_scope_use in the run configuration.",
        description="Uses the model was not built or evaluated for.",
    )


ReasonText = Annotated[str, Field(min_length=1, max_length=200)]
"""One reason as a person reads it in a notice (``"Income too low for the amount asked"``)."""

ReasonKey = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.\- /:]+$")]
"""A feature name or prefix; a run logs each as an MLflow parameter name, hence the characters."""


class ReasonParams(Record):
    """How scoring states the principal reasons behind each adverse decision.

    An adverse-action notice (US ECOA / Regulation B) or a human reviewer (EU AI Act Art. 14)
    needs reasons a person can read and act on: texts written by the model's owners, and a
    policy that never names what the person cannot change or must not be judged on.
    """

    texts: dict[ReasonKey, ReasonText] = Field(
        default_factory=dict,
        max_length=1_000,
        description="Reason text per feature. A feature with neither text nor family is given "
        "by its name.",
    )
    families: dict[ReasonKey, ReasonText] = Field(
        default_factory=dict,
        max_length=1_000,
        description="Reason text per feature family: every feature whose name starts with the "
        "key (e.g. 'capital_'); the longest key wins, a feature's own text wins over it.",
    )
    top_k: int = Field(
        default=4, ge=1, le=20, description="Reasons given per adverse decision (reason_1..k)."
    )
    immutable: ColumnNames = Field(
        default=(),
        description="Features a person cannot change (e.g. age): never given as a reason, like "
        "the sensitive columns; the next feature takes their place.",
    )
    adverse_prediction: Literal[0, 1] = Field(
        default=0,
        description="The prediction that is adverse to the person and gets reasons: 0 when the "
        "positive label is the favourable outcome (as the selection rate assumes), 1 when it is "
        "the unfavourable one (a model that predicts default).",
    )


class RunParams(YamlParams):
    """Everything that defines a training run; its hash is the run's ``params_hash``."""

    PATH_KEYS: ClassVar[tuple[str, ...]] = ("dataset.path",)

    dataset: DatasetSpec = Field(description="The data to train on.")
    split: SplitParams = Field(default_factory=SplitParams, description="Row split.")
    shards: ShardParams = Field(default_factory=ShardParams, description="Sharding.")
    cluster: ClusterParams = Field(default_factory=ClusterParams, description="Local Dask cluster.")
    model: ModelParams = Field(default_factory=ModelParams, description="Booster parameters.")
    evaluation: EvalParams = Field(default_factory=EvalParams, description="Evaluation.")
    fairness: FairnessParams = Field(
        default_factory=FairnessParams,
        description="Fairness report (its threshold is evaluation.threshold).",
    )
    mitigation: MitigationParams = Field(
        default_factory=MitigationParams, description="Fairness mitigation of the registered model."
    )
    explain: ExplainParams = Field(default_factory=ExplainParams, description="Explanations.")
    gates: GatePolicy = Field(
        default_factory=GatePolicy, description="What a model must meet to become a candidate."
    )
    model_card: ModelCardParams = Field(
        default_factory=ModelCardParams, description="Intended and out-of-scope use."
    )
    reasons: ReasonParams = Field(
        default_factory=ReasonParams,
        description="Reasons given with each adverse decision when the model scores a batch.",
    )

    @model_validator(mode="after")
    def _a_shard_for_every_worker(self) -> RunParams:
        if self.shards.n_shards < self.cluster.n_workers:
            raise ValueError(
                f"shards.n_shards ({self.shards.n_shards}) is below cluster.n_workers "
                f"({self.cluster.n_workers}): every worker reads its own shard of each split; "
                f"set shards.n_shards to at least {self.cluster.n_workers}"
            )
        return self

    @model_validator(mode="after")
    def _registered_model_can_serve_its_mitigation(self) -> RunParams:
        if self.mitigation.method == "reductions":
            raise ValueError(
                "mitigation.method 'reductions' trains one node's randomised ensemble and is offered "
                "for comparison only (--compare-mitigations); a registered model uses none, "
                "reweighing or threshold"
            )
        return self

    @model_validator(mode="before")
    @classmethod
    def _one_decision_threshold(cls, data: Any) -> Any:
        """The fairness report and the metrics judge the same decisions: one threshold per run."""
        if not isinstance(data, dict):
            return data
        evaluation = data.get("evaluation") or {}
        threshold = (
            evaluation.get("threshold", 0.5)
            if isinstance(evaluation, dict)
            else getattr(evaluation, "threshold", 0.5)
        )
        fairness = data.get("fairness") or {}
        if isinstance(fairness, dict):
            if "threshold" in fairness and fairness["threshold"] != threshold:
                raise ValueError(
                    "fairness.threshold differs from evaluation.threshold; set evaluation.threshold only"
                )
            data = {**data, "fairness": {**fairness, "threshold": threshold}}
        return data

    def with_overrides(self, overrides: dict[str, Any]) -> RunParams:
        """Return a copy with nested overrides (e.g. from CLI flags) applied and validated."""
        current = self.model_dump(mode="json")
        current["fairness"].pop("threshold")  # derived from evaluation.threshold
        merged = deep_merge(current, overrides)
        return RunParams.from_mapping(merged, source="command-line flags")

    def recorded(self) -> dict[str, Any]:
        """These parameters as a run records them (JSON), in the shape older commits read.

        Keys added since (``dataset.personal_columns``, ``reasons``, ``fairness.impact_ratio``,
        ``gates.min_impact_ratio``) are left out while they hold their default, so a run's
        parameters load in the commit that made it (``reproduce``) and keep their hash.
        """
        payload = self.model_dump(mode="json")
        if not payload["dataset"]["personal_columns"]:
            payload["dataset"].pop("personal_columns")
        if self.reasons == ReasonParams():
            payload.pop("reasons")
        if self.fairness.impact_ratio == ImpactRatioParams():
            payload["fairness"].pop("impact_ratio")
        if not self.gates.min_impact_ratio:
            payload["gates"].pop("min_impact_ratio")
        return payload

    def params_hash(self) -> str:
        """Hash of the canonical JSON of these parameters (the data path is not part of it)."""
        payload = self.recorded()
        payload["dataset"].pop("path")
        return canonical_hash(payload)


def builtin_example() -> RunParams:
    """The run that ``evenflow run`` makes with no arguments: UCI Adult, as shipped."""
    return RunParams.from_yaml(BUILTIN_EXAMPLE)
