"""A monitoring batch's drift from the monitored model's training data, and its verdict.

Every feature is checked with an explicit statistic and threshold (normed Wasserstein for numbers,
PSI or Jensen-Shannon for categories: distances that stay meaningful on large samples, where
p-values call every column drifted), and the model's score distribution on the batch is compared
with its scores on the reference (prediction drift). Evidently computes the statistics and renders
its report; the decision is a pure function (:func:`drift_breaches`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import Field

from evenflow.assess import drift
from evenflow.config.monitor import DriftPolicy, Statistic
from evenflow.errors import DataError
from evenflow.records import FeatureSpec, Record

DRIFT_STEM = "drift"
"""File stem of Evidently's report in a monitoring run's folder (``drift.html``, ``drift.json``)."""
PREDICTION_COLUMN = "__evenflow_score__"
"""The score column as Evidently sees it: a name no dataset column is likely to have."""

Scorer = Callable[[pd.DataFrame], np.ndarray]
"""The monitored model: rows in, probability of the positive class out."""


class ColumnCheck(Record):
    """One column's drift: the statistic, its threshold, the value, and the verdict."""

    column: str
    kind: Literal["numeric", "categorical", "prediction"]
    statistic: str = Field(description="Evidently's name: wasserstein, psi or jensenshannon.")
    threshold: float
    value: float
    drifted: bool = Field(description="value >= threshold, as Evidently decided it.")

    def describe(self) -> str:
        """``column: statistic value >= threshold``."""
        sign = ">=" if self.drifted else "<"
        return f"{self.column}: {self.statistic} {self.value:.4f} {sign} {self.threshold:g}"


class DriftResult(Record):
    """Per-feature drift, the share of drifted features, and prediction drift."""

    columns: tuple[ColumnCheck, ...]
    drifted_columns: tuple[str, ...]
    drifted_share: float = Field(description="Drifted columns / checked columns (0 if none).")
    max_drifted_share: float = Field(description="The policy's limit on drifted_share.")
    prediction: ColumnCheck = Field(description="Drift of the model's scores on the two sides.")
    mean_score_reference: float
    mean_score_batch: float
    ignored_columns: tuple[str, ...] = ()
    rows_reference: int = Field(description="Reference rows compared (after sampling).")
    rows_batch: int = Field(description="Batch rows compared (after sampling).")
    total_rows_reference: int
    total_rows_batch: int
    evidently_html: Path
    evidently_json: Path

    @property
    def sampled(self) -> bool:
        """Whether either side was sampled down to the policy's ``max_rows``."""
        return (
            self.rows_reference < self.total_rows_reference
            or self.rows_batch < self.total_rows_batch
        )


def sample_rows(frame: pd.DataFrame, max_rows: int | None, seed: int) -> pd.DataFrame:
    """At most ``max_rows`` rows drawn without replacement (seeded); all rows if fewer."""
    if max_rows is None or len(frame) <= max_rows:
        return frame.reset_index(drop=True)
    rng = np.random.default_rng(seed)
    keep = np.sort(rng.choice(len(frame), size=max_rows, replace=False))
    return frame.iloc[keep].reset_index(drop=True)


def drift_tests(
    features: Sequence[FeatureSpec], policy: DriftPolicy
) -> tuple[list[drift.ColumnTest], list[str]]:
    """The drift test of every feature under ``policy``, and the features it ignores."""
    tests, ignored = [], []
    for feature in features:
        if feature.name in policy.ignore_columns:
            ignored.append(feature.name)
            continue
        statistic: Statistic = (
            policy.numeric_statistic if feature.kind == "numeric" else policy.categorical_statistic
        )
        tests.append(
            drift.ColumnTest(
                column=feature.name,
                kind="numerical" if feature.kind == "numeric" else "categorical",
                method=statistic,
                threshold=policy.threshold(feature.name, statistic),
            )
        )
    return tests, ignored


