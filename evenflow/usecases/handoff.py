"""The data-team handoff: check a candidate batch against its contract and against the champion's data.

A data team hands over a file and wants one answer: does it meet the contract, and how does it
differ from the data the current champion was trained on? Validation (Great Expectations) decides
pass or fail; the profile diff (schema and statistics) explains what changed and, by default,
fails nothing by itself.

Profiles hold aggregates only: dtypes, null counts, numeric moments and a percentile grid,
and the category counts of low-cardinality text columns. Counts, min/max, mean and std merge
exactly (``merge_profiles``), so a profile can be built shard by shard; merged quantiles are
interpolated from the parts' grids and are approximate, as are quantiles of any sampled profile.
"""

from __future__ import annotations

import json
import logging
import math
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from pydantic import BaseModel, ConfigDict, Field

from evenflow.config.settings import EvenflowSettings
from evenflow.contracts import suite as contracts
from evenflow.contracts.validation import validate_frame
from evenflow.data import versioning
from evenflow.data.datasets import read_table
from evenflow.data.sharding import ROW_ID
from evenflow.errors import DataError
from evenflow.io import file_md5, write_json_atomic, write_text_atomic
from evenflow.records import ValidationReport
from evenflow.registry import store as registry

logger = logging.getLogger(__name__)

DATA_MD5_TAG = "evenflow.data_md5"
SPLIT_COLUMN_PARAM = "dataset.split_column"
HANDOFF_FILE = "handoff.json"
HANDOFF_TEXT = "handoff.txt"

# Probabilities of the stored quantile grid: every percentile (ends are the sample's min and max).
# 101 numbers per numeric column keep merged quantiles within about 1% of their rank.
QUANTILE_PROBS: tuple[float, ...] = tuple(i / 100 for i in range(101))
_REPORTED_QUANTILES = {"p05": 5, "p50": 50, "p95": 95}

# Rows read per train shard of the champion's data: bounds memory whatever the shard size.
ROWS_PER_SHARD = 20_000
_BATCH_ROWS = 65_536
# Numbers at least this large are shown in full (with separators) rather than in 4 digits.
_PLAIN_BELOW = 1e4
# Category values quoted in one rendered line.
_MAX_SHOWN = 8

Kind = Literal["numeric", "boolean", "text", "datetime", "other"]
ChangeKind = Literal[
    "missing_column",
    "new_column",
    "type_changed",
    "min_below_range",
    "max_above_range",
    "mean_shift",
    "null_fraction",
    "categories_added",
    "categories_removed",
    "cardinality",
]
DiffValue = float | int | str | None
# Changes that break a consumer reading the columns it was trained on.
SCHEMA_CHANGES: frozenset[str] = frozenset({"missing_column", "type_changed"})


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# --------------------------------------------------------------------------------------- profile


class NumericStats(_Record):
    """Moments and quantiles of a numeric column's non-null values."""

    min: float
    max: float
    mean: float
    std: float = Field(description="Sample standard deviation (ddof=1); 0 for a single value.")
    quantile_grid: tuple[float, ...] = Field(
        description="Values at QUANTILE_PROBS (each percentile); approximate after a merge."
    )

    @property
    def quantiles(self) -> dict[str, float]:
        """The 5th, 50th and 95th percentiles."""
        return {name: self.quantile_grid[index] for name, index in _REPORTED_QUANTILES.items()}


class ColumnProfile(_Record):
    """Aggregates of one column: never its values, except the categories of a low-cardinality one."""

    name: str
    dtype: str
    kind: Kind
    n_rows: int
    n_null: int
    numeric: NumericStats | None = None
    categories: dict[str, int] | None = Field(
        default=None, description="Category -> count, when at most max_categories distinct."
    )
    n_distinct: int = Field(
        description="Distinct non-null values; a lower bound after merging high-cardinality parts."
    )

    @property
    def null_fraction(self) -> float:
        """Share of rows that are null."""
        return self.n_null / self.n_rows if self.n_rows else 0.0

    @property
    def type_label(self) -> str:
        """Kind and dtype, as shown in a diff."""
        return f"{self.kind} ({self.dtype})"


