"""Reason codes: the principal reasons behind each adverse decision, from exact TreeSHAP.

An adverse-action notice (US ECOA / Regulation B) or a human reviewer (EU AI Act Art. 14) needs
the features that pushed one person's score toward the decision they got. A tree booster gives
them exactly: its TreeSHAP contributions plus the bias add up to the row's margin (log-odds), so
the most negative contributions are what pulled the score below the cut. No sampling, no
background data, no surrogate model: the same booster that scored the row explains it.

By default the positive label is the favourable decision (the one the selection rate counts), so
a row predicted 0 is adverse and its reasons are its most negative contributions; a model whose
positive label is the adverse outcome (one that predicts default, say) sets
``reasons.adverse_prediction: 1``, and its reasons are the most positive contributions.

What may be given as a reason is a policy, recorded with every scoring run: sensitive columns and
the features the model's owners declared immutable (age, say) are never given: a person can do
nothing about them and must not be judged on the former. The next feature takes their place.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field

from evenflow.records import Record

REASON_PREFIX = "reason_"
SENSITIVE = "sensitive column"
IMMUTABLE = "immutable (configured in reasons.immutable)"
ROWS_PER_CALL = 65_536
"""Rows explained per booster call: contributions hold rows x (features + 1) floats."""


def reason_columns(top_k: int) -> list[str]:
    """``reason_1 … reason_k``: the output columns, most important first."""
    return [f"{REASON_PREFIX}{rank}" for rank in range(1, top_k + 1)]


class ReasonPolicy(Record):
    """What scoring may give as a reason, and what it never gives and why (recorded per run)."""

    top_k: int = Field(ge=1, le=20, description="Reasons per adverse decision.")
    adverse_prediction: Literal[0, 1] = Field(
        default=0, description="The decision that gets reasons: 0 unless the positive is adverse."
    )
    texts: dict[str, str] = Field(default_factory=dict, description="Reason text per feature.")
    families: dict[str, str] = Field(
        default_factory=dict, description="Reason text per feature-name prefix."
    )
    excluded: dict[str, str] = Field(
        default_factory=dict, description="Model features never given as a reason, and why."
    )
    method: str = Field(
        default="exact TreeSHAP contributions of the booster (log-odds), those pushing hardest "
        "toward the adverse decision first; ties broken by feature name",
        description="How the reasons were found.",
    )

    @classmethod
    def for_model(
        cls,
        features: Sequence[str],
        *,
        sensitive: Sequence[str],
        immutable: Sequence[str],
        texts: Mapping[str, str],
        top_k: int,
        families: Mapping[str, str] | None = None,
        adverse_prediction: Literal[0, 1] = 0,
    ) -> ReasonPolicy:
        """The policy for a model's features: sensitive first, so it is the reason recorded."""
        excluded = {name: IMMUTABLE for name in features if name in set(immutable)}
        excluded.update({name: SENSITIVE for name in features if name in set(sensitive)})
        return cls(
            top_k=top_k,
            texts=dict(texts),
            families=dict(families or {}),
            adverse_prediction=adverse_prediction,
            excluded=dict(sorted(excluded.items())),
        )

    def text(self, feature: str) -> str:
        """The feature's reason text: its own, else its longest family's, else its name."""
        if feature in self.texts:
            return self.texts[feature]
        families = [prefix for prefix in self.families if feature.startswith(prefix)]
        return self.families[max(families, key=len)] if families else feature


@dataclass(frozen=True)
class Contributions:
    """TreeSHAP contributions of a booster on some rows: one column per feature, and the bias."""

    features: tuple[str, ...]
    values: np.ndarray
    """rows x features, in log-odds."""
    bias: np.ndarray
    """Per row: the expected margin the features move the row from."""

    @property
    def margin(self) -> np.ndarray:
        """What the contributions add up to: the booster's raw score (log-odds) per row."""
        return np.asarray(self.values.sum(axis=1) + self.bias, dtype=np.float64)


def contributions(
    booster: Any, typed: pd.DataFrame, trainer: Literal["xgboost", "lightgbm"] | str
) -> Contributions:
    """Exact TreeSHAP contributions of ``booster`` on ``typed`` (rows typed as in serving).

    Computed ``ROWS_PER_CALL`` rows at a time, so a scoring chunk of a million rows does not
    hold a million x features matrix of doubles at once beside the chunk.
    """
    parts = [
        _contributions_of(booster, typed.iloc[start : start + ROWS_PER_CALL], trainer)
        for start in range(0, max(len(typed), 1), ROWS_PER_CALL)
    ]
    matrix = np.concatenate(parts) if parts else np.empty((0, typed.shape[1] + 1))
    return Contributions(
        features=tuple(str(c) for c in typed.columns),
        values=matrix[:, :-1],
        bias=matrix[:, -1],
    )


def _contributions_of(booster: Any, typed: pd.DataFrame, trainer: str) -> np.ndarray:
    """Rows x (features + 1): each feature's contribution, the bias last (both libraries)."""
    if trainer == "lightgbm":
        return np.asarray(booster.predict(typed, pred_contrib=True), dtype=np.float64)
    import xgboost as xgb  # noqa: PLC0415  (only XGBoost models need it)

    matrix = xgb.DMatrix(typed, enable_categorical=True)
    return np.asarray(booster.predict(matrix, pred_contribs=True), dtype=np.float64)


def top_reasons(
    found: Contributions, adverse: np.ndarray, policy: ReasonPolicy, index: pd.Index | None = None
) -> pd.DataFrame:
    """``reason_1 … reason_k`` per row: texts of the features that pushed hardest toward refusal.

    Only adverse rows get reasons, and only features that pushed toward the adverse decision (a
    negative contribution, or a positive one where the positive prediction is adverse); a row with fewer such features leaves the last columns empty (null).
    Excluded features are skipped, never replaced by a blank. Order: most negative first, ties
    broken by feature name, so the same row gets the same reasons in any batch, any chunk.
    """
    columns = reason_columns(policy.top_k)
    allowed = sorted(name for name in found.features if name not in policy.excluded)
    position = {name: i for i, name in enumerate(found.features)}
    toward_adverse = -1.0 if policy.adverse_prediction else 1.0
    values = toward_adverse * found.values[:, [position[name] for name in allowed]]
    order = np.argsort(values, axis=1, kind="stable")[:, : policy.top_k]
    picked = np.take_along_axis(values, order, axis=1)
    texts = np.array([policy.text(name) for name in allowed] or [""], dtype=object)
    reasons = np.full((len(values), policy.top_k), None, dtype=object)
    given = (picked < 0) & np.asarray(adverse, dtype=bool)[:, None]
    chosen = texts[order]
    chosen[~given] = None
    reasons[:, : order.shape[1]] = chosen
    return pd.DataFrame(reasons, columns=columns, index=index)


def recorded_policy(policy: ReasonPolicy) -> dict[str, Any]:
    """The policy as a scoring run records it (sidecar, Parquet metadata, MLflow)."""
    return {
        "given": True,
        "top_k": policy.top_k,
        "adverse_prediction": policy.adverse_prediction,
        "method": policy.method,
        "excluded": policy.excluded,
        "texts": policy.texts,
        "families": policy.families,
    }
