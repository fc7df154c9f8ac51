"""Explanations: XGBoost's own TreeSHAP, importance by group, summary plots and a proxy check.

SHAP values come from ``Booster.predict(..., pred_contribs=True)``: the same numbers as the
``shap`` package's TreeExplainer at the same cost, without its import. They are in margin units
(log-odds for a logistic objective), and each row's values plus ``bias`` sum to the row's margin.

The proxy check asks how well the *other* features predict each sensitive column. Dropping a
sensitive column does not remove its signal when other columns carry it; the check reports how much
they do (an AUC and the features that carry it). It is reported, never a gate by itself.

Plots are drawn on matplotlib's Agg canvas inside the plotting functions (no pyplot, no backend
switch at import time) and written atomically.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
import xgboost as xgb
from pydantic import BaseModel, ConfigDict, Field

from evenflow.errors import DataError
from evenflow.io import atomic_path, write_json_atomic

if TYPE_CHECKING:
    from matplotlib.figure import Figure

logger = logging.getLogger(__name__)

BIAS = "bias"
MISSING = "(missing)"
OTHER = "(other)"
JSON_NAME = "explanations.json"
SUMMARY_PLOT_NAME = "shap_summary.png"
GROUP_PLOT_NAME = "shap_by_group.png"

FloatArray = npt.NDArray[np.float64]

_PLOT_ROWS = 5_000  # points drawn per feature in the beeswarm; the summary uses every row
_SWARM_BINS = 80
_SWARM_HALF_WIDTH = 0.4
_PROXY_PARAMS: dict[str, Any] = {
    "tree_method": "hist",
    "max_depth": 4,
    "eta": 0.15,
    "subsample": 0.9,
    "max_cat_to_onehot": 1,
}
_PROXY_ROUNDS = 80
_PROXY_EXPLAIN_ROWS = 1_000
_BINARY = 2


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class FeatureImportance(_Record):
    """One feature's mean absolute SHAP value (margin units)."""

    feature: str
    mean_abs_shap: float


class GroupImportance(_Record):
    """Mean absolute SHAP value of every feature over the rows of one group."""

    column: str = Field(description="Sensitive column.")
    group: str = Field(description="Group value; '(missing)' for missing, '(other)' for merged.")
    n: int = Field(description="Rows of the explained sample in the group.")
    mean_abs_shap: dict[str, float] = Field(description="Feature -> mean |SHAP| in the group.")


class ExplanationSummary(_Record):
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


class ProxyResult(_Record):
    """How well the non-sensitive features predict one sensitive column on held-out rows."""

    column: str
    auc: float | None = Field(description="Out-of-fold AUC; None when it cannot be computed.")
    auc_kind: Literal["binary", "macro_ovr", "none"]
    class_auc: dict[str, float] = Field(
        default_factory=dict, description="One-vs-rest AUC per class (multiclass only)."
    )
    n_rows: int
    n_folds: int
    classes: dict[str, int] = Field(description="Class -> rows (after merging rare classes).")
    merged_classes: tuple[str, ...] = Field(
        default=(), description="Classes too rare to stratify, merged into '(other)'."
    )
    features_used: tuple[str, ...]
    top_features: tuple[FeatureImportance, ...] = Field(
        description="Features by mean |SHAP| of the proxy model on held-out rows (≤1,000 per fold)."
    )
    model: str = Field(description="The proxy model, in words.")
    note: str | None = None


class Explanations(_Record):
    """What ``explanations.json`` holds: the SHAP summary and the proxy check."""

    summary: ExplanationSummary
    proxies: dict[str, ProxyResult]


class ExplanationFiles(_Record):
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


def sample_rows(frame: pd.DataFrame, max_rows: int | None, seed: int) -> pd.DataFrame:
    """A seeded sample of at most ``max_rows`` rows (all rows, in order, when it fits)."""
    if max_rows is None or len(frame) <= max_rows:
        return frame
    return frame.sample(n=max_rows, random_state=seed).sort_index()


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


