"""The reviewer's story: review a candidate, make it champion or reject it, roll back, read the ledger.

Each step is one call for the command line: the decisions and the ledger live in
``evenflow.govern`` (``review``, ``promotion``, ``ledger``), recording a review on the version in
``evenflow.usecases.review``.
"""

from __future__ import annotations

from evenflow.config.settings import EvenflowSettings
from evenflow.govern import ledger, promotion
from evenflow.govern import review as reading
from evenflow.govern.ledger import LedgerEntry
from evenflow.govern.review import ReviewSummary
from evenflow.usecases.review import record_review


def review(settings: EvenflowSettings, model: str, version: str | None = None) -> ReviewSummary:
    """Summarise a version (default: the candidate) beside the champion, and record the review.

    Promotion is refused later if the evidence changes after this review.
    """
    summary = reading.review(settings, model, version)
    record_review(settings, model, summary.version.version, summary)
    return summary


def promote(
    settings: EvenflowSettings,
    model: str,
    version: str,
    reviewer: str,
    note: str,
    *,
    override: str | None = None,
) -> LedgerEntry:
    """Make a reviewed version champion (refused if it failed its gates or its evidence changed)."""
    return promotion.promote(settings, model, version, reviewer, note, override=override)


def reject(
    settings: EvenflowSettings, model: str, version: str, reviewer: str, note: str
) -> LedgerEntry:
    """Record that a reviewer rejected a version (nothing is deleted)."""
    return promotion.reject(settings, model, version, reviewer, note)


def rollback(settings: EvenflowSettings, model: str, reviewer: str, note: str) -> LedgerEntry:
    """Give champion back to the previous champion recorded in the ledger."""
    return promotion.rollback(settings, model, reviewer, note)


def history(settings: EvenflowSettings, model: str) -> list[LedgerEntry]:
    """The model's append-only promotion ledger, oldest first."""
    return ledger.history(settings, model)