def assess_drift(
    reference: pd.DataFrame,
    batch: pd.DataFrame,
    features: Sequence[FeatureSpec],
    policy: DriftPolicy,
    out_dir: Path,
    *,
    scorer: Scorer,
) -> DriftResult:
    """Per-feature drift and prediction drift of ``batch`` against ``reference``.

    Both frames are sampled to ``policy.max_rows`` first (seeded). Numbers enter Evidently as
    floats and categories as text, so both sides are typed alike whatever the file format was.

    Args:
        reference: The model's training rows (at least the feature columns).
        batch: The new rows.
        features: The model's features and their kinds.
        policy: Statistics, thresholds, sample size.
        out_dir: Folder of Evidently's report (``drift.html`` / ``drift.json``).
        scorer: The model: rows in, probability of the positive class out.

    Raises:
        DataError: The batch lacks a feature column.
    """
    missing = [f.name for f in features if f.name not in batch.columns]
    if missing:
        raise DataError(f"the batch lacks the model's feature column(s) {missing}")
    tests, ignored = drift_tests(features, policy)
    ref = sample_rows(reference, policy.max_rows, policy.seed)
    cur = sample_rows(batch, policy.max_rows, policy.seed + 1)
    ref_scores, cur_scores = scorer(ref), scorer(cur)
    prediction_test = drift.ColumnTest(
        column=PREDICTION_COLUMN,
        kind="numerical",
        method=policy.prediction_statistic,
        threshold=policy.max_prediction_drift,
    )
    frames = [
        _drift_frame(frame, tests, scores)
        for frame, scores in ((ref, ref_scores), (cur, cur_scores))
    ]
    checks, files = drift.column_drift_report(
        frames[0], frames[1], [*tests, prediction_test], out_dir, stem=DRIFT_STEM
    )
    return _drift_result(
        checks,
        features,
        policy,
        scores=(ref_scores, cur_scores),
        rows=(len(ref), len(cur), len(reference), len(batch)),
        files=files,
        ignored=ignored,
    )


def _drift_result(
    checks: Sequence[drift.ColumnDrift],
    features: Sequence[FeatureSpec],
    policy: DriftPolicy,
    *,
    scores: tuple[np.ndarray, np.ndarray],
    rows: tuple[int, int, int, int],
    files: drift.ReportFiles,
    ignored: Sequence[str],
) -> DriftResult:
    """The record of Evidently's verdicts: features first, the prediction column last."""
    kinds = {f.name: f.kind for f in features}
    columns = tuple(_check(c, kinds.get(c.column, "prediction")) for c in checks[:-1])
    prediction = _check(checks[-1], "prediction").model_copy(update={"column": "prediction"})
    drifted = tuple(c.column for c in columns if c.drifted)
    return DriftResult(
        columns=columns,
        drifted_columns=drifted,
        drifted_share=len(drifted) / len(columns) if columns else 0.0,
        max_drifted_share=policy.max_drifted_share,
        prediction=prediction,
        mean_score_reference=float(np.mean(scores[0])),
        mean_score_batch=float(np.mean(scores[1])),
        ignored_columns=tuple(ignored),
        rows_reference=rows[0],
        rows_batch=rows[1],
        total_rows_reference=rows[2],
        total_rows_batch=rows[3],
        evidently_html=files.html,
        evidently_json=files.json,
    )


def drift_breaches(result: DriftResult) -> list[str]:
    """One line per breach of the policy: too many drifted columns, or prediction drift.

    The drifted-columns line names every drifted column with its statistic, value and
    threshold; an empty list means the batch is within the policy.
    """
    lines = []
    if result.drifted_share > result.max_drifted_share:
        named = "; ".join(c.describe() for c in result.columns if c.drifted)
        lines.append(
            f"{len(result.drifted_columns)} of {len(result.columns)} columns drifted "
            f"(share {result.drifted_share:.3f} > max {result.max_drifted_share:g}): {named}"
        )
    if result.prediction.drifted:
        lines.append(f"prediction drift: {result.prediction.describe()}")
    return lines


def _drift_frame(
    frame: pd.DataFrame, tests: Sequence[drift.ColumnTest], scores: np.ndarray
) -> pd.DataFrame:
    """The tested columns typed for Evidently (floats, text) plus the model's scores."""
    columns = {
        t.column: pd.to_numeric(frame[t.column], errors="coerce").astype("float64")
        if t.kind == "numerical"
        else frame[t.column].astype("string").astype(object).where(frame[t.column].notna())
        for t in tests
    }
    columns[PREDICTION_COLUMN] = pd.Series(scores, index=frame.index, dtype="float64")
    return pd.DataFrame(columns)


def _check(found: drift.ColumnDrift, kind: str) -> ColumnCheck:
    return ColumnCheck(
        column=found.column,
        kind=kind,
        statistic=found.method,
        threshold=found.threshold,
        value=found.score,
        drifted=found.drifted,
    )