class DataProfile(_Record):
    """Schema and statistics of a table (or a sample of it), mergeable shard by shard."""

    n_rows: int = Field(description="Rows profiled.")
    total_rows: int = Field(description="Rows in the data described (more than n_rows if sampled).")
    max_categories: int
    columns: tuple[ColumnProfile, ...]
    dropped_columns: tuple[str, ...] = Field(
        default=(),
        description="Raw columns removed before this data was stored (the split column): "
        "a candidate that carries them is not reporting new columns.",
    )

    def column(self, name: str) -> ColumnProfile | None:
        """The profile of column ``name``, or None."""
        return next((column for column in self.columns if column.name == name), None)

    @property
    def column_names(self) -> tuple[str, ...]:
        """Column names in table order."""
        return tuple(column.name for column in self.columns)


def profile(frame: pd.DataFrame, max_categories: int = contracts.MAX_CATEGORIES) -> DataProfile:
    """Profile ``frame`` (typically a sample): aggregates per column, no rows kept.

    Args:
        frame: The data, or a sample of it.
        max_categories: Text columns with more distinct values keep only their distinct count,
            so ids and free text never end up in the profile.
    """
    columns = tuple(_profile_column(frame[name], max_categories) for name in frame.columns)
    return DataProfile(
        n_rows=len(frame), total_rows=len(frame), max_categories=max_categories, columns=columns
    )


def merge_profiles(parts: Sequence[DataProfile]) -> DataProfile:
    """Merge profiles of disjoint parts (shards) of one table.

    Counts, nulls, min/max, mean and std are exact; quantiles are interpolated from the parts'
    grids (approximate). A column missing from some parts is profiled from the parts that have it.

    Raises:
        ValueError: ``parts`` is empty.
    """
    if not parts:
        raise ValueError("merge_profiles needs at least one profile")
    max_categories = parts[0].max_categories
    names = list(dict.fromkeys(name for part in parts for name in part.column_names))
    columns = []
    for name in names:
        pieces = [column for part in parts if (column := part.column(name)) is not None]
        columns.append(_merge_columns(pieces, max_categories))
    return DataProfile(
        n_rows=sum(part.n_rows for part in parts),
        total_rows=sum(part.total_rows for part in parts),
        max_categories=max_categories,
        columns=tuple(columns),
        dropped_columns=tuple(dict.fromkeys(c for part in parts for c in part.dropped_columns)),
    )


def _kind(series: pd.Series) -> Kind:
    if pd.api.types.is_bool_dtype(series.dtype):
        return "boolean"
    if pd.api.types.is_numeric_dtype(series.dtype):
        return "numeric"
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        return "datetime"
    if pd.api.types.is_object_dtype(series.dtype) or pd.api.types.is_string_dtype(series.dtype):
        return "text"
    if isinstance(series.dtype, pd.CategoricalDtype):
        return "text"
    return "other"


def _profile_column(series: pd.Series, max_categories: int) -> ColumnProfile:
    kind = _kind(series)
    values = series.dropna()
    numeric = _numeric_stats(values) if kind == "numeric" and len(values) else None
    categories = None
    n_distinct = int(values.nunique())
    if kind in ("text", "boolean") and n_distinct <= max_categories:
        counts = values.astype(str).value_counts()
        categories = {str(key): int(count) for key, count in sorted(counts.items())}
        n_distinct = len(categories)
    return ColumnProfile(
        name=str(series.name),
        dtype=str(series.dtype),
        kind=kind,
        n_rows=len(series),
        n_null=len(series) - len(values),
        numeric=numeric,
        categories=categories,
        n_distinct=n_distinct,
    )


def _numeric_stats(values: pd.Series) -> NumericStats:
    floats = values.to_numpy(dtype=np.float64)
    grid = np.quantile(floats, QUANTILE_PROBS)
    return NumericStats(
        min=float(floats.min()),
        max=float(floats.max()),
        mean=float(floats.mean()),
        std=float(floats.std(ddof=1)) if len(floats) > 1 else 0.0,
        quantile_grid=tuple(float(value) for value in grid),
    )


