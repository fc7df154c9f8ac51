"""Drift and classification reports with Evidently 0.7 (new API), written as HTML + JSON.

Evidently is used for what it does well: per-column drift tests and rendering. Per-group
classification metrics are *not* taken from Evidently (its ``GroupBy`` returns the overall value
for classification metrics in 0.7.x); see :mod:`evenflow.assess.evaluation`.

Results are read from the snapshot through one adapter (:func:`summarise_drift`) that finds
metrics by their config type and column, never by list position, so a preset that adds or
reorders metrics does not silently shift the numbers.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np
import pandas as pd
from pydantic import Field
from sklearn.exceptions import UndefinedMetricWarning

from evenflow.errors import DataError
from evenflow.io import atomic_path
from evenflow.records import Record

with warnings.catch_warnings():
    # Evidently's import pulls in modules that warn about numpy.core and litestar deprecations.
    warnings.simplefilter("ignore", DeprecationWarning)
    from evidently import BinaryClassification, DataDefinition, Dataset, Report
    from evidently.metrics import ValueDrift
    from evidently.presets import ClassificationPreset, DataDriftPreset

logger = logging.getLogger(__name__)

DRIFT_STEM = "data_drift"
CLASSIFICATION_STEM = "classification"

# Evidently 0.7.23 metric and test identifiers, as they appear in ``Snapshot.dict()``.
_VALUE_DRIFT = "evidently:metric_v2:ValueDrift"
_DRIFTED_COLUMNS = "evidently:metric_v2:DriftedColumnsCount"
_FAILED = "FAIL"
_INT64_BYTES = 8


class ReportFiles(NamedTuple):
    """The two renderings of one Evidently report."""

    html: Path
    json: Path


class ColumnTest(NamedTuple):
    """One column's drift check with an explicit statistic and threshold."""

    column: str
    kind: Literal["numerical", "categorical"]
    method: str  # Evidently's statistic name: wasserstein, psi, jensenshannon, ...
    threshold: float


class ColumnDrift(Record):
    """Drift of one column as Evidently judged it."""

    column: str
    score: float = Field(description="Drift score (a p-value or a distance, see method).")
    method: str = Field(description="Evidently's name of the statistical test or distance.")
    threshold: float = Field(description="Threshold the score was compared with.")
    drifted: bool


class DriftSummary(Record):
    """What a reader of the run needs from a drift report, plus where the full report is."""

    drifted_count: int
    drifted_share: float = Field(description="Share of the checked columns that drifted.")
    drift_share_threshold: float = Field(
        description="Share at which the dataset counts as drifted."
    )
    dataset_drift: bool
    drifted_columns: tuple[str, ...]
    columns: tuple[ColumnDrift, ...]
    html_path: Path
    json_path: Path


def data_drift_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    numerical: Sequence[str],
    categorical: Sequence[str],
    out_dir: Path,
    *,
    max_rows: int | None = None,
    seed: int = 0,
    drift_share: float = 0.5,
) -> DriftSummary:
    """Compare ``current`` with ``reference`` column by column and write the report.

    Evidently picks the test per column (KS / chi-squared on small samples, Wasserstein /
    Jensen-Shannon distances on large ones); the summary records which one it used.

    Args:
        reference: The data the model was trained on (or a sample of it).
        current: The data to check.
        numerical: Numeric columns to check.
        categorical: Categorical columns to check (strings, bools or integer codes).
        out_dir: Folder for ``data_drift.html`` and ``data_drift.json``.
        max_rows: Sample each side down to this many rows first (drift tests grow with rows).
        seed: Seed of that sample, so a rerun draws the same rows.
        drift_share: Share of drifted columns at which the dataset counts as drifted.

    Returns:
        Counts, share and names of drifted columns, and each column's score and method.
    """
    columns = [*numerical, *categorical]
    if not columns:
        raise DataError("data drift needs at least one column to compare")
    frames = [
        _prepare(frame, columns, name, max_rows, seed)
        for frame, name in ((reference, "reference"), (current, "current"))
    ]
    definition = DataDefinition(
        numerical_columns=list(numerical), categorical_columns=list(categorical)
    )
    ref_ds, cur_ds = (Dataset.from_pandas(f, data_definition=definition) for f in frames)
    report = Report([DataDriftPreset(columns=columns, drift_share=drift_share)], include_tests=True)
    with _quiet():
        snapshot = report.run(current_data=cur_ds, reference_data=ref_ds)
    files = _save(snapshot, out_dir, DRIFT_STEM)
    summary = summarise_drift(snapshot.dict(), files, drift_share)
    logger.info(
        "data drift: %d of %d columns drifted %s",
        summary.drifted_count,
        len(summary.columns),
        list(summary.drifted_columns),
    )
    return summary