# --- proxy check ----------------------------------------------------------------------------


def proxy_check(
    features: pd.DataFrame,
    sensitive: pd.DataFrame,
    seed: int = 0,
    max_rows: int | None = 20_000,
    *,
    n_folds: int = 3,
    top_k: int = 5,
    n_threads: int = 1,
) -> dict[str, ProxyResult]:
    """How well the non-sensitive features predict each sensitive column (out-of-fold AUC).

    A gradient-boosted classifier (XGBoost, categorical splits) is fitted on ``n_folds`` stratified
    folds; the AUC is computed on the out-of-fold probabilities: binary AUC for two classes, macro
    one-vs-rest AUC for more. Classes with fewer rows than folds are merged into ``"(other)"``.
    An AUC near 0.5 means the features say little about the column; near 1, they encode it.

    Args:
        features: Model inputs (typed); sensitive columns among them are excluded.
        sensitive: The sensitive columns, same index as ``features``.
        seed: Seed of the row sample, the folds and the model.
        max_rows: Rows used at most (a seeded sample); None uses every row.
        n_folds: Cross-validation folds.
        top_k: Features listed as carrying the signal.
        n_threads: XGBoost threads per fit; one by default because OpenMP threads on busy
            cores (e.g. beside Dask workers) run many times slower than one thread.

    Returns:
        Sensitive column -> result, in the order of ``sensitive``'s columns.
    """
    if not features.index.equals(sensitive.index):
        raise DataError("features and sensitive columns must share the same index")
    rows = sample_rows(features.index.to_frame(), max_rows, seed).index
    predictors = features.loc[rows, [c for c in features.columns if c not in sensitive.columns]]
    return {
        str(column): _proxy_one(
            str(column),
            predictors,
            sensitive.loc[rows, column],
            seed=seed,
            n_folds=n_folds,
            top_k=top_k,
            n_threads=n_threads,
        )
        for column in sensitive.columns
    }


def _proxy_one(
    column: str,
    predictors: pd.DataFrame,
    target: pd.Series,
    *,
    seed: int,
    n_folds: int,
    top_k: int,
    n_threads: int,
) -> ProxyResult:
    labels, merged = _proxy_labels(target, n_folds)
    predictors = predictors.loc[labels.index]
    classes = sorted(labels.unique())
    base = {
        "column": column,
        "n_rows": len(labels),
        "n_folds": n_folds,
        "classes": {str(c): int(n) for c, n in labels.value_counts().sort_index().items()},
        "merged_classes": merged,
        "features_used": tuple(map(str, predictors.columns)),
        "model": f"XGBoost hist, depth {_PROXY_PARAMS['max_depth']}, {_PROXY_ROUNDS} rounds",
    }
    if predictors.shape[1] == 0 or len(classes) < _BINARY:
        why = "no non-sensitive features" if predictors.shape[1] == 0 else "fewer than two classes"
        return ProxyResult(**base, auc=None, auc_kind="none", top_features=(), note=why)
    codes = pd.Categorical(labels, categories=classes).codes.astype(np.int64)
    params = {**_PROXY_PARAMS, "seed": seed, "nthread": n_threads, **_objective(len(classes))}
    proba, importance = _out_of_fold(predictors, codes, params, n_folds, seed)
    auc, per_class = _proxy_auc(codes, proba, classes)
    top = importance.sort_values(ascending=False, kind="stable").head(top_k)
    logger.info("proxy check %s: AUC %.3f from %d features", column, auc, predictors.shape[1])
    return ProxyResult(
        **base,
        auc=auc,
        auc_kind="binary" if len(classes) == _BINARY else "macro_ovr",
        class_auc=per_class,
        top_features=tuple(
            FeatureImportance(feature=str(k), mean_abs_shap=float(v)) for k, v in top.items()
        ),
    )