def _merge_columns(pieces: Sequence[ColumnProfile], max_categories: int) -> ColumnProfile:
    first = pieces[0]
    kinds = {piece.kind for piece in pieces}
    # Parts that disagree on the type (a shard of all-null text, say) fall back to the first's.
    same = [piece for piece in pieces if piece.kind == first.kind] if len(kinds) > 1 else pieces
    stats = [(piece.n_rows - piece.n_null, piece.numeric) for piece in same if piece.numeric]
    categories, n_distinct = _merge_categories(same, max_categories)
    return ColumnProfile(
        name=first.name,
        dtype=first.dtype,
        kind=first.kind,
        n_rows=sum(piece.n_rows for piece in pieces),
        n_null=sum(piece.n_null for piece in pieces),
        numeric=_merge_numeric(stats) if stats else None,
        categories=categories,
        n_distinct=n_distinct,
    )


def _merge_categories(
    pieces: Sequence[ColumnProfile], max_categories: int
) -> tuple[dict[str, int] | None, int]:
    lower_bound = max(piece.n_distinct for piece in pieces)
    if any(piece.categories is None and piece.n_distinct for piece in pieces):
        return None, lower_bound
    merged: dict[str, int] = {}
    for piece in pieces:
        for key, count in (piece.categories or {}).items():
            merged[key] = merged.get(key, 0) + count
    if len(merged) > max_categories:
        return None, len(merged)
    return dict(sorted(merged.items())), len(merged)


def _merge_numeric(parts: Sequence[tuple[int, NumericStats]]) -> NumericStats:
    """Chan's parallel update for mean and variance; quantiles by inverting the mixed CDF."""
    count, mean, m2 = 0, 0.0, 0.0
    for n, stats in parts:
        total = count + n
        delta = stats.mean - mean
        mean += delta * n / total
        m2 += stats.std**2 * (n - 1) + delta**2 * count * n / total
        count = total
    return NumericStats(
        min=min(stats.min for _, stats in parts),
        max=max(stats.max for _, stats in parts),
        mean=mean,
        std=math.sqrt(m2 / (count - 1)) if count > 1 else 0.0,
        quantile_grid=_merge_quantiles(parts),
    )


def _merge_quantiles(parts: Sequence[tuple[int, NumericStats]]) -> tuple[float, ...]:
    """Quantiles of the count-weighted mixture of the parts' piecewise-linear distributions."""
    points = np.unique(np.concatenate([np.asarray(s.quantile_grid) for _, s in parts]))
    weights = np.asarray([n for n, _ in parts], dtype=np.float64)
    cdfs = np.stack([_grid_cdf(np.asarray(s.quantile_grid), points) for _, s in parts])
    mixed = weights @ cdfs / weights.sum()
    return tuple(_inverse_cdf(mixed, points, p) for p in QUANTILE_PROBS)


