"""The data-team handoff: check a candidate batch against its contract and against the champion's data.

A data team hands over a file and wants one answer: does it meet the contract, and how does it
differ from the data the current champion was trained on? Validation (Great Expectations) decides
pass or fail; the profile diff (``evenflow.assess.profile_diff``) explains what changed and, by
default, fails nothing by itself. The champion's data is restored by its DVC hash and profiled
shard by shard from a bounded sample (``evenflow.assess.profile``).
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from evenflow import layout
from evenflow.assess.handoff import ExpectationCheck, HandoffReport
from evenflow.assess.profile import DataProfile, merge_profiles, profile
from evenflow.assess.profile_diff import DataDiff, diff_profiles
from evenflow.config.settings import EvenflowSettings
from evenflow.contracts import suite as contracts
from evenflow.contracts.validation import validate_frame
from evenflow.data import versioning
from evenflow.data.datasets import read_table
from evenflow.data.sharding import ROW_ID
from evenflow.errors import DataError
from evenflow.io import file_md5, write_json_atomic, write_text_atomic
from evenflow.records import ValidationReport
from evenflow.registry import store as registry
from evenflow.reports.handoff import quoted, render_handoff

logger = logging.getLogger(__name__)

SPLIT_COLUMN_PARAM = "dataset.split_column"
"""The training run's parameter naming the split column (removed before the data was stored)."""
HANDOFF_TEXT = "handoff.txt"
"""The handoff report as the terminal shows it, beside ``layout.HANDOFF_FILE``."""

# Rows read per train shard of the champion's data: bounds memory whatever the shard size.
ROWS_PER_SHARD = 20_000
_BATCH_ROWS = 65_536


def champion_reference(
    settings: EvenflowSettings,
    model_name: str,
    workdir: Path,
    *,
    rows_per_shard: int = ROWS_PER_SHARD,
    seed: int = 0,
) -> tuple[DataProfile, str] | None:
    """Profile the train split the current champion was trained on, restored by its DVC hash.

    The data is restored from the DVC cache (or fetched from the remote) into ``workdir``, then
    profiled shard by shard from at most ``rows_per_shard`` sampled rows each, so memory stays
    bounded however large the data is.

    Returns:
        The profile and the data md5, or None when ``model_name`` has no champion.

    Raises:
        DataError: The champion's run records no data md5, or its data holds no train shards.
        VersioningError: The data is in neither the DVC cache nor the remote.
    """
    client = registry.client_for(settings)
    champion = registry.find_alias(client, model_name, layout.CHAMPION)
    if champion is None:
        logger.info("model %r has no %r alias: no reference data", model_name, layout.CHAMPION)
        return None
    run_id = str(champion.run_id)
    run = client.get_run(run_id)
    data_md5 = run.data.tags.get(layout.DATA_MD5_TAG)
    if not data_md5:
        raise DataError(
            f"the champion of {model_name!r} (run {run_id}) has no {layout.DATA_MD5_TAG} tag; "
            "its training data cannot be restored"
        )
    target = workdir / "champion-data"
    versioning.restore_directory(settings.project_root, data_md5, target)
    reference = profile_shards(sorted((target / "train").glob("*.parquet")), rows_per_shard, seed)
    dropped = _split_column(run.data.params.get(SPLIT_COLUMN_PARAM))
    logger.info(
        "profiled the champion's data %s: %d of %d train rows",
        data_md5,
        reference.n_rows,
        reference.total_rows,
    )
    return reference.model_copy(update={"dropped_columns": dropped}), data_md5


def profile_shards(
    paths: Sequence[Path],
    rows_per_shard: int = ROWS_PER_SHARD,
    seed: int = 0,
    max_categories: int = contracts.MAX_CATEGORIES,
) -> DataProfile:
    """Profile parquet shards one at a time from a seeded sample of each, then merge.

    Raises:
        DataError: ``paths`` is empty.
    """
    if not paths:
        raise DataError("no parquet shards to profile")
    rng = np.random.default_rng(seed)
    parts = []
    for path in paths:
        sample, total = _sample_shard(path, rows_per_shard, rng)
        parts.append(profile(sample, max_categories).model_copy(update={"total_rows": total}))
    return merge_profiles(parts)


