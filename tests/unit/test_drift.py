"""Evidently drift and classification reports: planted shifts are found, resamples are not."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from evenflow.assess.drift import (
    DriftSummary,
    ReportFiles,
    classification_report,
    data_drift_report,
    summarise_drift,
    widen_small_ints,
)
from evenflow.assess.evaluation import binary_metrics
from evenflow.errors import DataError

ROWS = 3_000
NUMERICAL = ["income", "age"]
CATEGORICAL = ["region", "channel", "label"]


def _draw(rng: np.random.Generator, *, shift: bool) -> pd.DataFrame:
    """One sample; ``shift`` moves income by half a std and reweights region."""
    region_p = [0.2, 0.3, 0.5] if shift else [0.5, 0.3, 0.2]
    return pd.DataFrame(
        {
            "income": rng.normal(0.5 if shift else 0.0, 1.0, ROWS),
            "age": rng.normal(40.0, 12.0, ROWS),
            "region": rng.choice(
                np.array(["north", "south", "west"], dtype=object), ROWS, p=region_p
            ),
            "channel": rng.choice(np.array(["web", "store"], dtype=object), ROWS),
            "label": rng.integers(0, 2, ROWS).astype(
                np.int8
            ),  # int8 trips Evidently unless widened
        }
    )


@pytest.fixture(scope="module")
def samples() -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(7)
    return {
        "reference": _draw(rng, shift=False),
        "resample": _draw(rng, shift=False),
        "shifted": _draw(rng, shift=True),
    }


@pytest.fixture(scope="module")
def shifted(
    samples: dict[str, pd.DataFrame], tmp_path_factory: pytest.TempPathFactory
) -> DriftSummary:
    out = tmp_path_factory.mktemp("shifted")
    return data_drift_report(samples["reference"], samples["shifted"], NUMERICAL, CATEGORICAL, out)


def test_planted_shift_is_flagged_for_exactly_those_columns(shifted: DriftSummary) -> None:
    assert set(shifted.drifted_columns) == {"income", "region"}
    assert shifted.drifted_count == 2
    assert shifted.drifted_share == pytest.approx(2 / 5)
    assert not shifted.dataset_drift
    by_column = {c.column: c for c in shifted.columns}
    assert set(by_column) == set(NUMERICAL + CATEGORICAL)
    assert by_column["income"].drifted
    assert by_column["income"].score > by_column["age"].score


def test_unshifted_resample_flags_nothing(samples: dict[str, pd.DataFrame], tmp_path: Path) -> None:
    resampled = data_drift_report(
        samples["reference"], samples["resample"], NUMERICAL, CATEGORICAL, tmp_path
    )
    assert resampled.drifted_columns == ()
    assert resampled.drifted_count == 0
    assert not any(c.drifted for c in resampled.columns)


def test_methods_and_thresholds_are_evidently_s(shifted: DriftSummary) -> None:
    methods = {c.column: c.method for c in shifted.columns}
    # Above 1,000 rows Evidently uses distances: Wasserstein (numeric), Jensen-Shannon (categories).
    assert all("Wasserstein" in methods[c] for c in NUMERICAL)
    assert all("Jensen-Shannon" in methods[c] for c in CATEGORICAL)
    assert all(c.threshold > 0 for c in shifted.columns)


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def test_drift_files_are_written_and_parse(shifted: DriftSummary) -> None:
    assert shifted.html_path.name == "data_drift.html"
    assert "<html" in shifted.html_path.read_text(encoding="utf-8")[:2000].lower()
    payload = _read_json(shifted.json_path)
    assert {"metrics", "tests"} <= set(payload)
    assert not list(shifted.html_path.parent.glob(".*.tmp"))


def test_summary_round_trips_through_saved_json(shifted: DriftSummary) -> None:
    files = ReportFiles(html=shifted.html_path, json=shifted.json_path)
    again = summarise_drift(_read_json(shifted.json_path), files, shifted.drift_share_threshold)
    assert again == shifted


def test_sampling_caps_rows_and_is_repeatable(
    samples: dict[str, pd.DataFrame], tmp_path: Path
) -> None:
    runs = [
        data_drift_report(
            samples["reference"],
            samples["shifted"],
            NUMERICAL,
            [],
            tmp_path / str(i),
            max_rows=1_200,
            seed=3,
        )
        for i in range(2)
    ]
    assert runs[0].columns == runs[1].columns
    assert "income" in runs[0].drifted_columns


def test_missing_column_is_named(samples: dict[str, pd.DataFrame], tmp_path: Path) -> None:
    with pytest.raises(DataError, match="nope"):
        data_drift_report(samples["reference"], samples["shifted"], ["nope"], [], tmp_path)


def test_summarise_rejects_a_snapshot_without_drift_metrics(tmp_path: Path) -> None:
    files = ReportFiles(html=tmp_path / "a.html", json=tmp_path / "a.json")
    with pytest.raises(ValueError, match="ValueDrift"):
        summarise_drift({"metrics": [], "tests": []}, files, 0.5)


def test_small_ints_are_widened() -> None:
    frame = pd.DataFrame(
        {
            "a": np.array([0, 1], dtype=np.int8),
            "b": pd.array([1, None], dtype="Int8"),
            "c": np.array([0, 1], dtype=np.uint8),
            "d": [0.5, 1.5],
        }
    )
    widened = widen_small_ints(frame)
    assert widened.dtypes.astype(str).to_dict() == {
        "a": "int64",
        "b": "Int64",
        "c": "int64",
        "d": "float64",
    }


def test_classification_report_files_and_figures_agree_with_ours(tmp_path: Path) -> None:
    rng = np.random.default_rng(11)
    label = rng.integers(0, 2, 2_000)
    score = np.clip(0.35 * label + rng.uniform(0.0, 0.65, label.size), 0.0, 1.0)
    predictions = pd.DataFrame({"_row_id": np.arange(label.size), "label": label, "score": score})
    threshold = 0.45

    files = classification_report(predictions, tmp_path, threshold)

    assert files.html == tmp_path / "classification.html"
    assert files.html.stat().st_size > 0
    payload = _read_json(files.json)
    evidently = {
        m["config"]["type"].rsplit(":", 1)[-1]: m["value"]
        for m in payload["metrics"]
        if not isinstance(m["value"], dict)
    }
    ours = binary_metrics(label, score, threshold)
    for theirs, mine in [("Accuracy", "accuracy"), ("Recall", "recall"), ("RocAuc", "roc_auc")]:
        assert evidently[theirs] == pytest.approx(ours[mine], abs=1e-9), theirs


def test_classification_report_accepts_reference_predictions(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    frames = [
        pd.DataFrame({"label": rng.integers(0, 2, 500), "score": rng.uniform(size=500)})
        for _ in range(2)
    ]
    files = classification_report(frames[0], tmp_path, 0.5, reference=frames[1])
    assert files.html.exists()
    assert _read_json(files.json)["metrics"]