def _grid_cdf(grid: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Right-continuous CDF of a quantile grid at ``points``: a repeated value is a point mass."""
    probs = np.asarray(QUANTILE_PROBS)
    below = np.searchsorted(grid, points, side="right") - 1
    inside = (below >= 0) & (below < len(grid) - 1)
    index = np.clip(below, 0, len(grid) - 2)
    low, high = grid[index], grid[index + 1]
    step = np.where(high > low, (points - low) / np.where(high > low, high - low, 1.0), 0.0)
    interpolated = probs[index] + step * (probs[index + 1] - probs[index])
    return np.where(inside, interpolated, np.where(below < 0, 0.0, 1.0))


def _inverse_cdf(cdf: np.ndarray, points: np.ndarray, prob: float) -> float:
    """The smallest grid point where ``cdf`` reaches ``prob``.

    No interpolation between points: for discrete columns (counts, codes) the answer stays a value
    the data holds, and with percentile grids the points are dense enough for continuous ones.
    """
    index = int(np.searchsorted(cdf, prob - 1e-9, side="left"))
    return float(points[min(index, len(points) - 1)])


# ------------------------------------------------------------------------------------------ diff


class DiffItem(_Record):
    """One difference between the reference and the candidate data, with both values."""

    column: str
    change: ChangeKind
    reference: DiffValue
    candidate: DiffValue
    values: tuple[str, ...] = Field(
        default=(), description="Categories added or removed (for category changes)."
    )
    unit: str = Field(default="", description="What the values count, e.g. categories.")
    note: str = ""

    def describe(self) -> str:
        """One line: column, what changed, reference and candidate values."""
        what = _CHANGE_LABELS[self.change]
        if self.values:
            what = f"{what} {_quoted(self.values)}"
        unit = f" {self.unit}" if self.unit else ""
        line = (
            f"column '{self.column}': {what} (reference {_fmt(self.reference)}{unit}, "
            f"candidate {_fmt(self.candidate)}{unit})"
        )
        return f"{line}; {self.note}" if self.note else line


_CHANGE_LABELS: dict[str, str] = {
    "missing_column": "missing from the candidate",
    "new_column": "new in the candidate",
    "type_changed": "type changed",
    "min_below_range": "minimum below the reference range",
    "max_above_range": "maximum above the reference range",
    "mean_shift": "mean shifted",
    "null_fraction": "null fraction changed",
    "categories_added": "categories added:",
    "categories_removed": "categories removed:",
    "cardinality": "category set no longer comparable",
}


class DataDiff(_Record):
    """Schema and statistics differences, candidate against reference."""

    reference_rows: int
    candidate_rows: int
    shift_threshold: float
    null_tolerance: float
    items: tuple[DiffItem, ...] = ()

    @property
    def is_empty(self) -> bool:
        """True when nothing in the schema or statistics changed beyond the thresholds."""
        return not self.items

    @property
    def schema_changes(self) -> tuple[DiffItem, ...]:
        """Missing columns and type changes: what breaks a model trained on the reference."""
        return tuple(item for item in self.items if item.change in SCHEMA_CHANGES)

    def for_column(self, column: str) -> tuple[DiffItem, ...]:
        """The items about ``column``."""
        return tuple(item for item in self.items if item.column == column)


def diff_profiles(
    reference: DataProfile,
    candidate: DataProfile,
    *,
    shift_threshold: float = 0.5,
    null_tolerance: float = 0.01,
) -> DataDiff:
    """Compare a candidate's profile with the reference's.

    Args:
        reference: Profile of the data the model was trained on.
        candidate: Profile of the new batch.
        shift_threshold: Report a mean shift beyond this many reference standard deviations.
        null_tolerance: Report a null fraction that moved by more than this (absolute share).
    """
    items: list[DiffItem] = []
    for ref in reference.columns:
        cand = candidate.column(ref.name)
        if cand is None:
            items.append(_item(ref.name, "missing_column", ref.type_label, None))
        else:
            items.extend(_column_diff(ref, cand, shift_threshold, null_tolerance))
    ignored = {*reference.column_names, *reference.dropped_columns}
    items.extend(
        _item(cand.name, "new_column", None, cand.type_label)
        for cand in candidate.columns
        if cand.name not in ignored
    )
    return DataDiff(
        reference_rows=reference.n_rows,
        candidate_rows=candidate.n_rows,
        shift_threshold=shift_threshold,
        null_tolerance=null_tolerance,
        items=tuple(items),
    )


def render_diff(diff: DataDiff) -> str:
    """Readable terminal text: a headline, then one line per change."""
    sizes = f"reference {diff.reference_rows:,} rows profiled, candidate {diff.candidate_rows:,}"
    if diff.is_empty:
        return f"Data diff: no schema or statistics changes ({sizes})."
    lines = [f"Data diff: {len(diff.items)} change(s) ({sizes}):"]
    lines.extend(f"  - {item.describe()}" for item in diff.items)
    return "\n".join(lines)


def _item(
    column: str,
    change: ChangeKind,
    reference: DiffValue,
    candidate: DiffValue,
    *,
    values: Iterable[str] = (),
    unit: str = "",
    note: str = "",
) -> DiffItem:
    return DiffItem(
        column=column,
        change=change,
        reference=reference,
        candidate=candidate,
        values=tuple(values),
        unit=unit,
        note=note,
    )


def _column_diff(
    ref: ColumnProfile, cand: ColumnProfile, shift_threshold: float, null_tolerance: float
) -> list[DiffItem]:
    if ref.kind != cand.kind:
        return [_item(ref.name, "type_changed", ref.type_label, cand.type_label)]
    items = []
    if abs(cand.null_fraction - ref.null_fraction) > null_tolerance:
        items.append(
            _item(
                ref.name,
                "null_fraction",
                round(ref.null_fraction, 4),
                round(cand.null_fraction, 4),
            )
        )
    if ref.numeric is not None and cand.numeric is not None:
        items.extend(_numeric_diff(ref.name, ref.numeric, cand.numeric, shift_threshold))
    items.extend(_category_diff(ref, cand))
    return items


def _numeric_diff(
    column: str, ref: NumericStats, cand: NumericStats, shift_threshold: float
) -> list[DiffItem]:
    items = []
    if cand.min < ref.min:
        items.append(_item(column, "min_below_range", ref.min, cand.min))
    if cand.max > ref.max:
        items.append(_item(column, "max_above_range", ref.max, cand.max))
    shift = _std_units(cand.mean - ref.mean, ref.std)
    if abs(shift) > shift_threshold:
        note = f"{shift:+.2f} reference std (threshold {shift_threshold:g})"
        items.append(_item(column, "mean_shift", ref.mean, cand.mean, note=note))
    return items


def _std_units(delta: float, std: float) -> float:
    """The shift in reference standard deviations; any shift of a constant column is infinite."""
    if std > 0:
        return delta / std
    return 0.0 if delta == 0 else math.copysign(math.inf, delta)


def _category_diff(ref: ColumnProfile, cand: ColumnProfile) -> list[DiffItem]:
    if ref.categories is None and cand.categories is None:
        return []
    if ref.categories is None or cand.categories is None:
        note = "one side has more distinct values than the profile keeps as categories"
        return [
            _item(
                ref.name,
                "cardinality",
                ref.n_distinct,
                cand.n_distinct,
                unit="distinct values",
                note=note,
            )
        ]
    items = []
    added = sorted(set(cand.categories) - set(ref.categories))
    removed = sorted(set(ref.categories) - set(cand.categories))
    counts = (len(ref.categories), len(cand.categories))
    if added:
        items.append(_item(ref.name, "categories_added", *counts, values=added, unit="categories"))
    if removed:
        items.append(
            _item(ref.name, "categories_removed", *counts, values=removed, unit="categories")
        )
    return items


def _fmt(value: DiffValue) -> str:
    if value is None:
        return "none"
    if isinstance(value, float) and math.isfinite(value):
        if value.is_integer():
            return f"{int(value):,}"
        return f"{value:,.1f}" if abs(value) >= _PLAIN_BELOW else f"{value:.4g}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _quoted(values: Sequence[str]) -> str:
    shown = ", ".join(repr(value) for value in values[:_MAX_SHOWN])
    return shown + (f" and {len(values) - _MAX_SHOWN} more" if len(values) > _MAX_SHOWN else "")


# ------------------------------------------------------------------------- champion's reference


def champion_reference(
    settings: EvenflowSettings,
    model_name: str,
    workdir: Path,
    *,
    rows_per_shard: int = ROWS_PER_SHARD,
    seed: int = 0,
) -> tuple[DataProfile, str] | None:
    """Profile the train split the current champion was trained on, restored by its DVC hash.

    The data is restored from the DVC cache (or fetched from the remote) into ``workdir``, then
    profiled shard by shard from at most ``rows_per_shard`` sampled rows each, so memory stays
    bounded however large the data is.

    Returns:
        The profile and the data md5, or None when ``model_name`` has no champion.

    Raises:
        DataError: The champion's run records no data md5, or its data holds no train shards.
        VersioningError: The data is in neither the DVC cache nor the remote.
    """
    client = registry.client_for(settings)
    run_id = _champion_run(client, model_name)
    if run_id is None:
        logger.info("model %r has no %r alias: no reference data", model_name, registry.CHAMPION)
        return None
    run = client.get_run(run_id)
    data_md5 = run.data.tags.get(DATA_MD5_TAG)
    if not data_md5:
        raise DataError(
            f"the champion of {model_name!r} (run {run_id}) has no {DATA_MD5_TAG} tag; "
            "its training data cannot be restored"
        )
    target = workdir / "champion-data"
    versioning.restore_directory(settings.project_root, data_md5, target)
    reference = profile_shards(sorted((target / "train").glob("*.parquet")), rows_per_shard, seed)
    dropped = _split_column(run.data.params.get(SPLIT_COLUMN_PARAM))
    logger.info(
        "profiled the champion's data %s: %d of %d train rows",
        data_md5,
        reference.n_rows,
        reference.total_rows,
    )
    return reference.model_copy(update={"dropped_columns": dropped}), data_md5


def profile_shards(
    paths: Sequence[Path],
    rows_per_shard: int = ROWS_PER_SHARD,
    seed: int = 0,
    max_categories: int = contracts.MAX_CATEGORIES,
) -> DataProfile:
    """Profile parquet shards one at a time from a seeded sample of each, then merge.

    Raises:
        DataError: ``paths`` is empty.
    """
    if not paths:
        raise DataError("no parquet shards to profile")
    rng = np.random.default_rng(seed)
    parts = []
    for path in paths:
        sample, total = _sample_shard(path, rows_per_shard, rng)
        parts.append(profile(sample, max_categories).model_copy(update={"total_rows": total}))
    return merge_profiles(parts)


def _champion_run(client: MlflowClient, model_name: str) -> str | None:
    try:
        model = client.get_registered_model(model_name)
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return None
        raise
    version = model.aliases.get(registry.CHAMPION)
    if version is None:
        return None
    return str(client.get_model_version(model_name, version).run_id)


def _split_column(value: str | None) -> tuple[str, ...]:
    """The logged ``dataset.split_column`` param: a name, or JSON null when the data has none."""
    return () if value in (None, "", "null") else (str(value),)


def _sample_shard(path: Path, rows: int, rng: np.random.Generator) -> tuple[pd.DataFrame, int]:
    """Up to ``rows`` random rows of a shard, read batch by batch; also the shard's row count."""
    parquet = pq.ParquetFile(path)
    columns = [name for name in parquet.schema_arrow.names if name != ROW_ID]
    total = int(parquet.metadata.num_rows)
    if total <= rows:
        return parquet.read(columns=columns).to_pandas(), total
    keep = np.sort(rng.choice(total, size=rows, replace=False))
    batches, start = [], 0
    for batch in parquet.iter_batches(batch_size=_BATCH_ROWS, columns=columns):
        low, high = np.searchsorted(keep, [start, start + batch.num_rows])
        if high > low:
            batches.append(batch.take(pa.array(keep[low:high] - start)))
        start += batch.num_rows
    return pa.Table.from_batches(batches).to_pandas(), total


# --------------------------------------------------------------------------------------- handoff


class ExpectationCheck(_Record):
    """One expectation's outcome on the candidate batch."""

    passed: bool
    expectation: str = Field(description="GX expectation type.")
    column: str | None
    observed: str

    def line(self) -> str:
        """``PASS``/``FAIL``, the expectation, its column and what was observed."""
        where = f" [{self.column}]" if self.column else ""
        status = "PASS" if self.passed else "FAIL"
        return f"{status}  {self.expectation}{where}: {self.observed}"


class HandoffReport(_Record):
    """The answer to a data team: contract checks, Data Docs, and what changed in the data."""

    path: Path = Field(description="The candidate file; read, never modified.")
    md5: str = Field(description="md5 of the candidate file's bytes.")
    dataset: str
    passed: bool = Field(description="Validation passed (and no schema change, if that fails).")
    validation: ValidationReport
    checks: tuple[ExpectationCheck, ...]
    diff: DataDiff | None
    diff_note: str = Field(description="What the diff compares with, or why there is none.")
    schema_failures: tuple[DiffItem, ...] = Field(
        default=(), description="Schema changes counted as failures (fail_on_schema_change)."
    )
    report_path: Path | None = Field(default=None, description="This report as JSON.")


def check_handoff(
    path: Path,
    suite: Mapping[str, Any],
    out_dir: Path,
    *,
    dataset: str,
    reference: DataProfile | None,
    reference_note: str | None = None,
    fail_on_schema_change: bool = False,
    shift_threshold: float = 0.5,
) -> HandoffReport:
    """Validate a candidate file against ``suite`` and diff it against ``reference``.

    The diff informs; only validation decides ``passed``, unless ``fail_on_schema_change`` makes
    missing columns and type changes failures too. Results, Data Docs and the report (JSON and
    text) go to ``out_dir``; the file itself is only read.

    Args:
        path: The candidate CSV or Parquet file.
        suite: The dataset's expectation suite (see ``contracts.load_suite``).
        out_dir: Folder for the GX result, Data Docs and the handoff report.
        dataset: Dataset name (names the GX run).
        reference: Profile of the reference data (``champion_reference``), or None.
        reference_note: What the reference is, or why there is none (shown with the diff).
        fail_on_schema_change: Fail on missing columns and type changes as well.
        shift_threshold: Mean shift, in reference std, that the diff reports.

    Raises:
        DataError: The file cannot be read, or changed while it was being checked.
    """
    md5 = file_md5(path)
    frame = read_table(path)
    report = validate_frame(frame, suite, out_dir, dataset=dataset)
    diff, note = _diff_against(frame, reference, reference_note, shift_threshold)
    schema_failures = diff.schema_changes if diff is not None and fail_on_schema_change else ()
    if file_md5(path) != md5:
        raise DataError(f"{path} changed while it was being checked; check it again")
    handoff = HandoffReport(
        path=path.resolve(),
        md5=md5,
        dataset=dataset,
        passed=report.success and not schema_failures,
        validation=report,
        checks=_checks(report, suite),
        diff=diff,
        diff_note=note,
        schema_failures=schema_failures,
        report_path=out_dir / HANDOFF_FILE,
    )
    write_json_atomic(out_dir / HANDOFF_FILE, handoff.model_dump(mode="json"))
    write_text_atomic(out_dir / HANDOFF_TEXT, render_handoff(handoff) + "\n")
    logger.info("handoff check of %s: %s", path, "passed" if handoff.passed else "failed")
    return handoff


def render_handoff(report: HandoffReport) -> str:
    """One PASS/FAIL line per expectation, the Data Docs path, the diff, then the verdict."""
    validation = report.validation
    lines = [
        f"Checking {report.path} against suite '{validation.suite_name}' "
        f"({validation.n_rows:,} rows, md5 {report.md5})",
        *(check.line() for check in report.checks),
        f"Data Docs: {validation.docs_path or 'not built'}",
        "",
        render_diff(report.diff) if report.diff is not None else "Data diff: none.",
        f"  ({report.diff_note})",
    ]
    if report.schema_failures:
        lines.append("Schema changes counted as failures:")
        lines.extend(f"  - {item.describe()}" for item in report.schema_failures)
    failed = sum(not check.passed for check in report.checks)
    verdict = "PASSED" if report.passed else "FAILED"
    lines += ["", f"{verdict}: {failed} of {len(report.checks)} expectations failed"]
    return "\n".join(lines)


def validate_candidate(
    settings: EvenflowSettings,
    path: Path,
    dataset: str,
    *,
    fail_on_schema_change: bool = False,
) -> HandoffReport:
    """Everything ``evenflow validate PATH --name NAME`` does, so the CLI only parses and prints.

    Loads ``expectations/NAME.json``, profiles the data of model NAME's champion (if any) in a
    scratch folder that is removed afterwards, and writes the results under
    ``.evenflow/handoff/NAME/<md5 prefix>/``.

    Raises:
        ConfigError: The suite is missing or invalid.
        DataError, VersioningError: The file or the champion's data cannot be read.
    """
    suite = contracts.load_suite(settings.expectations_dir / f"{dataset}.json")
    out_dir = settings.state_dir / "handoff" / dataset / file_md5(path)[:12]
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="handoff-", dir=settings.state_dir) as scratch:
        found = champion_reference(settings, dataset, Path(scratch))
    reference, note = (None, f"model '{dataset}' has no champion to compare with")
    if found is not None:
        reference, data_md5 = found
        note = f"reference: the data of the champion of '{dataset}' (DVC md5 {data_md5})"
    return check_handoff(
        path,
        suite,
        out_dir,
        dataset=dataset,
        reference=reference,
        reference_note=note,
        fail_on_schema_change=fail_on_schema_change,
    )


