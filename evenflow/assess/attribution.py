"""What explanations are made of: SHAP's bias column, a feature's importance, a seeded row sample.

Shared by the SHAP summary (:mod:`evenflow.assess.explain`), the proxy check
(:mod:`evenflow.assess.proxy`) and the plots (:mod:`evenflow.reports.explanations`).
"""

from __future__ import annotations

import pandas as pd

from evenflow.records import Record

BIAS = "bias"
"""The column of a SHAP frame holding each row's base margin (the rest are features)."""
OTHER = "(other)"
"""The group that rare classes or groups are merged into."""


class FeatureImportance(Record):
    """One feature's mean absolute SHAP value (margin units)."""

    feature: str
    mean_abs_shap: float


def sample_rows(frame: pd.DataFrame, max_rows: int | None, seed: int) -> pd.DataFrame:
    """A seeded sample of at most ``max_rows`` rows (all rows, in order, when it fits)."""
    if max_rows is None or len(frame) <= max_rows:
        return frame
    return frame.sample(n=max_rows, random_state=seed).sort_index()
