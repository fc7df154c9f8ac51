"""The data-team handoff: profiles, diffs, contract checks (real GX) and the champion's data (real DVC)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from evenflow import layout
from evenflow.assess.handoff import HandoffReport
from evenflow.assess.profile import DataProfile, merge_profiles, profile
from evenflow.assess.profile_diff import DataDiff, DiffItem, diff_profiles
from evenflow.config.run import ShardParams, SplitParams, builtin_example
from evenflow.config.settings import EvenflowSettings
from evenflow.contracts.suite import infer_suite, write_suite
from evenflow.data import versioning
from evenflow.data.sharding import ROW_ID, assign_splits, write_shards
from evenflow.layout import DATA_MD5_TAG, HANDOFF_FILE
from evenflow.registry import store as registry
from evenflow.reports.handoff import render_diff, render_handoff
from evenflow.usecases.handoff import (
    SPLIT_COLUMN_PARAM,
    champion_reference,
    check_handoff,
    validate_candidate,
)


@pytest.fixture(scope="module")
def reference(adult_rows: pd.DataFrame) -> DataProfile:
    return profile(adult_rows)


def only(diff: DataDiff, column: str, change: str) -> DiffItem:
    (item,) = [i for i in diff.for_column(column) if i.change == change]
    return item


# ------------------------------------------------------------------------------ profile and diff


def test_identical_data_gives_an_empty_diff(
    adult_rows: pd.DataFrame, reference: DataProfile
) -> None:
    diff = diff_profiles(reference, profile(adult_rows.copy()))

    assert diff.is_empty
    assert "no schema or statistics changes" in render_diff(diff)


def test_profile_describes_each_column(reference: DataProfile) -> None:
    age = reference.column("age")
    workclass = reference.column("workclass")
    assert age is not None and age.numeric is not None and age.kind == "numeric"
    assert age.numeric.min <= age.numeric.quantiles["p05"] <= age.numeric.quantiles["p50"]
    assert age.numeric.quantiles["p95"] <= age.numeric.max
    assert workclass is not None and workclass.kind == "text"
    assert workclass.categories is not None and "Private" in workclass.categories
    assert workclass.null_fraction > 0  # Adult's '?' is read as missing


def test_renamed_column_is_one_missing_and_one_new(
    adult_rows: pd.DataFrame, reference: DataProfile
) -> None:
    diff = diff_profiles(reference, profile(adult_rows.rename(columns={"fnlwgt": "weight"})))

    missing = only(diff, "fnlwgt", "missing_column")
    new = only(diff, "weight", "new_column")
    assert (missing.reference, missing.candidate) == ("numeric (int64)", None)
    assert (new.reference, new.candidate) == (None, "numeric (int64)")
    assert len(diff.items) == 2
    assert diff.schema_changes == (missing,)


def test_numeric_column_as_strings_is_a_type_change(
    adult_rows: pd.DataFrame, reference: DataProfile
) -> None:
    diff = diff_profiles(reference, profile(adult_rows.assign(age=adult_rows["age"].astype(str))))

    item = only(diff, "age", "type_changed")
    assert (item.reference, item.candidate) == ("numeric (int64)", "text (object)")
    assert diff.for_column("age") == (item,)  # no statistics compared across types
    assert "column 'age': type changed (reference numeric (int64)" in render_diff(diff)


def test_shifted_range_names_bounds_and_mean_shift(
    adult_rows: pd.DataFrame, reference: DataProfile
) -> None:
    diff = diff_profiles(reference, profile(adult_rows.assign(age=adult_rows["age"] + 30)))

    above = only(diff, "age", "max_above_range")
    shift = only(diff, "age", "mean_shift")
    assert (above.reference, above.candidate) == (
        adult_rows["age"].max(),
        adult_rows["age"].max() + 30,
    )
    assert shift.candidate == pytest.approx(float(shift.reference) + 30)  # type: ignore[arg-type]
    assert "reference std" in shift.note
    assert "min_below_range" not in {i.change for i in diff.for_column("age")}  # 47 is in range
    text = render_diff(diff)
    assert "column 'age': maximum above the reference range (reference 90, candidate 120)" in text


def test_small_shift_within_threshold_is_not_reported(
    adult_rows: pd.DataFrame, reference: DataProfile
) -> None:
    nudged = adult_rows.assign(
        **{"hours-per-week": adult_rows["hours-per-week"].clip(upper=80) + 0.5}
    )

    diff = diff_profiles(reference, profile(nudged), shift_threshold=0.5)

    assert [item.change for item in diff.for_column("hours-per-week")] == []


def test_new_and_removed_categories_are_named(
    adult_rows: pd.DataFrame, reference: DataProfile
) -> None:
    candidate = adult_rows.assign(workclass=adult_rows["workclass"].replace("Private", "Robot"))

    diff = diff_profiles(reference, profile(candidate))

    added = only(diff, "workclass", "categories_added")
    removed = only(diff, "workclass", "categories_removed")
    assert added.values == ("Robot",) and removed.values == ("Private",)
    n_categories = adult_rows["workclass"].nunique()
    assert (added.reference, added.candidate) == (n_categories, n_categories)
    assert "categories added: 'Robot'" in render_diff(diff)


def test_null_fraction_change_is_detected(adult_rows: pd.DataFrame, reference: DataProfile) -> None:
    candidate = adult_rows.copy()
    candidate.loc[: len(adult_rows) // 10 - 1, "education"] = None

    diff = diff_profiles(reference, profile(candidate))

    item = only(diff, "education", "null_fraction")
    assert (item.reference, item.candidate) == (0.0, 0.1)


def test_profile_holds_aggregates_not_rows(adult_rows: pd.DataFrame) -> None:
    people = adult_rows.assign(name=[f"person-{i:05d}" for i in range(len(adult_rows))])

    small, large = profile(people.head(200)), profile(people)

    text = large.model_dump_json()
    assert "person-" not in text
    name = large.column("name")
    assert name is not None and name.categories is None and name.n_distinct == len(adult_rows)
    # Bounded: ten times the rows adds only a few more category values, not rows.
    assert len(text) < 1.5 * len(small.model_dump_json())


def test_merged_shard_profiles_match_the_whole(
    adult_rows: pd.DataFrame, reference: DataProfile
) -> None:
    merged = merge_profiles(
        [profile(part) for part in (adult_rows.iloc[:600], adult_rows.iloc[600:])]
    )

    assert merged.n_rows == reference.n_rows
    for whole in reference.columns:
        part = merged.column(whole.name)
        assert part is not None
        assert (part.n_null, part.categories) == (whole.n_null, whole.categories)
        if whole.numeric is not None:
            assert part.numeric is not None
            assert (part.numeric.min, part.numeric.max) == (whole.numeric.min, whole.numeric.max)
            assert part.numeric.mean == pytest.approx(whole.numeric.mean)
            assert part.numeric.std == pytest.approx(whole.numeric.std)
            assert_rank_error(adult_rows[whole.name], part.numeric.quantiles, 0.02)
    assert diff_profiles(reference, merged).is_empty


def assert_rank_error(values: pd.Series, quantiles: dict[str, float], tolerance: float) -> None:
    """Merged quantiles are approximate: each must sit within ``tolerance`` of its rank."""
    for key, value in quantiles.items():
        prob = int(key[1:]) / 100
        assert (values <= value).mean() >= prob - tolerance, (values.name, key, value)
        assert (values < value).mean() <= prob + tolerance, (values.name, key, value)


# ---------------------------------------------------------------------- check_handoff (real GX)


@pytest.fixture(scope="module")
def suite(adult_rows: pd.DataFrame) -> dict[str, Any]:
    return infer_suite(adult_rows, builtin_example().dataset)


def write_csv(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def failing(
    adult_rows: pd.DataFrame,
    suite: dict[str, Any],
    reference: DataProfile,
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[HandoffReport, Path, bytes]:
    broken = adult_rows.assign(
        age=adult_rows["age"] + 30, workclass=adult_rows["workclass"].replace("Private", "Robot")
    )
    folder = tmp_path_factory.mktemp("failing")
    path = write_csv(broken, folder / "batch.csv")
    before = path.read_bytes()
    report = check_handoff(path, suite, folder / "out", dataset="adult", reference=reference)
    return report, path, before


def test_failing_batch_lists_fail_lines_and_leaves_the_file(
    failing: tuple[HandoffReport, Path, bytes], suite: dict[str, Any]
) -> None:
    report, path, before = failing

    assert not report.passed and not report.validation.success
    assert path.read_bytes() == before
    assert len(report.checks) == len(suite["expectations"])
    failed = {(c.expectation, c.column) for c in report.checks if not c.passed}
    assert failed == {
        ("expect_column_values_to_be_between", "age"),
        ("expect_column_values_to_be_in_set", "workclass"),
    }
    text = render_handoff(report)
    lines = text.splitlines()
    assert any(
        line.startswith("FAIL  expect_column_values_to_be_between [age]: ")
        and "out of range" in line
        for line in lines
    )
    assert any(
        line.startswith("FAIL  expect_column_values_to_be_in_set [workclass]") for line in lines
    )
    assert f"Data Docs: {report.validation.docs_path}" in text
    assert report.validation.docs_path is not None and report.validation.docs_path.is_file()
    assert "categories added: 'Robot'" in text and "maximum above the reference range" in text
    assert lines[-1] == f"FAILED: 2 of {len(report.checks)} expectations failed"
    assert report.report_path is not None
    assert HandoffReport.model_validate_json(report.report_path.read_text()) == report


def test_passing_batch_is_all_pass(
    adult_rows: pd.DataFrame, suite: dict[str, Any], tmp_path: Path
) -> None:
    path = write_csv(adult_rows, tmp_path / "batch.csv")
    # The reference lacks nothing the batch has, but has one column the batch lacks.
    reference = profile(adult_rows.assign(extra=1.0))

    report = check_handoff(
        path,
        suite,
        tmp_path / "out",
        dataset="adult",
        reference=reference,
        fail_on_schema_change=True,
    )

    assert report.validation.success
    assert all(check.passed for check in report.checks)
    check_lines = render_handoff(report).splitlines()[1 : 1 + len(report.checks)]
    assert all(line.startswith("PASS  ") for line in check_lines)
    # The diff alone fails the batch only because fail_on_schema_change asks it to.
    assert [item.column for item in report.schema_failures] == ["extra"]
    assert not report.passed
    assert (tmp_path / "out" / HANDOFF_FILE).is_file()


def test_no_reference_gives_no_diff_with_a_reason(
    failing: tuple[HandoffReport, Path, bytes], suite: dict[str, Any], tmp_path: Path
) -> None:
    _, path, _ = failing
    report = check_handoff(
        path,
        suite,
        tmp_path,
        dataset="adult",
        reference=None,
        reference_note="model 'adult' has no champion",
    )

    assert report.diff is None
    assert "Data diff: none.\n  (model 'adult' has no champion)" in render_handoff(report)


# ------------------------------------------------------------ champion's data (real DVC, MLflow)


@pytest.fixture(scope="module")
def champion_project(
    adult_rows: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory
) -> tuple[EvenflowSettings, str]:
    """A project whose 'adult' champion was trained on ``adult_rows``'s shards, data folder deleted."""
    root = tmp_path_factory.mktemp("project")
    settings = EvenflowSettings(project_root=root, dvc_remote=str(root.parent / "dvc-remote"))
    spec = builtin_example().dataset
    versioning.ensure_repo(root, settings.dvc_remote)
    shard_dir = settings.data_root / "adult" / "batch" / "shards"
    write_shards(adult_rows, spec, SplitParams(), ShardParams(n_shards=3), shard_dir)
    data_md5 = versioning.version_directory(root, settings.data_root, shard_dir)

    client = registry.client_for(settings)
    experiment = client.create_experiment("adult", artifact_location=(root / "art").as_uri())
    run_id = client.create_run(experiment, tags={DATA_MD5_TAG: data_md5}).info.run_id
    client.log_param(run_id, SPLIT_COLUMN_PARAM, "split")
    client.create_registered_model("adult")
    version = client.create_model_version("adult", source=f"runs:/{run_id}/model", run_id=run_id)
    client.set_registered_model_alias("adult", layout.CHAMPION, version.version)
    client.create_registered_model("unreviewed")
    client.create_model_version("unreviewed", source=f"runs:/{run_id}/model", run_id=run_id)

    shutil.rmtree(settings.data_root / "adult")
    return settings, data_md5