def _split_column(value: str | None) -> tuple[str, ...]:
    """The logged ``dataset.split_column`` param: a name, or JSON null when the data has none."""
    return () if value in (None, "", "null") else (str(value),)


def _sample_shard(path: Path, rows: int, rng: np.random.Generator) -> tuple[pd.DataFrame, int]:
    """Up to ``rows`` random rows of a shard, read batch by batch; also the shard's row count."""
    parquet = pq.ParquetFile(path)
    columns = [name for name in parquet.schema_arrow.names if name != ROW_ID]
    total = int(parquet.metadata.num_rows)
    if total <= rows:
        return parquet.read(columns=columns).to_pandas(), total
    keep = np.sort(rng.choice(total, size=rows, replace=False))
    batches, start = [], 0
    for batch in parquet.iter_batches(batch_size=_BATCH_ROWS, columns=columns):
        low, high = np.searchsorted(keep, [start, start + batch.num_rows])
        if high > low:
            batches.append(batch.take(pa.array(keep[low:high] - start)))
        start += batch.num_rows
    return pa.Table.from_batches(batches).to_pandas(), total


def check_handoff(
    path: Path,
    suite: Mapping[str, Any],
    out_dir: Path,
    *,
    dataset: str,
    reference: DataProfile | None,
    reference_note: str | None = None,
    fail_on_schema_change: bool = False,
    shift_threshold: float = 0.5,
) -> HandoffReport:
    """Validate a candidate file against ``suite`` and diff it against ``reference``.

    The diff informs; only validation decides ``passed``, unless ``fail_on_schema_change`` makes
    missing columns and type changes failures too. Results, Data Docs and the report (JSON and
    text) go to ``out_dir``; the file itself is only read.

    Args:
        path: The candidate CSV or Parquet file.
        suite: The dataset's expectation suite (see ``contracts.load_suite``).
        out_dir: Folder for the GX result, Data Docs and the handoff report.
        dataset: Dataset name (names the GX run).
        reference: Profile of the reference data (``champion_reference``), or None.
        reference_note: What the reference is, or why there is none (shown with the diff).
        fail_on_schema_change: Fail on missing columns and type changes as well.
        shift_threshold: Mean shift, in reference std, that the diff reports.

    Raises:
        DataError: The file cannot be read, or changed while it was being checked.
    """
    md5 = file_md5(path)
    frame = read_table(path)
    report = validate_frame(frame, suite, out_dir, dataset=dataset)
    diff, note = _diff_against(frame, reference, reference_note, shift_threshold)
    schema_failures = diff.schema_changes if diff is not None and fail_on_schema_change else ()
    if file_md5(path) != md5:
        raise DataError(f"{path} changed while it was being checked; check it again")
    handoff = HandoffReport(
        path=path.resolve(),
        md5=md5,
        dataset=dataset,
        passed=report.success and not schema_failures,
        validation=report,
        checks=_checks(report, suite),
        diff=diff,
        diff_note=note,
        schema_failures=schema_failures,
        report_path=out_dir / layout.HANDOFF_FILE,
    )
    write_json_atomic(out_dir / layout.HANDOFF_FILE, handoff.model_dump(mode="json"))
    write_text_atomic(out_dir / HANDOFF_TEXT, render_handoff(handoff) + "\n")
    logger.info("handoff check of %s: %s", path, "passed" if handoff.passed else "failed")
    return handoff


