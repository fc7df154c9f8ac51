"""Row checks of batch scoring against the real Adult contract, with GX itself as the oracle."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import great_expectations as gx
import numpy as np
import pandas as pd
import pytest
from great_expectations.data_context.types.base import ProgressBarsConfig

from evenflow.config.score import ScoreParams, rejects_path, summary_path
from evenflow.contracts import row_check
from evenflow.contracts.suite import build_gx_suite
from evenflow.errors import ConfigError, DataError
from evenflow.usecases import score as scoring
from evenflow.usecases.score_engine import typed_for_signature
from tests.conftest import REPO_ROOT

ADULT_SUITE = REPO_ROOT / "expectations" / "adult.json"
ROW_TYPES = (
    "expect_column_values_to_be_between",
    "expect_column_values_to_be_in_set",
    "expect_column_values_to_not_be_null",
)


@pytest.fixture(scope="module")
def suite() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(ADULT_SUITE.read_text(encoding="utf-8"))
    return loaded


@pytest.fixture
def batch(adult_frame: pd.DataFrame) -> pd.DataFrame:
    return adult_frame.sample(n=4000, random_state=3).reset_index(drop=True)


def _gx_unexpected_rows(frame: pd.DataFrame, suite: dict[str, Any]) -> dict[str, set[int]]:
    """GX's own unexpected_index_list per row-level expectation (COMPLETE result format)."""
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    batch = (
        context.data_sources.add_pandas("p")
        .add_dataframe_asset("a")
        .add_batch_definition_whole_dataframe("w")
        .get_batch(batch_parameters={"dataframe": frame})
    )
    result = batch.validate(
        build_gx_suite(suite, source="adult"), result_format={"result_format": "COMPLETE"}
    )
    rows: dict[str, set[int]] = {}
    for item in result.results:
        config = item.expectation_config
        assert config is not None
        if config.type in ROW_TYPES and "mostly" not in config.kwargs:
            key = f"{config.type}[{config.kwargs['column']}]"
            rows[key] = set(item.result.get("unexpected_index_list") or [])
    return rows


def test_row_checks_agree_with_gx_unexpected_index_list(
    batch: pd.DataFrame, suite: dict[str, Any]
) -> None:
    rng = np.random.default_rng(0)
    chosen = rng.choice(len(batch), size=30, replace=False)
    batch.loc[chosen[:10], "age"] = 420
    batch.loc[chosen[5:15], "workclass"] = "Space-force"  # overlaps: one row, two rules
    batch.loc[chosen[15:20], "education"] = None
    batch.loc[chosen[20:25], "hours-per-week"] = 0
    batch.loc[chosen[25:], "income"] = "maybe"

    check = row_check.check_rows(batch, suite, features={}, target="income")

    expected = _gx_unexpected_rows(batch, suite)
    failing = {key: rows for key, rows in expected.items() if rows}
    assert set(failing) == set(check.counts)
    for key, rows in failing.items():
        assert check.counts[key] == len(rows), key
    assert set(np.flatnonzero(check.rejected)) == set().union(*failing.values())
    assert check.rejected.sum() == 30  # every chosen row, once
    reasons = dict(zip(np.flatnonzero(check.rejected), check.reasons, strict=True))
    both = reasons[chosen[7]]
    assert "expect_column_values_to_be_between[age]: 420 not in [17.0, 90.0]" in both
    assert "expect_column_values_to_be_in_set[workclass]: 'Space-force' not in the set" in both


def test_a_clean_batch_without_label_loses_no_row_and_lists_what_it_skipped(
    batch: pd.DataFrame, suite: dict[str, Any]
) -> None:
    unlabelled = batch.drop(columns=["income", "split"]).assign(customer_id=range(len(batch)))

    check = row_check.check_rows(unlabelled, suite, features={}, target="income")

    assert not check.rejected.any()
    assert check.counts == {}
    skipped = "\n".join(check.skipped)
    assert "expect_column_values_to_be_in_set on 'income': the label is absent" in skipped
    assert "expect_column_to_exist on 'split': column absent" in skipped
    assert "expect_table_columns_to_match_set" in skipped


def test_cells_are_judged_one_by_one_and_mostly_is_a_batch_warning(
    batch: pd.DataFrame, suite: dict[str, Any]
) -> None:
    raw = batch.astype({"age": object})
    raw.loc[0, "age"] = "37"  # a number written as text: fine
    raw.loc[1, "age"] = "unknown"
    raw.loc[:999, "workclass"] = None  # 25% null where the contract tolerates 6.8%
    raw.loc[2, "income"] = None  # a row may have no label

    check = row_check.check_rows(
        raw, suite, features={"age": "long", "hours-per-week": "long"}, target="income"
    )

    assert list(np.flatnonzero(check.rejected)) == [1]
    assert check.counts == {"expect_column_values_to_be_in_type_list[age]": 1}
    assert check.reasons.iloc[0] == (
        "expect_column_values_to_be_in_type_list[age]: 'unknown' is not a number"
    )
    (warning,) = check.warnings
    assert "workclass" in warning and "mostly=0.932" in warning


