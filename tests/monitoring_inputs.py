"""What the monitoring tests and benchmark share: planted drift in Adult, a model no registry holds."""

from __future__ import annotations

import numpy as np
import pandas as pd

from evenflow.config.fairness import FairnessParams
from evenflow.config.run import DatasetSpec
from evenflow.govern.monitoring import MonitoredModel
from evenflow.records import FeatureSpec


def plant_adult_drift(rows: pd.DataFrame) -> pd.DataFrame:
    """Older people (age + 10, capped at the contract's 90) and a new employer mix.

    A fixed 40% of rows (seed 3) move to ``Self-emp-inc``, so every caller plants the same shift.
    """
    drifted = rows.copy()
    drifted["age"] = np.minimum(drifted["age"] + 10, 90)
    moved = np.random.default_rng(3).random(len(drifted)) < 0.4
    drifted.loc[moved, "workclass"] = "Self-emp-inc"
    return drifted


def unregistered_model(
    dataset: DatasetSpec, features: tuple[FeatureSpec, ...], fairness: FairnessParams
) -> MonitoredModel:
    """Version 1 of ``dataset``'s model as champion, built in memory: no run or data behind it.

    The monitoring core reads only the columns, the threshold (0.5) and the fairness parameters;
    the run id and data md5 are placeholders that name no real run.
    """
    return MonitoredModel(
        name=dataset.name,
        version="1",
        alias="champion",
        run_id="unregistered",
        data_md5="unregistered.dir",
        features=features,
        target=dataset.target,
        positive_label=dataset.positive_label,
        sensitive=dataset.sensitive,
        split_column=dataset.split_column,
        threshold=0.5,
        fairness=fairness,
    )