def validate_candidate(
    settings: EvenflowSettings,
    path: Path,
    dataset: str,
    *,
    fail_on_schema_change: bool = False,
) -> HandoffReport:
    """Everything ``evenflow validate PATH --name NAME`` does, so the CLI only parses and prints.

    Loads ``expectations/NAME.json``, profiles the data of model NAME's champion (if any) in a
    scratch folder that is removed afterwards, and writes the results under
    ``.evenflow/handoff/NAME/<md5 prefix>/``.

    Raises:
        ConfigError: The suite is missing or invalid.
        DataError, VersioningError: The file or the champion's data cannot be read.
    """
    suite = contracts.load_suite(contracts.contract_path(settings, dataset))
    out_dir = settings.state_dir / "handoff" / dataset / file_md5(path)[:12]
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="handoff-", dir=settings.state_dir) as scratch:
        found = champion_reference(settings, dataset, Path(scratch))
    reference, note = (None, f"model '{dataset}' has no champion to compare with")
    if found is not None:
        reference, data_md5 = found
        note = f"reference: the data of the champion of '{dataset}' (DVC md5 {data_md5})"
    return check_handoff(
        path,
        suite,
        out_dir,
        dataset=dataset,
        reference=reference,
        reference_note=note,
        fail_on_schema_change=fail_on_schema_change,
    )


def _diff_against(
    frame: pd.DataFrame,
    reference: DataProfile | None,
    note: str | None,
    shift_threshold: float,
) -> tuple[DataDiff | None, str]:
    if reference is None:
        return None, note or "no reference data to compare with"
    candidate = profile(frame, reference.max_categories)
    diff = diff_profiles(reference, candidate, shift_threshold=shift_threshold)
    return diff, note or "reference: the profile given"


def _checks(report: ValidationReport, suite: Mapping[str, Any]) -> tuple[ExpectationCheck, ...]:
    """Every expectation in suite order, failures worded as ``validation`` words them."""
    results = _in_suite_order(
        json.loads(report.result_path.read_text(encoding="utf-8"))["results"], suite
    )
    failures = list(report.failures)
    checks = []
    for result in results:
        kind, column = _key(result["expectation_config"])
        observed = _observed(result)
        failure = next((f for f in failures if (f.expectation, f.column) == (kind, column)), None)
        if not result["success"] and failure is not None:
            failures.remove(failure)
            observed = failure.observed
        checks.append(
            ExpectationCheck(
                passed=bool(result["success"]), expectation=kind, column=column, observed=observed
            )
        )
    return tuple(checks)


def _key(config: Mapping[str, Any]) -> tuple[str, str | None]:
    column = config.get("kwargs", {}).get("column")
    return str(config["type"]), None if column is None else str(column)


def _in_suite_order(
    results: list[dict[str, Any]], suite: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """GX groups results by shared metrics; put them back in the order the suite lists them."""
    pending = list(results)
    ordered = []
    for expectation in suite.get("expectations", []):
        key = _key(expectation)
        match = next((r for r in pending if _key(r["expectation_config"]) == key), None)
        if match is not None:
            pending.remove(match)
            ordered.append(match)
    return ordered + pending


_PASS_WORDING = {
    "expect_column_values_to_not_be_null": "null",
    "expect_column_values_to_be_between": "out of range",
    "expect_column_values_to_be_in_set": "not in the set",
    "expect_column_values_to_be_in_type_list": "of another type",
}


def _observed(result: Mapping[str, Any]) -> str:
    """A short account of a GX result, from the result record alone."""
    details = result.get("result") or {}
    kind = result["expectation_config"]["type"]
    if "unexpected_count" in details:
        what = _PASS_WORDING.get(kind, "unexpected")
        return f"{details['unexpected_count']} of {details['element_count']} values {what}"
    value = details.get("observed_value")
    if isinstance(value, list):
        return f"{len(value)} values: {quoted([str(v) for v in value])}"
    if value is not None:
        return str(value)
    if kind == "expect_column_to_exist":
        return "column present" if result["success"] else "column missing"
    return "as expected" if result["success"] else "not met"
