"""Starter-suite inference and suite files, checked against real Great Expectations 1.24."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import great_expectations as gx
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from evenflow.config.run import DatasetSpec, builtin_example
from evenflow.contracts.suite import (
    MAX_CATEGORIES,
    ROW_FLOOR_FRACTION,
    build_gx_suite,
    infer_suite,
    infer_suite_from_chunks,
    load_suite,
    write_suite,
)
from evenflow.data.datasets import iter_chunks, read_table
from evenflow.errors import ConfigError, DataError


@pytest.fixture(scope="module")
def spec() -> DatasetSpec:
    return builtin_example().dataset


@pytest.fixture(scope="module")
def frame(adult_frame: pd.DataFrame) -> pd.DataFrame:
    return adult_frame.sample(2000, random_state=3).reset_index(drop=True)


@pytest.fixture(scope="module")
def suite(frame: pd.DataFrame, spec: DatasetSpec) -> dict[str, Any]:
    return infer_suite(frame, spec)


def toy_spec(**overrides: Any) -> DatasetSpec:
    fields = {"name": "toy", "path": "toy.csv", "target": "y", "positive_label": "1"}
    return DatasetSpec(**{**fields, "sensitive": ("group",), **overrides})


def expectations_of(suite: dict[str, Any], kind: str, column: str | None = None) -> list[Any]:
    return [
        e
        for e in suite["expectations"]
        if e["type"] == kind and (column is None or e["kwargs"].get("column") == column)
    ]


def only_kwargs(suite: dict[str, Any], kind: str, column: str) -> dict[str, Any]:
    (found,) = expectations_of(suite, kind, column)
    kwargs: dict[str, Any] = found["kwargs"]
    return kwargs


def test_suite_is_a_fixed_point_of_gx_serialisation(suite: dict[str, Any]) -> None:
    rebuilt = gx.ExpectationSuite(**suite)
    assert len(rebuilt.expectations) == len(suite["expectations"])
    assert rebuilt.to_json_dict() == suite
    assert json.loads(json.dumps(suite)) == suite


def test_suite_covers_columns_rows_and_labels(
    suite: dict[str, Any], frame: pd.DataFrame, spec: DatasetSpec
) -> None:
    assert suite["name"] == "adult"
    (column_set,) = expectations_of(suite, "expect_table_columns_to_match_set")
    assert column_set["kwargs"]["column_set"] == sorted(frame.columns)
    existing = {e["kwargs"]["column"] for e in expectations_of(suite, "expect_column_to_exist")}
    assert existing == set(frame.columns)
    (rows,) = expectations_of(suite, "expect_table_row_count_to_be_between")
    assert rows["meta"]["observed_rows"] == len(frame) == 2000
    assert rows["kwargs"]["min_value"] == int(2000 * ROW_FLOOR_FRACTION) == 200
    labels = only_kwargs(suite, "expect_column_values_to_be_in_set", spec.target)
    assert labels["value_set"] == ["<=50K", ">50K"]
    positive = only_kwargs(suite, "expect_column_distinct_values_to_contain_set", spec.target)
    assert positive["value_set"] == [">50K"]


def test_types_accept_compatible_dtypes_only(suite: dict[str, Any]) -> None:
    numeric = only_kwargs(suite, "expect_column_values_to_be_in_type_list", "age")["type_list"]
    assert {"int64", "Int64Dtype", "float64"} <= set(numeric)
    assert "str" not in numeric
    text = only_kwargs(suite, "expect_column_values_to_be_in_type_list", "workclass")
    assert text["type_list"] == ["str", "StringDtype"]


def test_null_tolerance_follows_observed_nulls(suite: dict[str, Any], frame: pd.DataFrame) -> None:
    gx_suite = build_gx_suite(suite, source="test")
    mostly = {
        e.column: e.mostly
        for e in gx_suite.expectations
        if e.expectation_type == "expect_column_values_to_not_be_null"
    }
    assert mostly["age"] == 1.0
    observed = 1 - frame["workclass"].isna().mean()
    assert observed - 0.02 < mostly["workclass"] < observed


def test_ranges_and_categories(suite: dict[str, Any], frame: pd.DataFrame) -> None:
    age = only_kwargs(suite, "expect_column_values_to_be_between", "age")
    assert (age["min_value"], age["max_value"]) == (frame["age"].min(), frame["age"].max())
    race = only_kwargs(suite, "expect_column_values_to_be_in_set", "race")
    assert race["value_set"] == sorted(frame["race"].unique())


def test_high_cardinality_text_and_odd_dtypes() -> None:
    toy = pd.DataFrame(
        {
            "id": [f"row-{i}" for i in range(MAX_CATEGORIES + 1)],
            "group": ["a", "b", "c"] * 17,
            "flag": [True, False, True] * 17,
            "count": pd.array(range(51), dtype="Int64"),
            "kind": pd.Categorical(["x", "y", "z"] * 17),
            "y": [0, 1, 1] * 17,
        }
    )
    suite = infer_suite(toy, toy_spec())
    assert not expectations_of(suite, "expect_column_values_to_be_in_set", "id")
    assert only_kwargs(suite, "expect_column_values_to_be_in_set", "group")["value_set"] == [
        "a",
        "b",
        "c",
    ]
    flag = only_kwargs(suite, "expect_column_values_to_be_in_type_list", "flag")
    assert flag["type_list"] == ["bool", "BooleanDtype"]
    assert not expectations_of(suite, "expect_column_values_to_be_between", "flag")
    count = only_kwargs(suite, "expect_column_values_to_be_in_type_list", "count")
    assert "Int64Dtype" in count["type_list"]
    # GX cannot express a categorical dtype; the column keeps its other checks.
    assert not expectations_of(suite, "expect_column_values_to_be_in_type_list", "kind")
    assert expectations_of(suite, "expect_column_values_to_not_be_null", "kind")
    # Integer labels: the positive label string "1" matches the value 1.
    assert only_kwargs(suite, "expect_column_distinct_values_to_contain_set", "y") == {
        "column": "y",
        "value_set": [1],
    }


def test_inference_is_deterministic(
    frame: pd.DataFrame, spec: DatasetSpec, suite: dict[str, Any], tmp_path: Path
) -> None:
    shuffled = frame.sample(frac=1.0, random_state=11)
    assert infer_suite(shuffled, spec) == suite
    first = write_suite(suite, tmp_path / "a.json").read_bytes()
    second = write_suite(infer_suite(frame.copy(), spec), tmp_path / "b.json").read_bytes()
    assert first == second


def test_inference_leaves_the_frame_alone(frame: pd.DataFrame, spec: DatasetSpec) -> None:
    before = frame.copy()
    infer_suite(frame, spec)
    pd.testing.assert_frame_equal(frame, before)


def test_positive_label_must_be_observed(frame: pd.DataFrame, spec: DatasetSpec) -> None:
    negatives = frame[frame["income"] == "<=50K"]
    with pytest.raises(ConfigError, match=r"'>50K'.*'income'.*labels seen: \['<=50K'\]"):
        infer_suite(negatives, spec)


@pytest.mark.parametrize("column", ["income", "race"])
def test_target_and_sensitive_columns_must_exist(
    frame: pd.DataFrame, spec: DatasetSpec, column: str
) -> None:
    with pytest.raises(ConfigError, match=f"column '{column}' is not in the data"):
        infer_suite(frame.drop(columns=[column]), spec)


def as_json(suite: dict[str, Any]) -> str:
    return json.dumps(suite, sort_keys=True)


def cut(frame: pd.DataFrame, sizes: list[int]) -> list[pd.DataFrame]:
    """Consecutive slices of the given sizes, then the rest."""
    bounds = list(itertools.accumulate([0, *sizes]))
    return [frame.iloc[a:b] for a, b in zip(bounds, [*bounds[1:], len(frame)], strict=True)]


def test_chunked_inference_equals_whole_frame(adult_frame: pd.DataFrame, spec: DatasetSpec) -> None:
    whole = as_json(infer_suite(adult_frame, spec))
    for sizes in ([1000, 7], [0, 1, 48_000], [len(adult_frame)]):
        assert as_json(infer_suite_from_chunks(cut(adult_frame, sizes), spec)) == whole


def separately_read_chunks() -> list[pd.DataFrame]:
    """Chunks as separate reads give them: each with the dtypes its own rows imply."""
    first = pd.DataFrame(
        {
            "y": [0, 1, 1, 0],
            "group": ["a", "b", "a", "b"],
            "n": [3, 1, 4, 1],  # int64: no nulls here
            "text": [None, None, None, "p"],  # nulls packed in this chunk
        }
    )
    second = pd.DataFrame(
        {
            "y": [1, 0, 1],
            "group": ["b", "b", "a"],
            "n": [5.5, np.nan, -2.0],  # float64: a null here
            "text": pd.Series([None, None, None], dtype=object),  # all null
        }
    )
    third = pd.DataFrame(
        {"y": [0, 1], "group": ["a", "c"], "n": [9, 2], "text": ["q", "p"]},
    )
    return [first, second, third]


def test_chunks_with_different_dtypes_infer_as_if_joined() -> None:
    chunks = separately_read_chunks()
    whole = infer_suite(pd.concat(chunks, ignore_index=True), toy_spec())
    for order in itertools.permutations(chunks):
        assert as_json(infer_suite_from_chunks(order, toy_spec())) == as_json(whole)
    n_type = expectations_of(whole, "expect_column_values_to_be_in_type_list", "n")
    assert n_type[0]["meta"]["observed_dtype"] == "float64"
    n_range = only_kwargs(whole, "expect_column_values_to_be_between", "n")
    assert (n_range["min_value"], n_range["max_value"]) == (-2.0, 9.0)
    assert only_kwargs(whole, "expect_column_values_to_be_in_set", "text")["value_set"] == [
        "p",
        "q",
    ]
    (text_nulls,) = expectations_of(whole, "expect_column_values_to_not_be_null", "text")
    assert text_nulls["meta"]["observed_null_fraction"] == round(6 / 9, 4)


def test_all_null_chunks_do_not_decide_a_type() -> None:
    """A CSV reader gives float64 to a text column's all-empty chunk; that chunk is no evidence."""
    chunks = separately_read_chunks()
    empty_text = chunks[1].assign(text=np.nan)
    assert empty_text["text"].dtype == np.float64
    suite = infer_suite_from_chunks([chunks[0], empty_text, chunks[2]], toy_spec())
    assert as_json(suite) == as_json(infer_suite_from_chunks(chunks, toy_spec()))


