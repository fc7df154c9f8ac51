"""Review stages: show the evidence to the reviewer, then apply the decision they typed in.

The decision itself is made by a person in the Prefect UI (the flow pauses for a
:class:`ReviewDecision`); both stages call the same reviewer's story as ``evenflow review`` and
``evenflow promote``/``reject`` (:mod:`evenflow.usecases.champion`), so the UI and the CLI share
one set of promotion rules and one ledger.
"""

from __future__ import annotations

import re
from typing import Literal

from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.input import RunInput
from pydantic import Field

from evenflow.config.gates import SELF_REVIEW_ENV
from evenflow.config.settings import EvenflowSettings
from evenflow.govern.ledger import LedgerEntry
from evenflow.govern.promotion import MAX_REVIEWER_LENGTH
from evenflow.records import Record
from evenflow.reports.review import review_description
from evenflow.usecases import champion
from tasks.progress import stage


class ReviewDecision(RunInput):
    """What the reviewer types into the paused flow run's form in the Prefect UI."""

    decision: Literal["approve", "reject"] = Field(
        description="approve: make this version champion; reject: record why it is not."
    )
    reviewer: str = Field(
        min_length=1,
        max_length=MAX_REVIEWER_LENGTH,
        description="Your name, as the ledger should record it (not the person who trained it).",
    )
    note: str = Field(min_length=1, description="Why, in your words; kept in the ledger.")


class ReviewRequest(Record):
    """The version under review and the Markdown the reviewer reads before deciding."""

    model: str
    version: str
    description: str


def _artifact_key(model: str) -> str:
    """A stable Prefect artifact key per model (lowercase letters, digits and dashes)."""
    return re.sub(r"[^a-z0-9-]+", "-", f"{model}-review".lower()).strip("-")


def _request_text(model: str, version: str, review: str, warning: str | None) -> str:
    """The review, headed by what to do, with any alias the ledger did not set up front."""
    lines = [
        f"# Review {model} version {version}",
        "",
        "Decide in the form of this paused flow run (**Resume**): approve or reject, your name "
        "and a note. Approval applies the same rules as `evenflow promote` (passed gates, evidence "
        "unchanged since this review) and is refused when the reviewer launched the training run "
        f"(unless `{SELF_REVIEW_ENV}=1`).",
        "",
    ]
    if warning is not None:
        lines += [f"> **Warning:** {warning}", ""]
    return "\n".join([*lines, review])


@task(name="review-version")
def review_version(
    settings: EvenflowSettings, model: str, version: str | None = None
) -> ReviewRequest:
    """Review the version (default: the candidate) beside the champion and record the review.

    The rendered review is published as a Markdown artifact and handed to the pause's form.
    """
    with stage("review", f"{model} version {version or 'candidate'}") as done:
        summary = champion.review(settings, model, version)
        audit = champion.audit(settings, model)
        reviewed = summary.version.version
        text = _request_text(
            model,
            reviewed,
            review_description(summary),
            None if audit.resolved else audit.describe(),
        )
        create_markdown_artifact(
            markdown=text,
            key=_artifact_key(model),
            description=f"Review of {model} v{reviewed}",
        )
        done.summary = f"{model} v{reviewed} reviewed (evidence {summary.evidence.sha256[:12]})"
    return ReviewRequest(model=model, version=reviewed, description=text)


@task(name="apply-decision")
def apply_decision(
    settings: EvenflowSettings, request: ReviewRequest, decision: ReviewDecision
) -> LedgerEntry:
    """Promote or reject through the ledger, exactly as the CLI does (no retries: a decision)."""
    what = f"{decision.decision} {request.model} v{request.version} by {decision.reviewer}"
    with stage("decision", what) as done:
        if decision.decision == "approve":
            entry = champion.promote(
                settings, request.model, request.version, decision.reviewer, decision.note
            )
        else:
            entry = champion.reject(
                settings, request.model, request.version, decision.reviewer, decision.note
            )
        done.summary = f"ledger entry {entry.seq}: {entry.action} v{entry.version}" + (
            ""
            if entry.unrecorded_champion is None or entry.action == "reject"
            else "; the champion alias moved outside the ledger is put right"
        )
    return entry
