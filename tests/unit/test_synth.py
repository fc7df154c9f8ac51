"""The planted-effects generator: seeded, chunkable, and its truth is what the rows show."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from pydantic import ValidationError

from evenflow.data import planted_parquet as synth
from evenflow.data.planted_parquet import (
    NEGATIVE_LABEL,
    POSITIVE_LABEL,
    SENSITIVE,
    TARGET,
    feature_names,
    training_chunk,
    write_planted_parquet,
)
from evenflow.data.synth import (
    PlantedEffects,
    iter_planted_chunks,
    make_planted,
    plan_planted,
    planted_chunk,
)

# The planted frame: a row id, the Adult-like model inputs, then the leaky label and score.
COLUMNS = ["_row_id", *feature_names(), "label", "score"]


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


# --- write_planted_parquet: a directory of parquet parts, one per chunk --------------------------

N_ROWS = 30_000
CHUNK = 7_000


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> synth.SynthManifest:
    out = tmp_path_factory.mktemp("synth") / "adult-like"
    return write_planted_parquet(N_ROWS, out, seed=3, chunk_rows=CHUNK, n_features=30)


def _parts(directory: Path) -> list[Path]:
    return sorted(directory.iterdir())


def test_parts_cover_all_rows_and_read_back_as_one_frame(written: synth.SynthManifest) -> None:
    parts = _parts(written.path)
    assert [p.name for p in parts] == [f"part-{i:05d}.parquet" for i in range(5)]
    assert written.parts == math.ceil(N_ROWS / CHUNK) == len(parts)
    assert written.rows == N_ROWS and written.seconds >= 0
    frame = pd.read_parquet(written.path)
    assert len(frame) == N_ROWS
    assert [len(pd.read_parquet(p)) for p in parts] == [7_000] * 4 + [2_000]
    assert tuple(frame.columns) == written.columns == (*written.features, TARGET)


def test_schema_is_trainable_without_leaks(written: synth.SynthManifest) -> None:
    frame = pd.read_parquet(written.path)
    assert not {"score", "label", "_row_id"} & set(frame.columns)
    assert set(frame[TARGET]) == {POSITIVE_LABEL, NEGATIVE_LABEL}
    assert set(SENSITIVE) <= set(written.features)
    assert written.target == TARGET and written.positive_label == POSITIVE_LABEL
    assert len(written.features) == 30
    noise = [c for c in written.features if c.startswith("x")]
    assert noise == [f"x{i:02d}" for i in range(20)]
    assert (frame[noise].dtypes == np.float32).all()
    assert frame.notna().all().all()


def test_label_rates_per_sex_match_the_plant(written: synth.SynthManifest) -> None:
    frame = pd.read_parquet(written.path, columns=["sex", TARGET])
    positive = frame[TARGET] == POSITIVE_LABEL
    for sex, rate in written.truth.base_rate_by_sex.items():
        in_sex = frame["sex"] == sex
        assert _within(float(positive[in_sex].mean()), rate, int(in_sex.sum()))
    assert written.truth.base_rate_gap == pytest.approx(0.20, abs=1e-12)


def test_same_seed_gives_identical_bytes(tmp_path: Path, written: synth.SynthManifest) -> None:
    again = write_planted_parquet(
        N_ROWS, tmp_path / "again", seed=3, chunk_rows=CHUNK, n_features=30
    )
    other = write_planted_parquet(
        N_ROWS, tmp_path / "other", seed=4, chunk_rows=CHUNK, n_features=30
    )
    pairs = zip(_parts(written.path), _parts(again.path), strict=True)
    assert all(a.read_bytes() == b.read_bytes() for a, b in pairs)
    assert _parts(written.path)[0].read_bytes() != _parts(other.path)[0].read_bytes()


def test_each_part_is_its_chunk_alone(written: synth.SynthManifest) -> None:
    """Part i depends only on (seed, i, chunk size): it can be regenerated without the others."""
    truth = plan_planted(PlantedEffects())
    alone = training_chunk(2, CHUNK, 3, truth, written.features)
    pd.testing.assert_frame_equal(pd.read_parquet(_parts(written.path)[2]), alone)


def test_padding_does_not_change_the_planted_columns(tmp_path: Path) -> None:
    plain = write_planted_parquet(5_000, tmp_path / "plain", seed=1, chunk_rows=2_000)
    padded = write_planted_parquet(
        5_000, tmp_path / "padded", seed=1, chunk_rows=2_000, n_features=12
    )
    assert len(plain.features) == 10 and padded.features[-2:] == ("x00", "x01")
    base = pd.read_parquet(plain.path)
    pd.testing.assert_frame_equal(pd.read_parquet(padded.path)[list(base.columns)], base)


def test_output_replaces_an_existing_directory(tmp_path: Path) -> None:
    out = tmp_path / "data"
    write_planted_parquet(3_000, out, chunk_rows=1_000)
    write_planted_parquet(1_500, out, chunk_rows=1_000)
    assert len(_parts(out)) == 2 and len(pd.read_parquet(out)) == 1_500


def test_failure_mid_write_leaves_no_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[Path] = []
    real = synth._write_part

    def flaky(chunk: pd.DataFrame, schema: pa.Schema, path: Path) -> None:
        if calls:
            raise OSError("disk full")
        calls.append(path)
        real(chunk, schema, path)

    monkeypatch.setattr(synth, "_write_part", flaky)
    with pytest.raises(OSError, match="disk full"):
        write_planted_parquet(3_000, tmp_path / "out", chunk_rows=1_000)
    assert calls and list(tmp_path.iterdir()) == []


def test_bad_sizes_are_refused_before_writing(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(ValueError, match="n_rows"):
        write_planted_parquet(0, out)
    with pytest.raises(ValueError, match="chunk_rows"):
        write_planted_parquet(100, out, chunk_rows=0)
    with pytest.raises(ValueError, match="n_features"):
        write_planted_parquet(100, out, n_features=9)
    assert not out.exists()


def test_feature_names_pad_with_wide_enough_numbers() -> None:
    assert feature_names() == feature_names(10)
    assert feature_names(115)[-1] == "x104"
