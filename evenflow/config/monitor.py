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

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from evenflow.config.run import _deep_merge, _describe_validation_error, _read_yaml
from evenflow.errors import ConfigError

Statistic = Literal["wasserstein", "psi", "jensenshannon"]
CategoricalStatistic = Literal["psi", "jensenshannon"]

DEFAULT_ALIAS = "champion"


class _Params(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DriftThresholds(_Params):
    """The threshold of each statistic: a column whose value reaches it has drifted."""

    wasserstein: float = Field(
        default=0.1,
        gt=0.0,
        le=10.0,
        description="Normed Wasserstein distance (in reference standard deviations).",
    )
    psi: float = Field(
        default=0.2, gt=0.0, le=10.0, description="Population stability index (0.2: significant)."
    )
    jensenshannon: float = Field(
        default=0.1, gt=0.0, le=1.0, description="Jensen-Shannon distance (natural log)."
    )

    def of(self, statistic: Statistic) -> float:
        """The threshold of ``statistic``."""
        value: float = getattr(self, statistic)
        return value


class DriftPolicy(_Params):
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
    max_drifted_share: float = Field(
        default=0.1,
        ge=0.0,
        le=1.0,
        description="Largest share of checked columns that may drift; above it the run fails "
        "(0 fails on any drifted column).",
    )
    prediction_statistic: Statistic = Field(
        default="psi", description="Statistic comparing the model's scores on batch and reference."
    )
    max_prediction_drift: float = Field(
        default=0.2,
        gt=0.0,
        le=10.0,
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
    seed: int = Field(default=0, ge=0, le=2**31 - 1, description="Seed of the row samples.")

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


class MonitorParams(_Params):
    """Everything that defines a monitoring run of one batch against one registered model."""

    dataset: str = Field(
        description="Dataset name: names the expectation suite and the monitoring experiment.",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$",
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
        canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()

    @classmethod
    def from_yaml(cls, path: Path, overrides: dict[str, Any] | None = None) -> MonitorParams:
        """Load from YAML; relative ``data`` and ``retrain_config`` resolve against its folder."""
        raw = _read_yaml(path)
        for key in ("data", "retrain_config"):
            if isinstance(raw.get(key), str):
                raw[key] = str((path.parent / raw[key]).resolve())
        return cls.from_mapping(_deep_merge(raw, overrides or {}), source=str(path))

    @classmethod
    def from_mapping(cls, data: dict[str, Any], source: str = "parameters") -> MonitorParams:
        """Validate a nested mapping, turning pydantic's errors into one readable message."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            message = _describe_validation_error(exc, source)
            raise ConfigError(
                message.replace("run configuration", "monitoring configuration")
            ) from None
