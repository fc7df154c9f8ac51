"""Deterministic split and shards, and DVC versioning that restores a run's exact data."""

from __future__ import annotations

import filecmp
import shutil
from pathlib import Path

import pandas as pd
import pytest

from evenflow import versioning
from evenflow.errors import DataError, VersioningError
from evenflow.params import DatasetSpec, ShardParams, SplitParams
from evenflow.sharding import assign_splits, feature_specs, write_shards

SPEC = DatasetSpec(
    name="adult",
    path=Path("unused.csv"),
    target="income",
    positive_label=">50K",
    sensitive=("sex", "race"),
    split_column="split",
)


def test_shipped_split_is_kept_and_valid_is_carved_from_train(adult_frame: pd.DataFrame) -> None:
    splits = assign_splits(adult_frame, SPEC, SplitParams(valid_fraction=0.15))
    shipped = adult_frame["split"].to_numpy()
    assert (splits[shipped == "test"] == "test").all()
    carved = (splits[shipped == "train"] == "valid").mean()
    assert 0.13 < carved < 0.17


def test_hash_split_has_the_configured_fractions(adult_frame: pd.DataFrame) -> None:
    spec = SPEC.model_copy(update={"split_column": None})
    splits = assign_splits(
        adult_frame.drop(columns="split"), spec, SplitParams(valid_fraction=0.1, test_fraction=0.25)
    )
    assert abs((splits == "test").mean() - 0.25) < 0.01
    assert abs((splits == "valid").mean() - 0.1) < 0.01


def test_unknown_split_values_are_named(adult_frame: pd.DataFrame) -> None:
    bad = adult_frame.head(50).assign(split="holdout")
    with pytest.raises(DataError, match=r"split column 'split' has values \['holdout'\]"):
        assign_splits(bad, SPEC, SplitParams())


def test_features_exclude_target_and_split_and_type_categoricals(adult_frame: pd.DataFrame) -> None:
    features = {f.name: f for f in feature_specs(adult_frame, SPEC)}
    assert "income" not in features and "split" not in features
    assert features["age"].kind == "numeric"
    assert features["sex"].categories == ("Female", "Male")
    excluded = feature_specs(adult_frame, SPEC.model_copy(update={"sensitive_as_features": False}))
    assert {"sex", "race"}.isdisjoint(f.name for f in excluded)


def test_same_input_gives_same_shards_and_same_dvc_hash(
    tmp_path: Path, adult_frame: pd.DataFrame
) -> None:
    sample = adult_frame.sample(2000, random_state=1)
    versioning.ensure_repo(tmp_path, str(tmp_path / "remote"))
    hashes = []
    for name in ("first", "second"):
        shard_dir = tmp_path / "data" / name
        infos = write_shards(sample, SPEC, SplitParams(), ShardParams(n_shards=3), shard_dir)
        assert sum(i.n_rows for i in infos) == len(sample)
        hashes.append(versioning.version_directory(tmp_path, tmp_path / "data", shard_dir))
    assert hashes[0] == hashes[1]
    assert hashes[0].endswith(".dir")
    assert (tmp_path / "data.dvc").is_file()
    other = write_shards(
        sample.head(1500), SPEC, SplitParams(), ShardParams(n_shards=3), tmp_path / "data" / "other"
    )
    assert other != infos
    assert (
        versioning.version_directory(tmp_path, tmp_path / "data", tmp_path / "data" / "other")
        != hashes[0]
    )


def test_restore_by_hash_from_remote_after_cache_loss_and_newer_data(
    tmp_path: Path, adult_frame: pd.DataFrame
) -> None:
    versioning.ensure_repo(tmp_path, str(tmp_path / "remote"))
    original = tmp_path / "data" / "v1"
    write_shards(
        adult_frame.sample(1500, random_state=2),
        SPEC,
        SplitParams(),
        ShardParams(n_shards=2),
        original,
    )
    data_md5 = versioning.version_directory(tmp_path, tmp_path / "data", original)
    newer = tmp_path / "data" / "v2"
    write_shards(
        adult_frame.sample(1500, random_state=3),
        SPEC,
        SplitParams(),
        ShardParams(n_shards=2),
        newer,
    )
    versioning.version_directory(tmp_path, tmp_path / "data", newer)
    kept = tmp_path / "kept"
    shutil.copytree(original, kept)
    shutil.rmtree(tmp_path / "data")
    shutil.rmtree(tmp_path / ".dvc" / "cache")

    restored = versioning.restore_directory(tmp_path, data_md5, tmp_path / "restored")

    comparison = filecmp.dircmp(kept, restored)
    assert not comparison.left_only and not comparison.right_only
    assert sorted(p.relative_to(restored) for p in restored.rglob("*.parquet")) == sorted(
        p.relative_to(kept) for p in kept.rglob("*.parquet")
    )
    for path in kept.rglob("*.parquet"):
        assert path.read_bytes() == (restored / path.relative_to(kept)).read_bytes()


def test_restore_of_unknown_hash_says_where_it_looked(tmp_path: Path) -> None:
    versioning.ensure_repo(tmp_path, str(tmp_path / "remote"))
    with pytest.raises(VersioningError, match="neither the DVC cache nor the remote"):
        versioning.restore_directory(tmp_path, "0" * 32 + ".dir", tmp_path / "out")