def test_category_cap_counts_values_across_chunks() -> None:
    def chunk(values: range) -> pd.DataFrame:
        labels = [f"v{i:03d}" for i in values]
        return pd.DataFrame({"code": labels, "y": 1, "group": "a"})

    at_cap = [chunk(range(0, 30)), chunk(range(20, MAX_CATEGORIES))]
    suite = infer_suite_from_chunks(at_cap, toy_spec())
    kept = only_kwargs(suite, "expect_column_values_to_be_in_set", "code")["value_set"]
    assert len(kept) == MAX_CATEGORIES
    over = [chunk(range(0, 30)), chunk(range(30, MAX_CATEGORIES + 1))]
    suite = infer_suite_from_chunks(over, toy_spec())
    assert not expectations_of(suite, "expect_column_values_to_be_in_set", "code")
    assert as_json(suite) == as_json(infer_suite(pd.concat(over), toy_spec()))


@pytest.mark.parametrize("text_first", [True, False])
def test_text_and_numbers_in_one_column_name_it(text_first: bool) -> None:
    numbers = pd.DataFrame({"code": [1, 2], "y": [1, 0], "group": "a"})
    text = pd.DataFrame({"code": ["x1", "x2"], "y": [1, 0], "group": "a"})
    chunks = [text, numbers] if text_first else [numbers, text]
    with pytest.raises(ConfigError, match=r"column 'code' is (object|int64) .* (int64|object) in"):
        infer_suite_from_chunks(chunks, toy_spec())


