"""Personal columns stay out of everything a run keeps: shards, contract, artifacts, model, logs.

The Adult sample gets two planted personal columns, a national id and an e-mail address, one
distinct value per row. After a run that marks them as ``personal_columns``, every file the run
left in the project (parquet read as tables, gzip opened, the rest as bytes) is searched for any of
the planted values, and none is found. The model's test AUC is compared with a logistic regression
the test fits on the same train rows.
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from mlflow import MlflowClient
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from evenflow.config.settings import EvenflowSettings
from flows.train_and_register import train_and_register
from tests.conftest import sample_params

pytestmark = pytest.mark.slow

SSN = re.compile(rb"9\d\d-\d\d-\d{4}")
EMAIL = re.compile(rb"person\d+@example\.org")


def planted(frame: pd.DataFrame) -> pd.DataFrame:
    rng = np.random.default_rng(11)
    ids = rng.choice(10**8, size=len(frame), replace=False)
    return frame.assign(
        national_id=[
            f"9{i // 10**6 % 100:02d}-{i // 10**4 % 100:02d}-{i % 10**4:04d}" for i in ids
        ],
        email=[f"person{i}@example.org" for i in ids],
    )


def leaked(path: Path, values: set[bytes]) -> set[bytes]:
    """The planted values found in one file."""
    if path.suffix == ".parquet":
        table = pq.read_table(path)
        found = set()
        for column in table.column_names:
            cells = {str(v).encode() for v in table.column(column).to_pylist()}
            found |= cells & values
        return found
    raw = path.read_bytes()
    if path.suffix == ".gz":
        raw = gzip.decompress(raw)
    return {m for pattern in (SSN, EMAIL) for m in pattern.findall(raw)} & values


def test_planted_personal_values_appear_in_no_file_the_run_keeps(
    project: Path, adult_sample_path: Path, tmp_path: Path
) -> None:
    data = planted(pd.read_csv(adult_sample_path))
    path = tmp_path / "adult_sample.csv"
    data.to_csv(path, index=False)
    values = {v.encode() for v in (*data["national_id"], *data["email"])}
    params = sample_params(path, dataset__personal_columns=("national_id", "email"))

    version = train_and_register(params)

    files = [p for p in project.rglob("*") if p.is_file()]
    assert any(p.suffix == ".parquet" for p in files), "the run wrote no shards"
    leaks = {str(p.relative_to(project)): found for p in files if (found := leaked(p, values))}
    assert leaks == {}
    client = MlflowClient(EvenflowSettings().tracking_uri)
    run = client.get_run(version.run_id)
    assert not {"national_id", "email"} & set(str(run.data.params))
    assert run.data.metrics["test_roc_auc"] > baseline_auc(pd.read_csv(adult_sample_path)) - 0.02


def baseline_auc(frame: pd.DataFrame) -> float:
    """Test AUC of a one-hot logistic regression on the shipped train rows."""
    features = frame.drop(columns=["income", "split"])
    encoded = pd.get_dummies(features, dtype=float).fillna(0)
    label = (frame["income"] == ">50K").astype(int)
    train, test = frame["split"] == "train", frame["split"] == "test"
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    model.fit(encoded[train], label[train])
    return float(roc_auc_score(label[test], model.predict_proba(encoded[test])[:, 1]))