def _proxy_labels(target: pd.Series, n_folds: int) -> tuple[pd.Series, tuple[str, ...]]:
    """Class labels as strings; classes too rare for stratified folds merged into ``(other)``."""
    labels = target.astype("string").fillna(MISSING).astype(object)
    counts = labels.value_counts()
    rare = tuple(sorted(str(c) for c, n in counts.items() if n < n_folds))
    if not rare:
        return labels, ()
    merged = labels.where(~labels.isin(rare), OTHER)
    if int((merged == OTHER).sum()) < n_folds:  # still too rare: drop those rows
        merged = merged[merged != OTHER]
    return merged, rare


def _out_of_fold(
    predictors: pd.DataFrame,
    codes: npt.NDArray[np.int64],
    params: Mapping[str, Any],
    folds: int,
    seed: int,
) -> tuple[FloatArray, pd.Series]:
    """Out-of-fold class probabilities and mean |SHAP| per feature on the held-out rows."""
    from sklearn.model_selection import StratifiedKFold  # noqa: PLC0415

    n_classes = int(params.get("num_class", _BINARY))
    proba = np.zeros((len(codes), n_classes))
    importance = np.zeros(predictors.shape[1])
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for train, test in splitter.split(np.zeros(len(codes)), codes):
        fit = xgb.DMatrix(predictors.iloc[train], label=codes[train], enable_categorical=True)
        booster = xgb.train(params, fit, num_boost_round=_PROXY_ROUNDS)
        held_out = xgb.DMatrix(predictors.iloc[test], enable_categorical=True)
        raw = np.asarray(booster.predict(held_out), dtype=np.float64)
        proba[test] = raw if n_classes > _BINARY else np.column_stack([1.0 - raw, raw])
        importance += _mean_abs_contributions(booster, predictors.iloc[test]) / folds
    return proba, pd.Series(importance, index=list(map(str, predictors.columns)))


