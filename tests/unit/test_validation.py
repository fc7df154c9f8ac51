"""Validating frames with real Great Expectations 1.24: reports, result files and Data Docs."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from evenflow import layout
from evenflow.config.run import builtin_example
from evenflow.contracts.gx_runtime import gx_ready
from evenflow.contracts.suite import infer_suite
from evenflow.contracts.validation import (
    DOCS_DIR,
    failure_summary,
    validate_frame,
    validate_parquet,
    worker_count,
)
from evenflow.errors import ConfigError, ValidationFailed
from evenflow.records import ExpectationFailure, ValidationReport


@pytest.fixture(scope="module")
def suite(adult_rows: pd.DataFrame) -> dict[str, Any]:
    return infer_suite(adult_rows, builtin_example().dataset)


@pytest.fixture(scope="module")
def clean(
    adult_rows: pd.DataFrame, suite: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> ValidationReport:
    return validate_frame(adult_rows, suite, tmp_path_factory.mktemp("clean"), dataset="adult")


@pytest.fixture(scope="module")
def broken_frame(adult_rows: pd.DataFrame) -> pd.DataFrame:
    """One short batch with independent faults, each in its own column."""
    broken = adult_rows.head(150).drop(columns=["race"])
    broken["extra"] = 1
    broken["age"] = broken["age"].astype(str)
    broken.loc[3:5, "education"] = None
    broken.loc[0, "hours-per-week"] = 500
    broken["income"] = broken["income"].replace(">50K", "<=50K")
    broken.loc[1, "income"] = "maybe"
    return broken


@pytest.fixture(scope="module")
def broken(
    broken_frame: pd.DataFrame,
    suite: dict[str, Any],
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[ValidationReport, pd.DataFrame]:
    """The broken batch's report, and a copy of the batch taken before validation."""
    before = broken_frame.copy()
    report = validate_frame(broken_frame, suite, tmp_path_factory.mktemp("broken"), dataset="adult")
    return report, before


def failure(report: ValidationReport, kind: str, column: str | None) -> ExpectationFailure:
    found = [f for f in report.failures if f.expectation == kind and f.column == column]
    assert found, f"no {kind} failure on {column}: {[f.describe() for f in report.failures]}"
    return found[0]


def test_inferred_suite_passes_its_own_frame(
    clean: ValidationReport, suite: dict[str, Any]
) -> None:
    assert clean.success, failure_summary(clean)
    assert clean.failures == ()
    assert clean.suite_name == "adult"
    assert clean.n_expectations == len(suite["expectations"])
    assert clean.n_rows == 2000


def test_result_json_and_data_docs_are_written(clean: ValidationReport) -> None:
    assert clean.result_path.name == layout.VALIDATION_RESULT_FILE
    result = json.loads(clean.result_path.read_text(encoding="utf-8"))
    assert result["success"] is True
    assert len(result["results"]) == clean.n_expectations
    out_dir = clean.result_path.parent
    assert clean.docs_path is not None
    assert clean.docs_path.is_relative_to(out_dir / DOCS_DIR)
    assert clean.docs_path.suffix == ".html"
    assert "adult" in clean.docs_path.read_text(encoding="utf-8")
    assert (out_dir / DOCS_DIR / "index.html").is_file()
    assert not [p for p in out_dir.iterdir() if p.name.startswith(".")]  # no temp leftovers


