"""Deterministic split and shards, and DVC versioning that restores a run's exact data."""

from __future__ import annotations

import filecmp
import shutil
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from evenflow.config.run import ShardParams, SplitParams, builtin_example
from evenflow.data import sharding, versioning
from evenflow.data.datasets import float_columns, iter_chunks
from evenflow.data.features import feature_specs
from evenflow.data.sharding import (
    ROW_ID,
    assign_splits,
    shipped_has_valid,
    write_shard_chunks,
    write_shards,
)
from evenflow.errors import DataError, VersioningError
from evenflow.records import ShardInfo

SPEC = builtin_example().dataset  # Adult: income, sex and race, its own split column


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


def _versioned_shards(
    project: Path, name: str, frame: pd.DataFrame, n_shards: int = 2
) -> tuple[list[ShardInfo], str]:
    """Shards of ``frame`` written to data/<name> and versioned by DVC: their infos and md5."""
    shard_dir = project / "data" / name
    infos = write_shards(frame, SPEC, SplitParams(), ShardParams(n_shards=n_shards), shard_dir)
    return infos, versioning.version_directory(project, project / "data", shard_dir)


def test_same_input_gives_same_shards_and_same_dvc_hash(
    tmp_path: Path, adult_frame: pd.DataFrame
) -> None:
    sample = adult_frame.sample(2000, random_state=1)
    versioning.ensure_repo(tmp_path, str(tmp_path / "remote"))
    hashes = []
    for name in ("first", "second"):
        infos, data_md5 = _versioned_shards(tmp_path, name, sample, n_shards=3)
        assert sum(i.n_rows for i in infos) == len(sample)
        hashes.append(data_md5)
    assert hashes[0] == hashes[1]
    assert hashes[0].endswith(".dir")
    assert (tmp_path / "data.dvc").is_file()
    other, other_md5 = _versioned_shards(tmp_path, "other", sample.head(1500), n_shards=3)
    assert other != infos
    assert other_md5 != hashes[0]


def test_restore_by_hash_from_remote_after_cache_loss_and_newer_data(
    tmp_path: Path, adult_frame: pd.DataFrame
) -> None:
    versioning.ensure_repo(tmp_path, str(tmp_path / "remote"))
    _, data_md5 = _versioned_shards(tmp_path, "v1", adult_frame.sample(1500, random_state=2))
    _versioned_shards(tmp_path, "v2", adult_frame.sample(1500, random_state=3))
    kept = tmp_path / "kept"
    shutil.copytree(tmp_path / "data" / "v1", kept)
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


def _md5s(infos: Sequence[ShardInfo]) -> list[tuple[str, str, int]]:
    return [(i.path, i.md5, i.n_rows) for i in infos]


def test_streamed_shards_are_byte_identical_for_any_chunk_size(
    tmp_path: Path, adult_frame: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Small row groups, so every shard file holds several and a chunk edge falls inside them.
    monkeypatch.setattr(sharding, "ROW_GROUP_ROWS", 97)
    sample = adult_frame.sample(3000, random_state=3).reset_index(drop=True)
    whole = write_shards(sample, SPEC, SplitParams(), ShardParams(n_shards=3), tmp_path / "whole")
    has_valid = shipped_has_valid([sample["split"]], "split")
    features = {}
    for rows in (250, 1001):
        chunks = [sample.iloc[start : start + rows] for start in range(0, len(sample), rows)]
        infos, features[rows], _ = write_shard_chunks(
            chunks,
            SPEC,
            SplitParams(),
            ShardParams(n_shards=3),
            tmp_path / f"chunks-{rows}",
            has_valid=has_valid,
        )
        assert _md5s(infos) == _md5s(whole)
    assert features[250] == features[1001] == feature_specs(sample, SPEC)
    shard = pd.read_parquet(tmp_path / "chunks-250" / whole[0].path)
    assert pq.ParquetFile(tmp_path / "chunks-250" / whole[0].path).metadata.num_row_groups > 1
    assert shard[ROW_ID].is_monotonic_increasing


def test_parquet_parts_stream_with_whole_file_dtypes(
    tmp_path: Path, adult_frame: pd.DataFrame
) -> None:
    """An int column with a null in one part only reads as float64 in every chunk."""
    sample = adult_frame.sample(1200, random_state=4).reset_index(drop=True)
    folder = tmp_path / "parts"
    folder.mkdir()
    for index, start in enumerate(range(0, len(sample), 400)):
        part = sample.iloc[start : start + 400]
        # Written as a non-pandas producer would: a plain int64 column, nullable in parquet.
        table = pa.Table.from_pandas(part, preserve_index=False).replace_schema_metadata(None)
        ages = pa.array(part["age"], type=pa.int64(), mask=(part.index == 900))
        table = table.set_column(table.schema.get_field_index("age"), "age", ages)
        pq.write_table(table, folder / f"part-{index}.parquet")
    assert float_columns(folder) == {"age"}
    chunks = list(iter_chunks(folder, 250))
    assert {str(chunk["age"].dtype) for chunk in chunks} == {"float64"}
    whole = pd.read_parquet(folder)
    pd.testing.assert_frame_equal(pd.concat(chunks), whole)
    spec = SPEC.model_copy(update={"path": folder})
    streamed, _, _ = write_shard_chunks(
        iter_chunks(folder, 250),
        spec,
        SplitParams(),
        ShardParams(n_shards=2),
        tmp_path / "streamed",
        has_valid=False,
    )
    in_memory = write_shards(whole, spec, SplitParams(), ShardParams(n_shards=2), tmp_path / "mem")
    assert _md5s(streamed) == _md5s(in_memory)
