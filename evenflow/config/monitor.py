"""Parameters of a monitoring run: which batch, which model, and the drift policy it is held to.

Like ``RunParams``, a monitoring run is described by one YAML file (``MonitorParams.from_yaml``)
and CLI flags override it; unknown keys are errors that name the key.

Every statistic is a distance (larger means more drift) and a column drifts when its value is at
or above its threshold, as Evidently decides it:

- ``wasserstein``: Wasserstein-1 distance divided by the reference's standard deviation. Unlike a
  p-value it does not shrink towards "drifted" as the sample grows, so it stays meaningful on
  large batches; 0.1 means the mass moved, on average, a tenth of a standard deviation.
- ``psi``: population stability index over the categories (numeric columns: Sturges bins).
  The usual reading: below 0.1 stable, 0.1-0.2 moderate shift, above 0.2 significant shift.
- ``jensenshannon``: Jensen-Shannon distance (base e) of the two distributions, in [0, 0.83].
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, model_validator

from evenflow.config.fields import Distance, Name, Seed, Share
from evenflow.config.loading import YamlParams, canonical_hash
from evenflow.errors import ConfigError
from evenflow.records import Record

Statistic = Literal["wasserstein", "psi", "jensenshannon"]
CategoricalStatistic = Literal["psi", "jensenshannon"]

DEFAULT_ALIAS = "champion"


class DriftThresholds(Record):
    """The threshold of each statistic: a column whose value reaches it has drifted."""

    wasserstein: Distance = Field(
        default=0.1, description="Normed Wasserstein distance (in reference standard deviations)."
    )
    psi: Distance = Field(default=0.2, description="Population stability index (0.2: significant).")
    jensenshannon: float = Field(
        default=0.1, gt=0.0, le=1.0, description="Jensen-Shannon distance (natural log)."
    )

    def of(self, statistic: Statistic) -> float:
        """The threshold of ``statistic``."""
        value: float = getattr(self, statistic)
        return value


class DriftPolicy(Record):
    """How drift is measured and how much of it a batch may show before the run fails."""

    numeric_statistic: Statistic = Field(
        default="wasserstein", description="Statistic of numeric columns."
    )
    categorical_statistic: CategoricalStatistic = Field(
        default="psi", description="Statistic of categorical columns."
    )
    thresholds: DriftThresholds = Field(
        default_factory=DriftThresholds, description="Threshold per statistic."
    )
    column_thresholds: dict[str, float] = Field(
        default_factory=dict,
        description="Per-column thresholds that replace the statistic's threshold (column -> value).",
    )
    ignore_columns: tuple[str, ...] = Field(
        default=(),
        description="Feature columns left out of the drift checks (named in the report).",
    )
    max_drifted_share: Share = Field(
        default=0.1,
        description="Largest share of checked columns that may drift; above it the run fails "
        "(0 fails on any drifted column).",
    )
    prediction_statistic: Statistic = Field(
        default="psi", description="Statistic comparing the model's scores on batch and reference."
    )
    max_prediction_drift: Distance = Field(
        default=0.2,
        description="Prediction drift at or above this value fails the run "
        "(in units of prediction_statistic).",
    )
    max_rows: int | None = Field(
        default=1_000_000,
        ge=1_000,
        le=100_000_000,
        description="Rows sampled from each side (batch, reference) before drift and scoring; "
        "None uses every row.",
    )
    seed: Seed = Field(default=0, description="Seed of the row samples.")

    @model_validator(mode="after")
    def _positive_column_thresholds(self) -> DriftPolicy:
        bad = {column: value for column, value in self.column_thresholds.items() if value <= 0}
        if bad:
            raise ValueError(f"column thresholds must be positive: {bad}")
        return self

    def threshold(self, column: str, statistic: Statistic) -> float:
        """The threshold a column is held to: its own, or its statistic's."""
        return self.column_thresholds.get(column, self.thresholds.of(statistic))


def parse_model_ref(text: str) -> tuple[str, str]:
    """``NAME@ALIAS`` or ``NAME`` (alias ``champion``) as (name, alias).

    Raises:
        ConfigError: An empty name or alias.
    """
    name, _, alias = text.partition("@")
    if not name or (text.endswith("@") or (alias == "" and "@" in text)):
        raise ConfigError(f"--model {text!r}: expected NAME or NAME@ALIAS")
    return name, alias or DEFAULT_ALIAS


class MonitorParams(YamlParams):
    """Everything that defines a monitoring run of one batch against one registered model."""

    WHAT: ClassVar[str] = "monitoring configuration"
    PATH_KEYS: ClassVar[tuple[str, ...]] = ("data", "retrain_config")

    dataset: Name = Field(
        description="Dataset name: names the expectation suite and the monitoring experiment."
    )
    data: Path = Field(description="The new batch: CSV (optionally compressed) or Parquet.")
    model: str | None = Field(
        default=None, min_length=1, description="Registered model name (default: the dataset)."
    )
    alias: str = Field(
        default=DEFAULT_ALIAS, min_length=1, description="Alias of the version monitored."
    )
    drift: DriftPolicy = Field(default_factory=DriftPolicy, description="The drift policy.")
    retrain: bool = Field(
        default=False,
        description="On drift beyond the policy, train a new candidate from retrain_config "
        "before the run fails.",
    )
    retrain_config: Path | None = Field(
        default=None, description="Training run configuration (YAML) used when retrain is on."
    )

    @model_validator(mode="after")
    def _retrain_needs_config(self) -> MonitorParams:
        if self.retrain and self.retrain_config is None:
            raise ValueError("retrain needs retrain_config: the training run YAML to run")
        return self

    @property
    def model_name(self) -> str:
        """The registered model monitored."""
        return self.model or self.dataset

    def params_hash(self) -> str:
        """Hash of the canonical JSON of these parameters (the batch path is not part of it)."""
        payload = self.model_dump(mode="json")
        payload.pop("data")
        return canonical_hash(payload)