def test_champion_reference_rebuilds_the_train_profile_from_dvc(
    champion_project: tuple[EvenflowSettings, str], adult_rows: pd.DataFrame, tmp_path: Path
) -> None:
    settings, data_md5 = champion_project
    train = adult_rows[
        assign_splits(adult_rows, builtin_example().dataset, SplitParams()) == "train"
    ].drop(columns=["split"])

    found = champion_reference(settings, "adult", tmp_path / "from-cache", rows_per_shard=10_000)

    assert found is not None
    ref, md5 = found
    assert md5 == data_md5
    assert (ref.n_rows, ref.total_rows) == (len(train), len(train))
    assert ref.column_names == tuple(train.columns)  # no _row_id, no split
    assert ROW_ID not in ref.column_names and ref.dropped_columns == ("split",)
    assert diff_profiles(profile(train), ref).is_empty
    # The raw batch still carries the split column: that is not a new column.
    assert diff_profiles(ref, profile(adult_rows)).for_column("split") == ()


def test_champion_reference_fetches_from_the_remote_and_samples(
    champion_project: tuple[EvenflowSettings, str], tmp_path: Path
) -> None:
    settings, data_md5 = champion_project
    shutil.rmtree(settings.project_root / ".dvc" / "cache")

    found = champion_reference(settings, "adult", tmp_path, rows_per_shard=100)

    assert found is not None
    ref, md5 = found
    assert md5 == data_md5
    assert ref.n_rows == 300 and ref.total_rows > ref.n_rows  # 3 shards, 100 rows each


def test_no_champion_gives_none(
    champion_project: tuple[EvenflowSettings, str], tmp_path: Path
) -> None:
    settings, _ = champion_project

    assert champion_reference(settings, "unreviewed", tmp_path) is None
    assert champion_reference(settings, "never-registered", tmp_path) is None


def test_validate_candidate_checks_a_file_against_the_champion(
    champion_project: tuple[EvenflowSettings, str],
    adult_rows: pd.DataFrame,
    suite: dict[str, Any],
    tmp_path: Path,
) -> None:
    settings, data_md5 = champion_project
    write_suite(suite, settings.expectations_dir / "adult.json")
    path = write_csv(adult_rows.assign(age=adult_rows["age"] + 30), tmp_path / "batch.csv")

    report = validate_candidate(settings, path, "adult")

    assert not report.passed
    assert report.diff is not None and data_md5 in report.diff_note
    assert {item.change for item in report.diff.for_column("age")} >= {"max_above_range"}
    assert report.diff.for_column("split") == ()  # the split column is not news
    assert report.report_path is not None
    assert report.report_path.is_relative_to(settings.state_dir / "handoff" / "adult")
    assert [p.name for p in settings.state_dir.iterdir()] == ["handoff"]  # scratch removed