def column_drift_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    tests: Sequence[ColumnTest],
    out_dir: Path,
    *,
    stem: str = DRIFT_STEM,
) -> tuple[tuple[ColumnDrift, ...], ReportFiles]:
    """Run one Evidently ``ValueDrift`` per column with the statistic and threshold given.

    Unlike :func:`data_drift_report`, nothing is chosen by Evidently: each test names its
    statistic and threshold, so the decision is the caller's policy. Both frames must hold
    every tested column; sample them first if they are large.

    Args:
        reference: Reference rows (the data the model was trained on, or a sample of it).
        current: Rows to check.
        tests: One test per column: its kind, Evidently statistic name and threshold.
        out_dir: Folder for ``<stem>.html`` and ``<stem>.json``.
        stem: File name stem of the report.

    Returns:
        Each column's value, statistic, threshold and drift flag (in the order of ``tests``),
        and the report files.

    Raises:
        DataError: No tests, repeated columns, or a frame lacks a tested column.
    """
    columns = [t.column for t in tests]
    if not columns:
        raise DataError("data drift needs at least one column to compare")
    if len(set(columns)) != len(columns):
        raise DataError(f"drift tests repeat columns: {columns}")
    frames = [
        _prepare(frame, columns, name, None, 0)
        for frame, name in ((reference, "reference"), (current, "current"))
    ]
    definition = DataDefinition(
        numerical_columns=[t.column for t in tests if t.kind == "numerical"],
        categorical_columns=[t.column for t in tests if t.kind == "categorical"],
    )
    ref_ds, cur_ds = (Dataset.from_pandas(f, data_definition=definition) for f in frames)
    metrics = [ValueDrift(column=t.column, method=t.method, threshold=t.threshold) for t in tests]
    with _quiet():
        snapshot = Report(metrics, include_tests=True).run(
            current_data=cur_ds, reference_data=ref_ds
        )
    files = _save(snapshot, out_dir, stem)
    found = {c.column: c for c in value_drifts(snapshot.dict())}
    missing = [c for c in columns if c not in found]
    if missing:
        raise ValueError(f"Evidently's snapshot has no ValueDrift for {missing}")
    return tuple(found[c] for c in columns), files


def value_drifts(snapshot_dict: Mapping[str, Any]) -> tuple[ColumnDrift, ...]:
    """Every ``ValueDrift`` metric of a snapshot as a :class:`ColumnDrift`, matched by type.

    A column's drift flag is the status of the ``drift`` test Evidently attaches to its metric
    (FAIL means drift), so the direction of the comparison stays Evidently's decision.
    """
    failed = _failed_metric_ids(snapshot_dict.get("tests", []))
    return tuple(
        _column_drift(metric, failed)
        for metric in snapshot_dict.get("metrics", [])
        if metric.get("config", {}).get("type") == _VALUE_DRIFT
    )


def classification_report(
    predictions: pd.DataFrame,
    out_dir: Path,
    threshold: float,
    reference: pd.DataFrame | None = None,
) -> ReportFiles:
    """Render Evidently's classification preset for test predictions.

    The predicted label is ``score >= threshold``, the same rule as :mod:`evenflow.assess.evaluation`
    and Evidently's own ``probas_threshold``.

    Args:
        predictions: Frame with ``label`` (0/1) and ``score`` (probability of class 1).
        out_dir: Folder for ``classification.html`` and ``classification.json``.
        threshold: Score cut for a positive.
        reference: Optional earlier predictions (same columns) shown side by side.

    Returns:
        Paths of the HTML and JSON files.
    """
    current_ds = _classification_dataset(predictions, threshold)
    reference_ds = None if reference is None else _classification_dataset(reference, threshold)
    report = Report([ClassificationPreset(probas_threshold=threshold)])
    with _quiet():
        snapshot = report.run(current_data=current_ds, reference_data=reference_ds)
    return _save(snapshot, out_dir, CLASSIFICATION_STEM)