def test_whole_number_inputs_of_the_model_are_checked_after_the_contract(
    batch: pd.DataFrame, suite: dict[str, Any]
) -> None:
    batch["hours-per-week"] = batch["hours-per-week"].astype(float)
    batch.loc[4, "hours-per-week"] = 40.5
    batch.loc[5, "hours-per-week"] = None

    check = row_check.check_rows(batch, suite, features={"hours-per-week": "long"}, target="income")

    assert list(np.flatnonzero(check.rejected)) == [4, 5]
    assert check.counts == {
        "expect_column_values_to_not_be_null[hours-per-week]": 1,
        "model_signature_whole_number[hours-per-week]": 1,
    }
    typed = typed_for_signature(batch.loc[~check.rejected], {"hours-per-week": "long"})
    assert typed["hours-per-week"].dtype == np.int64


def test_a_column_of_the_wrong_kind_stops_the_batch(
    batch: pd.DataFrame, suite: dict[str, Any]
) -> None:
    batch["sex"] = np.where(batch["sex"] == "Male", 1, 0)

    with pytest.raises(DataError, match=r"column 'sex' holds no text \(dtype int64"):
        row_check.check_rows(batch, suite, features={}, target="income")


def _in_chunks(
    frame: pd.DataFrame, suite: dict[str, Any], size: int, features: dict[str, str]
) -> tuple[np.ndarray, list[str], row_check.BatchCheck]:
    checker = row_check.RowChecker(list(frame.columns), suite, features=features, target="income")
    parts = [
        checker.check(frame.iloc[start : start + size]) for start in range(0, len(frame), size)
    ]
    reasons = [reason for part in parts for reason in part.reasons]
    return np.concatenate([part.rejected for part in parts]), reasons, checker.finish()


def test_row_checks_in_chunks_agree_with_the_whole_batch(
    batch: pd.DataFrame, suite: dict[str, Any]
) -> None:
    raw = batch.astype({"age": object})
    raw.loc[:999, "age"] = "unknown"  # no number in the first chunk, numbers in the others
    raw.loc[[1000, 2500, 3999], "age"] = 420
    raw.loc[1200:2200, "workclass"] = None  # 25% null over the batch: a mostly warning
    raw.loc[:1999, "income"] = None  # the label only in the second half
    raw.loc[3000, "income"] = "maybe"
    features = {"age": "long", "hours-per-week": "long"}

    whole = row_check.check_rows(raw, suite, features=features, target="income")
    rejected, reasons, together = _in_chunks(raw, suite, 997, features)

    assert (rejected == whole.rejected).all()
    assert reasons == list(whole.reasons)
    assert (together.counts, together.skipped, together.warnings) == (
        whole.counts,
        whole.skipped,
        whole.warnings,
    )
    assert whole.counts["expect_column_values_to_be_in_type_list[age]"] == 1000
    assert whole.counts["expect_column_values_to_be_in_set[income]"] == 1
    assert not any("label column is empty" in line for line in whole.skipped)
    (warning,) = whole.warnings
    assert "workclass" in warning


def test_a_column_of_the_wrong_kind_is_judged_on_the_whole_batch(
    batch: pd.DataFrame, suite: dict[str, Any]
) -> None:
    batch["sex"] = np.where(batch["sex"] == "Male", 1, 0)
    with pytest.raises(DataError) as whole:
        row_check.check_rows(batch, suite, features={}, target="income")

    with pytest.raises(DataError) as chunked:
        _in_chunks(batch, suite, 997, {})

    assert str(chunked.value) == str(whole.value)
    assert "column 'sex' holds no text (dtype int64" in str(whole.value)


def test_score_params_defaults_and_refusals(tmp_path: Path) -> None:
    data = tmp_path / "loans-2024.csv.gz"

    params = ScoreParams.from_mapping({"data": str(data), "out": "p/scores.parquet"})

    assert params.name == "loans-2024"
    assert params.model_uri == "models:/loans-2024@champion"
    with_alias = params.model_copy(update={"model": "credit@candidate"})
    assert (with_alias.model_name, with_alias.alias) == ("credit", "candidate")
    moved = ScoreParams.from_mapping({"data": str(tmp_path / "x.csv"), "out": "q.csv"})
    assert (
        moved.params_hash()
        == ScoreParams(data=Path("elsewhere/x.csv"), out=Path("other.csv")).params_hash()
    )
    assert rejects_path(Path("p/scores.csv.gz")) == Path("p/scores.rejects.csv.gz")
    assert summary_path(Path("p/scores.parquet")) == Path("p/scores.parquet.json")
    with pytest.raises(ConfigError, match="the input is never overwritten"):
        ScoreParams.from_mapping({"data": str(data), "out": str(data)})
    with pytest.raises(ConfigError, match=r"\.parquet, \.pq, \.csv or \.csv\.gz"):
        ScoreParams.from_mapping({"data": str(data), "out": "scores.xlsx"})
    with pytest.raises(ConfigError, match="'model'"):
        ScoreParams.from_mapping({"data": str(data), "out": "s.csv", "model": "a@b@c"})
    with pytest.raises(ConfigError, match="'chunk_rows'"):
        ScoreParams.from_mapping({"data": str(data), "out": "s.csv", "chunk_rows": 10})
    assert params.chunk_rows == 1_000_000
    assert (
        with_alias.params_hash()
        == with_alias.model_copy(update={"chunk_rows": 5_000}).params_hash()
    )


def test_missing_input_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"nothing\.csv: data file not found"):
        scoring.input_md5(tmp_path / "nothing.csv")