def _diff_against(
    frame: pd.DataFrame,
    reference: DataProfile | None,
    note: str | None,
    shift_threshold: float,
) -> tuple[DataDiff | None, str]:
    if reference is None:
        return None, note or "no reference data to compare with"
    candidate = profile(frame, reference.max_categories)
    diff = diff_profiles(reference, candidate, shift_threshold=shift_threshold)
    return diff, note or "reference: the profile given"


def _checks(report: ValidationReport, suite: Mapping[str, Any]) -> tuple[ExpectationCheck, ...]:
    """Every expectation in suite order, failures worded as ``validation`` words them."""
    results = _in_suite_order(
        json.loads(report.result_path.read_text(encoding="utf-8"))["results"], suite
    )
    failures = list(report.failures)
    checks = []
    for result in results:
        kind, column = _key(result["expectation_config"])
        observed = _observed(result)
        failure = next((f for f in failures if (f.expectation, f.column) == (kind, column)), None)
        if not result["success"] and failure is not None:
            failures.remove(failure)
            observed = failure.observed
        checks.append(
            ExpectationCheck(
                passed=bool(result["success"]), expectation=kind, column=column, observed=observed
            )
        )
    return tuple(checks)


def _key(config: Mapping[str, Any]) -> tuple[str, str | None]:
    column = config.get("kwargs", {}).get("column")
    return str(config["type"]), None if column is None else str(column)


