"""Explanations: XGBoost's own TreeSHAP, importance by group, and the files they are written to.

SHAP values come from ``Booster.predict(..., pred_contribs=True)``: the same numbers as the
``shap`` package's TreeExplainer at the same cost, without its import. They are in margin units
(log-odds for a logistic objective), and each row's values plus ``bias`` sum to the row's margin.
The proxy check lives in :mod:`evenflow.assess.proxy`; the files (JSON and plots) are written by
:mod:`evenflow.reports.explanations`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import xgboost as xgb
from pydantic import Field

from evenflow.assess.attribution import BIAS, OTHER, FeatureImportance
from evenflow.assess.predictions import MISSING
from evenflow.assess.proxy import ProxyResult
from evenflow.errors import DataError
from evenflow.records import Record


class GroupImportance(Record):
    """Mean absolute SHAP value of every feature over the rows of one group."""

    column: str = Field(description="Sensitive column.")
    group: str = Field(description="Group value; '(missing)' for missing, '(other)' for merged.")
    n: int = Field(description="Rows of the explained sample in the group.")
    mean_abs_shap: dict[str, float] = Field(description="Feature -> mean |SHAP| in the group.")


class ExplanationSummary(Record):
    """Global and per-group SHAP importance of one model on one sample of rows (aggregates only)."""

    n_rows: int = Field(description="Rows explained.")
    units: str = Field(default="margin (log-odds for binary:logistic)")
    expected_margin: float = Field(description="Mean of the bias column: the base margin.")
    global_importance: tuple[FeatureImportance, ...] = Field(
        description="Features by mean |SHAP| over all rows, largest first."
    )
    groups: tuple[GroupImportance, ...] = Field(
        description="Per sensitive column and group, in column order then by group label."
    )
    merged_groups: dict[str, tuple[str, ...]] = Field(
        default_factory=dict,
        description="Column -> smallest groups merged into '(other)' to respect max_groups.",
    )


class Explanations(Record):
    """What ``explanations.json`` holds: the SHAP summary and the proxy check."""

    summary: ExplanationSummary
    proxies: dict[str, ProxyResult]


class ExplanationFiles(Record):
    """Where the explanation artifacts were written."""

    json_path: Path
    summary_plot_path: Path
    group_plot_path: Path


# --- SHAP -----------------------------------------------------------------------------------


def shap_values(
    booster: xgb.Booster,
    features: pd.DataFrame,
    *,
    device: Literal["cpu", "cuda"] | None = None,
) -> pd.DataFrame:
    """TreeSHAP contributions of every feature for every row, plus the ``bias`` column.

    Uses XGBoost's built-in TreeSHAP (GPUTreeShap on ``device="cuda"``), so no ``shap`` import.

    Args:
        booster: The trained model; all its trees are used, as at serving time.
        features: Model inputs typed with ``evenflow.data.features.typed_features``.
        device: Run the explanation on this device (a copy of the booster is re-targeted);
            None keeps the booster's own setting.

    Returns:
        Float64 frame on ``features.index`` with one column per feature and ``bias``; each row
        sums to the booster's margin for that row.
    """
    if BIAS in features.columns:
        raise DataError(f"a feature may not be named {BIAS!r}: it is the SHAP bias column")
    if device is not None:
        booster = booster.copy()
        booster.set_param({"device": device})
    matrix = xgb.DMatrix(features, enable_categorical=True)
    contributions = booster.predict(matrix, pred_contribs=True)
    return pd.DataFrame(
        np.asarray(contributions, dtype=np.float64),
        columns=[*map(str, features.columns), BIAS],
        index=features.index,
    )


def lightgbm_shap_values(booster: Any, features: pd.DataFrame) -> pd.DataFrame:
    """TreeSHAP contributions of a LightGBM booster (its own ``pred_contrib``), like ``shap_values``."""
    contributions = np.asarray(booster.predict(features, pred_contrib=True), dtype=np.float64)
    columns = [*features.columns, BIAS]
    return pd.DataFrame(contributions, columns=columns, index=features.index)


def explanation_summary(
    shap: pd.DataFrame, sensitive: pd.DataFrame, max_groups: int = 20
) -> ExplanationSummary:
    """Global mean |SHAP| per feature and mean |SHAP| per feature within each sensitive group.

    A feature that matters much more for one group than another is worth a reviewer's look;
    the summary shows it without raw rows.

    Args:
        shap: Output of :func:`shap_values`.
        sensitive: Sensitive columns for the same rows (same index).
        max_groups: Most groups reported per column; the smallest beyond it are merged into
            ``"(other)"`` and named in ``merged_groups``.

    Returns:
        The summary record.
    """
    _check_aligned(shap, sensitive)
    if shap.empty:
        raise DataError("cannot summarise SHAP values of zero rows")
    values = shap.drop(columns=[BIAS]).abs()
    overall = values.mean().sort_values(ascending=False, kind="stable")
    groups: list[GroupImportance] = []
    merged: dict[str, tuple[str, ...]] = {}
    for column in sensitive.columns:
        keys, folded = _group_keys(sensitive[column], max_groups)
        if folded:
            merged[str(column)] = folded
        groups.extend(_group_importance(str(column), values, keys))
    return ExplanationSummary(
        n_rows=len(shap),
        expected_margin=float(shap[BIAS].mean()),
        global_importance=tuple(
            FeatureImportance(feature=str(name), mean_abs_shap=float(value))
            for name, value in overall.items()
        ),
        groups=tuple(groups),
        merged_groups=merged,
    )


def _check_aligned(shap: pd.DataFrame, sensitive: pd.DataFrame) -> None:
    if BIAS not in shap.columns:
        raise DataError(f"SHAP frame lacks the {BIAS!r} column; use explain.shap_values")
    if not shap.index.equals(sensitive.index):
        raise DataError("SHAP values and sensitive columns must share the same index")


def _group_keys(values: pd.Series, max_groups: int) -> tuple[pd.Series, tuple[str, ...]]:
    """Group labels as strings (missing as its own group), the smallest merged past ``max_groups``."""
    if max_groups < 1:
        raise ValueError("max_groups must be at least 1")
    keys = values.astype("string").fillna(MISSING).astype(object)
    counts = keys.value_counts()
    if len(counts) <= max_groups:
        return keys, ()
    ranked = sorted(counts.items(), key=lambda item: (-int(item[1]), str(item[0])))
    folded = tuple(sorted(str(name) for name, _ in ranked[max_groups - 1 :]))
    return keys.where(~keys.isin(folded), OTHER), folded


def _group_importance(column: str, values: pd.DataFrame, keys: pd.Series) -> list[GroupImportance]:
    grouped = values.groupby(keys.to_numpy(), sort=True)
    means, sizes = grouped.mean(), grouped.size()
    return [
        GroupImportance(
            column=column,
            group=str(group),
            n=int(sizes[group]),
            mean_abs_shap={str(k): float(v) for k, v in means.loc[group].items()},
        )
        for group in means.index
    ]


def read_explanations(path: Path) -> Explanations:
    """Read back an ``explanations.json`` (written by ``evenflow.reports.explanations``)."""
    return Explanations.model_validate(json.loads(path.read_text(encoding="utf-8")))