def _mean_abs_contributions(booster: xgb.Booster, rows: pd.DataFrame) -> FloatArray:
    """Mean |SHAP| per feature over at most ``_PROXY_EXPLAIN_ROWS`` evenly spaced rows.

    TreeSHAP costs far more than the fit here (one tree set per class); a mean needs few rows.
    """
    step = max(1, -(-len(rows) // _PROXY_EXPLAIN_ROWS))
    matrix = xgb.DMatrix(rows.iloc[::step], enable_categorical=True)
    contributions = np.abs(np.asarray(booster.predict(matrix, pred_contribs=True)))
    axes = tuple(range(contributions.ndim - 1))  # rows, and classes when multiclass
    means: FloatArray = contributions.mean(axis=axes)[:-1].astype(np.float64)
    return means


def _objective(n_classes: int) -> dict[str, Any]:
    if n_classes == _BINARY:
        return {"objective": "binary:logistic"}
    return {"objective": "multi:softprob", "num_class": n_classes}


def _proxy_auc(
    codes: npt.NDArray[np.int64], proba: FloatArray, classes: Sequence[str]
) -> tuple[float, dict[str, float]]:
    from sklearn.metrics import roc_auc_score  # noqa: PLC0415

    if len(classes) == _BINARY:
        return float(roc_auc_score(codes, proba[:, 1])), {}
    per_class = {
        str(name): float(roc_auc_score(codes == k, proba[:, k])) for k, name in enumerate(classes)
    }
    return float(np.mean(list(per_class.values()))), per_class


# --- plots ----------------------------------------------------------------------------------


def summary_plot(
    shap: pd.DataFrame, features: pd.DataFrame, path: Path, top_k: int = 15, seed: int = 0
) -> Path:
    """Write a beeswarm-style summary PNG: one row per top feature, SHAP value on the x axis.

    Points are coloured by the feature's value (low blue to high red; categories by code; missing
    grey), so the direction of an effect is visible, not only its size.

    Args:
        shap: Output of :func:`shap_values`.
        features: The explained rows (same index and columns as ``shap`` minus ``bias``).
        path: PNG to write (atomically).
        top_k: Features drawn, by mean |SHAP|.
        seed: Seed of the subsample drawn when there are more rows than fit a plot.

    Returns:
        ``path``.
    """
    if not shap.index.equals(features.index):
        raise DataError("SHAP values and features must share the same index")
    order = shap.drop(columns=[BIAS]).abs().mean().sort_values(ascending=False, kind="stable")
    top = [str(name) for name in order.index[:top_k]]
    drawn = sample_rows(shap.index.to_frame(), _PLOT_ROWS, seed).index
    values, colours = shap.loc[drawn, top], features.loc[drawn, top]

    def draw(figure: Figure) -> None:
        ax = figure.subplots()
        for row, name in enumerate(top):
            x = values[name].to_numpy(dtype=np.float64)
            y = row + _swarm_offsets(x)
            colour = _colour_values(colours[name])
            known = np.isfinite(colour)
            ax.scatter(x[~known], y[~known], s=6, c="0.65", linewidths=0, rasterized=True)
            points = ax.scatter(
                x[known],
                y[known],
                s=6,
                c=colour[known],
                cmap="coolwarm",
                vmin=0.0,
                vmax=1.0,
                linewidths=0,
                rasterized=True,
            )
        ax.axvline(0.0, color="0.5", lw=0.8)
        ax.set_yticks(range(len(top)), top, fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel("SHAP value (margin units)")
        ax.set_title(f"SHAP summary, top {len(top)} features ({len(drawn):,} rows)", fontsize=10)
        if top:
            bar = figure.colorbar(points, ax=ax, ticks=[0.0, 1.0], fraction=0.04)
            bar.ax.set_yticklabels(["low", "high"], fontsize=8)
            bar.set_label("feature value", fontsize=8)

    return _save_png(draw, (8.0, 1.2 + 0.38 * max(len(top), 1)), path)


def group_importance_plot(summary: ExplanationSummary, path: Path, top_k: int = 10) -> Path:
    """Write a bar chart of mean |SHAP| per top feature, one bar per group, one panel per column.

    Args:
        summary: Output of :func:`explanation_summary`.
        path: PNG to write (atomically).
        top_k: Features drawn, by global mean |SHAP|.

    Returns:
        ``path``.
    """
    top = [item.feature for item in summary.global_importance[:top_k]]
    columns = list(dict.fromkeys(group.column for group in summary.groups))

    def draw(figure: Figure) -> None:
        axes = figure.subplots(1, max(len(columns), 1), sharey=True, squeeze=False)[0]
        for ax, column in zip(axes, columns, strict=False):
            groups = [g for g in summary.groups if g.column == column]
            _group_bars(ax, groups, top)
            ax.set_title(column, fontsize=9)
            ax.set_xlabel("mean |SHAP|", fontsize=8)
        axes[0].set_yticks(range(len(top)), top, fontsize=8)
        axes[0].invert_yaxis()
        figure.suptitle("Mean |SHAP| by group", fontsize=10)

    width = 3.0 + 3.2 * max(len(columns), 1)
    return _save_png(draw, (width, 1.4 + 0.42 * max(len(top), 1)), path)


def _group_bars(ax: Any, groups: Sequence[GroupImportance], top: Sequence[str]) -> None:
    from matplotlib import colormaps  # noqa: PLC0415

    cmap = colormaps["tab10" if len(groups) <= 10 else "tab20"]  # noqa: PLR2004
    height = 0.8 / max(len(groups), 1)
    for index, group in enumerate(groups):
        positions = np.arange(len(top)) - 0.4 + height * (index + 0.5)
        widths = [group.mean_abs_shap.get(name, 0.0) for name in top]
        label = f"{group.group} (n={group.n:,})"
        ax.barh(positions, widths, height=height, color=cmap(index % cmap.N), label=label)
    ax.legend(fontsize=7)
    ax.tick_params(labelsize=7)


def _swarm_offsets(x: FloatArray) -> FloatArray:
    """Vertical offsets that spread points sharing an x bin, as a beeswarm does (vectorised)."""
    if x.size == 0:
        return np.zeros(0)
    span = float(np.ptp(x)) or 1.0
    bins = np.floor((x - x.min()) / span * (_SWARM_BINS - 1)).astype(np.int64)
    order = np.argsort(bins, kind="stable")
    ranks = np.empty(x.size, dtype=np.int64)
    ranks[order] = np.arange(x.size) - np.searchsorted(bins[order], bins[order], side="left")
    crowd = np.bincount(bins, minlength=_SWARM_BINS).max()
    step = _SWARM_HALF_WIDTH / max(crowd / 2.0, 1.0)
    signs = np.where(ranks % 2 == 0, 1.0, -1.0)
    offsets: FloatArray = signs * ((ranks + 1) // 2) * step
    return offsets


def _colour_values(column: pd.Series) -> FloatArray:
    """Feature values mapped to [0, 1] for colouring; NaN where missing."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        codes: FloatArray = column.cat.codes.to_numpy(dtype=np.float64)
        codes[codes < 0] = np.nan
        return codes / max(len(column.cat.categories) - 1, 1)
    numbers: FloatArray = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64)
    finite = numbers[np.isfinite(numbers)]
    if finite.size == 0:
        return numbers
    low, high = (float(q) for q in np.percentile(finite, [5, 95]))
    if high <= low:  # a mostly constant feature (e.g. capital loss): use its full range
        low, high = float(finite.min()), float(finite.max())
    if high <= low:
        return np.where(np.isfinite(numbers), 0.5, np.nan)
    scaled: FloatArray = np.clip((numbers - low) / (high - low), 0.0, 1.0)
    return scaled


def _save_png(draw: Callable[[Figure], None], size: tuple[float, float], path: Path) -> Path:
    """Draw on a fresh Agg-backed figure and write it as PNG atomically (no pyplot state)."""
    # Imported here so that importing this module costs nothing and selects no backend.
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: PLC0415
    from matplotlib.figure import Figure  # noqa: PLC0415

    figure = Figure(figsize=size, dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    draw(figure)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png")
    return path


# --- files ----------------------------------------------------------------------------------


def write_explanations(
    shap: pd.DataFrame,
    features: pd.DataFrame,
    summary: ExplanationSummary,
    proxies: Mapping[str, ProxyResult],
    out_dir: Path,
    *,
    top_k: int = 15,
    seed: int = 0,
) -> ExplanationFiles:
    """Write ``explanations.json`` (summary + proxy check) and the two PNGs, each atomically.

    Args:
        shap: Output of :func:`shap_values` (drawn in the summary plot, not written).
        features: The explained rows.
        summary: Output of :func:`explanation_summary`.
        proxies: Output of :func:`proxy_check`.
        out_dir: Folder for the three files (created if missing).
        top_k: Features drawn in the plots.
        seed: Seed of the plot's row subsample.

    Returns:
        Where the files are.
    """
    document = Explanations(summary=summary, proxies=dict(proxies))
    json_path = write_json_atomic(out_dir / JSON_NAME, document.model_dump(mode="json"))
    summary_path = summary_plot(shap, features, out_dir / SUMMARY_PLOT_NAME, top_k, seed)
    group_path = group_importance_plot(summary, out_dir / GROUP_PLOT_NAME, min(top_k, 10))
    logger.info("explanations written to %s", out_dir)
    return ExplanationFiles(
        json_path=json_path, summary_plot_path=summary_path, group_plot_path=group_path
    )


def read_explanations(path: Path) -> Explanations:
    """Read back an ``explanations.json`` written by :func:`write_explanations`."""
    return Explanations.model_validate(json.loads(path.read_text(encoding="utf-8")))