def _in_suite_order(
    results: list[dict[str, Any]], suite: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """GX groups results by shared metrics; put them back in the order the suite lists them."""
    pending = list(results)
    ordered = []
    for expectation in suite.get("expectations", []):
        key = _key(expectation)
        match = next((r for r in pending if _key(r["expectation_config"]) == key), None)
        if match is not None:
            pending.remove(match)
            ordered.append(match)
    return ordered + pending


_PASS_WORDING = {
    "expect_column_values_to_not_be_null": "null",
    "expect_column_values_to_be_between": "out of range",
    "expect_column_values_to_be_in_set": "not in the set",
    "expect_column_values_to_be_in_type_list": "of another type",
}


def _observed(result: Mapping[str, Any]) -> str:
    """A short account of a GX result, from the result record alone."""
    details = result.get("result") or {}
    kind = result["expectation_config"]["type"]
    if "unexpected_count" in details:
        what = _PASS_WORDING.get(kind, "unexpected")
        return f"{details['unexpected_count']} of {details['element_count']} values {what}"
    value = details.get("observed_value")
    if isinstance(value, list):
        return f"{len(value)} values: {_quoted([str(v) for v in value])}"
    if value is not None:
        return str(value)
    if kind == "expect_column_to_exist":
        return "column present" if result["success"] else "column missing"
    return "as expected" if result["success"] else "not met"
