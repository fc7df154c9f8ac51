"""What a data-team handoff check found: the records ``evenflow validate`` returns and renders.

The use case (``evenflow.usecases.handoff``) builds them; ``evenflow.reports.handoff`` words them.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from evenflow.assess.profile_diff import DataDiff, DiffItem
from evenflow.records import Record, ValidationReport


class ExpectationCheck(Record):
    """One expectation's outcome on the candidate batch."""

    passed: bool
    expectation: str = Field(description="GX expectation type.")
    column: str | None
    observed: str


class HandoffReport(Record):
    """The answer to a data team: contract checks, Data Docs, and what changed in the data."""

    path: Path = Field(description="The candidate file; read, never modified.")
    md5: str = Field(description="md5 of the candidate file's bytes.")
    dataset: str
    passed: bool = Field(description="Validation passed (and no schema change, if that fails).")
    validation: ValidationReport
    checks: tuple[ExpectationCheck, ...]
    diff: DataDiff | None
    diff_note: str = Field(description="What the diff compares with, or why there is none.")
    schema_failures: tuple[DiffItem, ...] = Field(
        default=(), description="Schema changes counted as failures (fail_on_schema_change)."
    )
    report_path: Path | None = Field(default=None, description="This report as JSON.")
