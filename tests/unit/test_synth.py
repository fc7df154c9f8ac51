"""The planted-effects generator: seeded, chunkable, and its truth is what the rows show."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from evenflow.synth import (
    PlantedEffects,
    iter_planted_chunks,
    make_planted,
    plan_planted,
    planted_chunk,
)

COLUMNS = [
    "_row_id",
    "age",
    "workclass",
    "education",
    "education-num",
    "marital-status",
    "occupation",
    "capital-gain",
    "hours-per-week",
    "sex",
    "race",
    "label",
    "score",
]


@pytest.fixture(scope="module")
def big() -> pd.DataFrame:
    frame, _ = make_planted(300_000, seed=99)
    return frame


def test_frame_is_adult_like_and_typed() -> None:
    frame, _ = make_planted(2_000, seed=1)
    assert list(frame.columns) == COLUMNS
    assert frame["_row_id"].tolist() == list(range(2_000))
    assert frame["label"].dtype == np.int64 and set(frame["label"].unique()) <= {0, 1}
    assert frame["score"].dtype == np.float64 and frame["score"].between(0, 1).all()
    assert set(frame["sex"]) == {"Male", "Female"}
    assert frame["race"].isin(list(PlantedEffects().race_shares)).all()
    assert frame["age"].between(17, 90).all()
    assert frame["workclass"].nunique() > 1 and frame["occupation"].nunique() > 1


def test_same_seed_same_rows_other_seed_other_rows() -> None:
    first, _ = make_planted(1_000, seed=5)
    again, _ = make_planted(1_000, seed=5)
    other, _ = make_planted(1_000, seed=6)
    pd.testing.assert_frame_equal(first, again)
    assert not first["score"].equals(other["score"])


def test_chunks_can_be_generated_alone_and_continue_row_ids() -> None:
    truth = plan_planted(PlantedEffects())
    chunks = list(iter_planted_chunks(2_500, seed=4, truth=truth, chunk_rows=1_000))
    assert [len(c) for c in chunks] == [1_000, 1_000, 500]
    joined = pd.concat(chunks, ignore_index=True)
    assert joined["_row_id"].tolist() == list(range(2_500))
    alone = planted_chunk(1, 1_000, seed=4, truth=truth, row_offset=1_000)
    pd.testing.assert_frame_equal(alone, chunks[1])
    whole, _ = make_planted(2_500, seed=4)
    pd.testing.assert_frame_equal(whole, planted_chunk(0, 2_500, 4, truth, 0))


def test_planted_targets_hold_exactly_for_calibrated_cells() -> None:
    effects = PlantedEffects()
    truth = plan_planted(effects)
    for sex in effects.sex_shares:
        cell = truth.groups["sex × race"][f"{sex} × White"]
        assert cell.base_rate == pytest.approx(effects.base_rate[sex], abs=1e-12)
        assert cell.tpr == pytest.approx(effects.tpr[sex], abs=1e-9)
        assert cell.ece == 0.0
    assert truth.base_rate_gap == pytest.approx(0.20, abs=1e-12)
    assert truth.miscalibrated_ece == pytest.approx(0.15 * (1 - 0.67 * 0.31 - 0.33 * 0.11))


def _within(observed: float, expected: float, n: int, sigmas: float = 5.0) -> bool:
    """Sampling tolerance of a proportion estimated from n rows."""
    return bool(
        abs(observed - expected) <= sigmas * np.sqrt(max(expected * (1 - expected), 1e-4) / n)
    )


def test_rows_show_the_truth(big: pd.DataFrame) -> None:
    truth = plan_planted(PlantedEffects())
    predicted = big["score"] >= 0.5
    for sex, rows in big.groupby("sex"):
        expected = truth.groups["sex"][str(sex)]
        positives = rows[rows["label"] == 1]
        negatives = rows[rows["label"] == 0]
        assert _within(rows["label"].mean(), expected.base_rate, len(rows))
        assert _within(predicted[rows.index].mean(), expected.selection_rate, len(rows))
        assert _within(predicted[positives.index].mean(), expected.tpr, len(positives))
        assert _within(predicted[negatives.index].mean(), expected.fpr, len(negatives))


def test_miscalibration_shows_as_mean_score_minus_label(big: pd.DataFrame) -> None:
    """With a one-signed distortion, E[score - label] in the group equals its population ECE."""
    truth = plan_planted(PlantedEffects())
    for race, rows in big.groupby("race"):
        gap = float((rows["score"] - rows["label"]).mean())
        tolerance = 5 * float((rows["score"] - rows["label"]).std()) / np.sqrt(len(rows))
        assert gap == pytest.approx(truth.groups["race"][str(race)].ece, abs=tolerance)


def test_negative_miscalibration_under_predicts() -> None:
    effects = PlantedEffects(miscalibration=-0.3)
    frame, truth = make_planted(50_000, seed=8, effects=effects)
    rows = frame[frame["race"] == "Black"]
    assert float((rows["label"] - rows["score"]).mean()) == pytest.approx(
        truth.miscalibrated_ece, abs=0.02
    )
    assert truth.miscalibrated_ece == pytest.approx(0.3 * truth.groups["race"]["Black"].base_rate)


@pytest.mark.parametrize(
    "bad",
    [
        {"base_rate": {"Male": 0.6, "Female": 0.1}},
        {"tpr": {"Male": 0.5}},
        {"sex_shares": {"Male": 0.5, "Female": 0.4}},
        {"miscalibrated_race": "Martian"},
        {"unknown": 1},
    ],
)
def test_effects_are_validated(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        PlantedEffects.model_validate(bad)