def test_compatible_dtypes_pass_quietly(
    adult_rows: pd.DataFrame,
    suite: dict[str, Any],
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    retyped = adult_rows.astype({"age": "Int64", "hours-per-week": "float64", "sex": "string"})
    with caplog.at_level(logging.INFO):
        report = validate_frame(retyped, suite, tmp_path, dataset="adult")
    assert report.success, failure_summary(report)
    assert capfd.readouterr() == ("", "")  # no progress bars, no prints
    assert not [r for r in caplog.records if r.name.startswith("great_expectations")]


# Each fault of the broken batch: (expectation, column or None for the table, what its failure
# says it observed, and whether that is the whole text or only its start).
BROKEN_BATCH_FAULTS = [
    ("expect_column_to_exist", "race", "column missing", True),
    ("expect_table_columns_to_match_set", None, "missing ['race']; unexpected ['extra']", True),
    (
        "expect_column_values_to_be_in_type_list",
        "age",
        "dtype object; 150 of 150 values of another type",
        False,
    ),
    (
        "expect_column_values_to_be_between",
        "hours-per-week",
        "1 of 150 values out of range, e.g. 500",
        False,
    ),
    (
        "expect_column_values_to_be_in_set",
        "income",
        "1 of 150 values not in the set, e.g. 'maybe'",
        True,
    ),
    (
        "expect_column_distinct_values_to_contain_set",
        "income",
        "['>50K'] absent; values seen: '<=50K', 'maybe'",
        True,
    ),
    ("expect_column_values_to_not_be_null", "education", "3 of 150 values null (2.00%)", True),
    ("expect_table_row_count_to_be_between", None, "150 rows", True),
]


@pytest.mark.parametrize(("kind", "column", "observed", "whole"), BROKEN_BATCH_FAULTS)
def test_each_fault_is_named_with_what_was_observed(
    broken: tuple[ValidationReport, pd.DataFrame],
    kind: str,
    column: str | None,
    observed: str,
    whole: bool,
) -> None:
    report, _ = broken
    assert not report.success
    (found,) = [f for f in report.failures if f.expectation == kind and f.column == column]
    if whole:
        assert found.observed == observed
    else:
        assert found.observed.startswith(observed)


def test_out_of_range_and_short_batch_failures_name_their_limits(
    broken: tuple[ValidationReport, pd.DataFrame],
) -> None:
    report, _ = broken
    out = failure(report, "expect_column_values_to_be_between", "hours-per-week")
    assert "max 500" in out.observed
    rows = failure(report, "expect_table_row_count_to_be_between", None)
    assert rows.kwargs == {"min_value": 200}


def test_input_frame_is_not_modified(
    broken: tuple[ValidationReport, pd.DataFrame], broken_frame: pd.DataFrame
) -> None:
    _, before = broken
    pd.testing.assert_frame_equal(broken_frame, before)


def test_failure_summary_reads_as_one_error(broken: tuple[ValidationReport, pd.DataFrame]) -> None:
    report, _ = broken
    summary, lines = failure_summary(report)
    assert summary == (
        f"validation failed for 'adult': {len(report.failures)} of {report.n_expectations} "
        "expectations failed (data: 150 rows)"
    )
    assert lines == [f.describe() for f in report.failures]
    assert "expect_column_to_exist on column 'race': observed column missing" in lines
    assert str(ValidationFailed(summary, lines)).splitlines()[0] == summary


def test_failures_follow_suite_order(
    broken: tuple[ValidationReport, pd.DataFrame], suite: dict[str, Any]
) -> None:
    report, _ = broken
    position = {
        (e["type"], e["kwargs"].get("column")): i for i, e in enumerate(suite["expectations"])
    }
    order = [position[(f.expectation, f.column)] for f in report.failures]
    assert order == sorted(order)


def test_invalid_suite_is_a_config_error(adult_rows: pd.DataFrame, tmp_path: Path) -> None:
    suite = {"name": "adult", "expectations": [{"type": "expect_bogus", "kwargs": {}}]}
    with pytest.raises(ConfigError, match=r"suite 'adult': expectation #0 \(expect_bogus\)"):
        validate_frame(adult_rows, suite, tmp_path, dataset="adult")
    assert not any(tmp_path.iterdir())


def _parts(frame: pd.DataFrame, folder: Path, rows: int) -> Path:
    folder.mkdir(parents=True)
    for index, start in enumerate(range(0, len(frame), rows)):
        frame.iloc[start : start + rows].to_parquet(
            folder / f"part-{index:03d}.parquet", index=False
        )
    return folder


def test_streamed_validation_of_a_clean_batch_matches_the_frame(
    adult_rows: pd.DataFrame, suite: dict[str, Any], clean: ValidationReport, tmp_path: Path
) -> None:
    folder = _parts(adult_rows, tmp_path / "parts", 300)
    report = validate_parquet(folder, suite, tmp_path / "out", dataset="adult", chunk_rows=700)
    assert report.success, failure_summary(report)
    assert (report.n_rows, report.n_expectations) == (clean.n_rows, clean.n_expectations)
    result = json.loads(report.result_path.read_text(encoding="utf-8"))
    assert result["statistics"]["evaluated_expectations"] == len(suite["expectations"])
    assert report.docs_path is not None and report.docs_path.is_file()
    assert (tmp_path / "out" / DOCS_DIR / "index.html").is_file()


@pytest.fixture(scope="module")
def broken_parts(broken_frame: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The broken batch as 40-row parquet parts, so that 50-row chunks straddle them."""
    return _parts(broken_frame, tmp_path_factory.mktemp("broken") / "parts", 40)


@pytest.fixture(scope="module")
def broken_streamed(
    broken_parts: Path, suite: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> ValidationReport:
    """The broken parts validated in one process, 50 rows at a time."""
    out = tmp_path_factory.mktemp("streamed")
    return validate_parquet(broken_parts, suite, out, dataset="adult", chunk_rows=50)


def test_streamed_validation_says_what_the_frame_says(
    broken: tuple[ValidationReport, pd.DataFrame], broken_streamed: ValidationReport
) -> None:
    report, broken_frame = broken
    assert failure_summary(broken_streamed)[0] == failure_summary(report)[0]
    assert [(f.expectation, f.column, f.kwargs) for f in broken_streamed.failures] == [
        (f.expectation, f.column, f.kwargs) for f in report.failures
    ]
    # Word for word, but for which equally frequent values are quoted as examples.
    assert [_without_examples(f) for f in broken_streamed.failures] == [
        _without_examples(f) for f in report.failures
    ]
    typed = failure(broken_streamed, "expect_column_values_to_be_in_type_list", "age")
    examples = typed.observed.split("e.g. ")[1].removesuffix(", ...").split(", ")
    assert {e.strip("'") for e in examples} <= set(broken_frame["age"])


def _without_examples(failure: ExpectationFailure) -> str:
    return failure.describe().split(", e.g. ")[0]


def test_mostly_and_aggregates_combine_over_chunks_exactly(
    adult_rows: pd.DataFrame, tmp_path: Path
) -> None:
    """Nulls all in one chunk: that chunk alone fails ``mostly``, the batch passes (and v.v.)."""
    data = adult_rows[["age", "education"]].copy()
    data.loc[:199, "education"] = None  # 10% of 2,000 rows, all in the first chunk
    suite = {
        "name": "adult",
        "expectations": [
            {
                "type": "expect_column_values_to_not_be_null",
                "kwargs": {"column": "education", "mostly": 0.85},
            },
            {
                "type": "expect_column_values_to_not_be_null",
                "kwargs": {"column": "education", "mostly": 0.95},
            },
            {
                "type": "expect_column_mean_to_be_between",
                "kwargs": {"column": "age", "max_value": 30},
            },
            {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 2000}},
        ],
    }
    folder = _parts(data, tmp_path / "parts", 250)
    streamed = validate_parquet(folder, suite, tmp_path / "s", dataset="adult", chunk_rows=250)
    whole = validate_frame(data, suite, tmp_path / "w", dataset="adult")
    assert [f.describe() for f in streamed.failures] == [f.describe() for f in whole.failures]
    assert [(f.expectation, f.kwargs.get("mostly")) for f in streamed.failures] == [
        ("expect_column_values_to_not_be_null", 0.95),
        ("expect_column_mean_to_be_between", None),
    ]
    assert "200 of 2000 values null (10.00%)" in streamed.failures[0].observed


def test_narrow_numbers_are_widened_only_for_gx(adult_rows: pd.DataFrame) -> None:
    narrow = adult_rows.astype({"age": "int16", "fnlwgt": "float32"})
    ready = gx_ready(narrow)
    assert (ready["age"].dtype, ready["fnlwgt"].dtype) == ("int64", "float64")
    assert (narrow["age"].dtype, narrow["fnlwgt"].dtype) == ("int16", "float32")
    pd.testing.assert_frame_equal(gx_ready(adult_rows), adult_rows)


def test_parallel_validation_says_what_one_process_says(
    broken_parts: Path,
    broken_streamed: ValidationReport,
    suite: dict[str, Any],
    tmp_path: Path,
) -> None:
    """Two processes, each folding a contiguous range of chunks, give the one-process report."""
    one = broken_streamed
    two = validate_parquet(broken_parts, suite, tmp_path, dataset="adult", chunk_rows=50, workers=2)
    assert not one.success
    assert [f.describe() for f in two.failures] == [f.describe() for f in one.failures]
    assert (two.n_rows, two.n_expectations) == (one.n_rows, one.n_expectations)


def test_auto_workers_follow_the_cpus_this_process_may_use() -> None:
    assert worker_count("auto") == len(os.sched_getaffinity(0))
    assert worker_count(3) == 3


def test_gx_sees_one_block_per_dtype(adult_rows: pd.DataFrame) -> None:
    """A adult_rows assembled column by column reaches GX consolidated (GX copies it per expectation)."""
    scattered = pd.DataFrame({column: adult_rows[column] for column in adult_rows.columns})
    scattered["extra"] = 1.0  # a late column is a block of its own
    ready = gx_ready(scattered)
    assert ready._mgr.nblocks == ready.dtypes.nunique()
    pd.testing.assert_frame_equal(ready, scattered)