def test_chunks_must_share_columns_and_exist(frame: pd.DataFrame, spec: DatasetSpec) -> None:
    with pytest.raises(DataError, match=r"missing \['race'\], extra \[\]"):
        infer_suite_from_chunks([frame, frame.drop(columns=["race"])], spec)
    with pytest.raises(DataError, match="no data"):
        infer_suite_from_chunks([], spec)


def test_streaming_a_parquet_folder_equals_reading_it_whole(
    frame: pd.DataFrame, spec: DatasetSpec, tmp_path: Path
) -> None:
    folder = tmp_path / "batch"
    folder.mkdir()
    with_nulls = frame.astype({"age": "Int64"})
    with_nulls.loc[1500:1510, "age"] = pd.NA  # int64 with nulls in one part only
    for index, part in enumerate(cut(with_nulls, [700, 600])):
        # No pandas metadata, as from a non-pandas writer: arrow int64 with nulls reads as float64.
        table = pa.Table.from_pandas(part, preserve_index=False).replace_schema_metadata(None)
        pq.write_table(table, folder / f"part-{index}.parquet", row_group_size=128)
    streamed = infer_suite_from_chunks(iter_chunks(folder, chunk_rows=300), spec)
    whole = infer_suite(read_table(folder), spec)
    assert as_json(streamed) == as_json(whole)
    age = expectations_of(whole, "expect_column_values_to_be_in_type_list", "age")
    assert age[0]["meta"]["observed_dtype"] == "float64"


def test_write_then_load_round_trips(suite: dict[str, Any], tmp_path: Path) -> None:
    path = write_suite(suite, tmp_path / "expectations" / "adult.json")
    assert load_suite(path) == suite
    assert not [p for p in path.parent.iterdir() if p.name != "adult.json"]


def test_missing_suite_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.json"
    with pytest.raises(ConfigError, match="nope.json"):
        load_suite(path)


def test_malformed_json_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"name": "adult", "expectations": [', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"broken\.json: expectation suite is not valid JSON"):
        load_suite(path)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ([], "must be a JSON object"),
        ({"name": "x", "expectations": [], "owner": "me"}, r"unknown key\(s\).*'owner'"),
        ({"expectations": []}, "name must be provided"),
        (
            {"name": "x", "expectations": [{"type": "expect_bogus", "kwargs": {}}]},
            r"expectation #0 \(expect_bogus\) is not valid",
        ),
        (
            {
                "name": "x",
                "expectations": [
                    {"type": "expect_column_to_exist", "kwargs": {"column": "a"}},
                    {"type": "expect_column_values_to_not_be_null", "kwargs": {"mostly": 2}},
                ],
            },
            r"expectation #1 \(expect_column_values_to_not_be_null\) is not valid",
        ),
    ],
)
def test_invalid_suite_file_names_the_file_and_the_fault(
    tmp_path: Path, payload: object, message: str
) -> None:
    path = tmp_path / "suite.json"
    path.write_text(json.dumps(payload), encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"suite\.json: .*{message}"):
        load_suite(path)


def test_write_refuses_an_invalid_suite(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    with pytest.raises(ConfigError, match="bad.json"):
        write_suite({"name": "x", "expectations": [{"type": "expect_bogus"}]}, path)
    assert not path.exists()
