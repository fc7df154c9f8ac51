"""The explanation files: ``explanations.json``, a SHAP beeswarm summary and mean |SHAP| by group.

``evenflow.assess.explain`` computes the SHAP values and their summary; this module only writes
them. Plots are drawn by ``evenflow.reports.figures`` (no pyplot, no backend switch at import time)
and every file is written atomically.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from evenflow import layout
from evenflow.assess.attribution import BIAS, sample_rows
from evenflow.assess.explain import (
    ExplanationFiles,
    Explanations,
    ExplanationSummary,
    GroupImportance,
)
from evenflow.assess.proxy import ProxyResult
from evenflow.errors import DataError
from evenflow.io import atomic_path, write_json_atomic
from evenflow.reports.figures import group_colours, render_png

if TYPE_CHECKING:
    from matplotlib.figure import Figure

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]

_PLOT_ROWS = 5_000  # points drawn per feature in the beeswarm; the summary uses every row
_SWARM_BINS = 80
_SWARM_HALF_WIDTH = 0.4


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
        shap: Output of ``evenflow.assess.explain.shap_values`` (drawn in the summary plot, not
            written).
        features: The explained rows.
        summary: Output of ``evenflow.assess.explain.explanation_summary``.
        proxies: Output of ``evenflow.assess.proxy.proxy_check``.
        out_dir: Folder for the three files (created if missing).
        top_k: Features drawn in the plots.
        seed: Seed of the plot's row subsample.

    Returns:
        Where the files are.
    """
    document = Explanations(summary=summary, proxies=dict(proxies))
    json_path = write_json_atomic(
        out_dir / layout.EXPLANATIONS_FILE, document.model_dump(mode="json")
    )
    summary_path = summary_plot(
        shap, features, out_dir / layout.SHAP_SUMMARY_PLOT_FILE, top_k, seed
    )
    group_path = group_importance_plot(
        summary, out_dir / layout.SHAP_BY_GROUP_PLOT_FILE, min(top_k, 10)
    )
    logger.info("explanations written to %s", out_dir)
    return ExplanationFiles(
        json_path=json_path, summary_plot_path=summary_path, group_plot_path=group_path
    )


def summary_plot(
    shap: pd.DataFrame, features: pd.DataFrame, path: Path, top_k: int = 15, seed: int = 0
) -> Path:
    """Write a beeswarm-style summary PNG: one row per top feature, SHAP value on the x axis.

    Points are coloured by the feature's value (low blue to high red; categories by code; missing
    grey), so the direction of an effect is visible, not only its size.

    Args:
        shap: Output of ``evenflow.assess.explain.shap_values``.
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
        summary: Output of ``evenflow.assess.explain.explanation_summary``.
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
    height = 0.8 / max(len(groups), 1)
    colours = group_colours(len(groups))
    for index, (group, colour) in enumerate(zip(groups, colours, strict=True)):
        positions = np.arange(len(top)) - 0.4 + height * (index + 0.5)
        widths = [group.mean_abs_shap.get(name, 0.0) for name in top]
        label = f"{group.group} (n={group.n:,})"
        ax.barh(positions, widths, height=height, color=colour, label=label)
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
    """Draw a plot and write it as PNG atomically."""
    png = render_png(draw, size, dpi=100)
    with atomic_path(path) as tmp:
        tmp.write_bytes(png)
    return path