def summarise_drift(
    snapshot_dict: Mapping[str, Any], files: ReportFiles, drift_share: float
) -> DriftSummary:
    """Adapter from Evidently's ``Snapshot.dict()`` to a :class:`DriftSummary`.

    Metrics are matched by config type; a column's drift flag is the status of the ``drift``
    test Evidently attaches to its ``ValueDrift`` metric (FAIL means drift), so the direction
    of the comparison (p-value below, distance above) stays Evidently's decision.

    Args:
        snapshot_dict: ``Snapshot.dict()`` of a report run with ``include_tests=True``.
        files: Where that snapshot was saved.
        drift_share: Share threshold the preset was run with.

    Returns:
        The summary; raises ``ValueError`` if the snapshot lacks the expected metrics.
    """
    metrics = list(snapshot_dict.get("metrics", []))
    columns = value_drifts(snapshot_dict)
    counts = [m for m in metrics if m.get("config", {}).get("type") == _DRIFTED_COLUMNS]
    if not columns or len(counts) != 1:
        raise ValueError("snapshot has no ValueDrift metrics or not one DriftedColumnsCount")
    count = int(counts[0]["value"]["count"])
    share = float(counts[0]["value"]["share"])
    drifted = tuple(c.column for c in columns if c.drifted)
    if count != len(drifted):
        logger.warning(
            "Evidently counts %d drifted columns but flags %d: %s", count, len(drifted), drifted
        )
    return DriftSummary(
        drifted_count=count,
        drifted_share=share,
        drift_share_threshold=drift_share,
        dataset_drift=share >= drift_share,
        drifted_columns=drifted,
        columns=columns,
        html_path=files.html,
        json_path=files.json,
    )


# --- internals -------------------------------------------------------------------------------


@contextmanager
def _quiet() -> Iterator[None]:
    """Silence Evidently's and pandas' deprecation chatter for one report run only.

    scikit-learn's "precision is ill-defined" warning, raised inside Evidently when no row is
    predicted positive, is silenced too: our own metrics report that precision as undefined.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        yield


def _prepare(
    frame: pd.DataFrame, columns: Sequence[str], name: str, max_rows: int | None, seed: int
) -> pd.DataFrame:
    """Select and sample the checked columns, widening narrow integers Evidently rejects."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(f"{name} data lacks column(s) {missing}")
    selected = frame.loc[:, list(columns)]
    if max_rows is not None and len(selected) > max_rows:
        selected = selected.sample(n=max_rows, random_state=seed)
    return widen_small_ints(selected.reset_index(drop=True))


def widen_small_ints(frame: pd.DataFrame) -> pd.DataFrame:
    """Cast integer columns narrower than 64 bits to int64 (nullable ones to Int64).

    Evidently 0.7.23 fails on int8 labels (``numpy.int8 not supported as Label``); widening every
    small integer keeps int8/uint8 label-like columns from reaching it.
    """
    casts: dict[str, str] = {}
    for column, dtype in frame.dtypes.items():
        if dtype.kind not in "iu" or getattr(dtype, "itemsize", _INT64_BYTES) >= _INT64_BYTES:
            continue
        casts[str(column)] = "int64" if isinstance(dtype, np.dtype) else "Int64"
    return frame.astype(casts) if casts else frame


def _classification_dataset(predictions: pd.DataFrame, threshold: float) -> Any:
    """Evidently Dataset of label, thresholded prediction and score."""
    missing = [c for c in ("label", "score") if c not in predictions.columns]
    if missing:
        raise DataError(f"predictions lack column(s) {missing}")
    score = predictions["score"].to_numpy(dtype=np.float64)
    frame = pd.DataFrame(
        {
            "label": predictions["label"].to_numpy(dtype=np.int64),
            "prediction": (score >= threshold).astype(np.int64),
            "score": score,
        }
    )
    definition = DataDefinition(
        numerical_columns=["score"],
        categorical_columns=["label", "prediction"],
        classification=[
            BinaryClassification(
                target="label",
                prediction_labels="prediction",
                prediction_probas="score",
                pos_label=1,
            )
        ],
    )
    return Dataset.from_pandas(frame, data_definition=definition)


def _save(snapshot: Any, out_dir: Path, stem: str) -> ReportFiles:
    """Write the snapshot as HTML and JSON, each via a temp file renamed into place."""
    files = ReportFiles(html=out_dir / f"{stem}.html", json=out_dir / f"{stem}.json")
    with atomic_path(files.html) as tmp:
        snapshot.save_html(str(tmp))
    with atomic_path(files.json) as tmp:
        snapshot.save_json(str(tmp))
    return files


def _failed_metric_ids(tests: Sequence[Mapping[str, Any]]) -> set[str]:
    """Ids of metrics whose ``drift`` test failed, i.e. the columns Evidently calls drifted."""
    return {
        str(test["metric_config"]["metric_id"])
        for test in tests
        if test.get("id") == "drift" and test.get("status") == _FAILED
    }


def _column_drift(metric: Mapping[str, Any], failed: set[str]) -> ColumnDrift:
    config = metric["config"]
    return ColumnDrift(
        column=str(config["column"]),
        score=float(metric["value"]),
        method=str(config.get("method")),
        threshold=float(config["threshold"]),
        drifted=str(metric["id"]) in failed,
    )
