"""The reviewer's story: review a candidate, make it champion or reject it, roll back, read the ledger.

Each decision reads what it needs from the registry, asks :mod:`evenflow.govern.promotion` (pure
functions) whether it may be made, appends it to the ledger (:mod:`evenflow.govern.ledger`), tags
the version and moves the ``champion`` alias. A promotion is bound to the evidence digest the
reviewer saw (:mod:`evenflow.govern.evidence`), which the review recorded on the version
(:mod:`evenflow.usecases.review`).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import datetime

from mlflow import MlflowClient

from evenflow import layout
from evenflow.config.settings import EvenflowSettings
from evenflow.errors import PromotionRefused
from evenflow.govern import ledger
from evenflow.govern import review as reading
from evenflow.govern.evidence import (
    changed_artifacts,
    evidence_digest,
    evidence_hashes,
    reviewed_files,
)
from evenflow.govern.ledger import Action, LedgerEntry, decision_time, ledger_entries
from evenflow.govern.promotion import (
    check_reviewer,
    decision_tags,
    promotion_refusal,
    rollback_target,
    tagged_version,
)
from evenflow.govern.review import ReviewSummary
from evenflow.registry import store
from evenflow.usecases.review import record_review

logger = logging.getLogger(__name__)


def review(settings: EvenflowSettings, model: str, version: str | None = None) -> ReviewSummary:
    """Summarise a version (default: the candidate) beside the champion, and record the review.

    Promotion is refused later if the evidence changes after this review.
    """
    summary = reading.review(settings, model, version)
    record_review(settings, model, summary.version.version, summary)
    return summary


@dataclass(frozen=True)
class _Signature:
    """Who decided, why and when: the same on every ledger entry (field names as in the entry)."""

    reviewer: str
    note: str
    at: datetime


@dataclass(frozen=True)
class _Desk:
    """One model's registry, as a decision about it starts: the champion it stands against."""

    client: MlflowClient
    model: str
    champion: str | None
    signature: _Signature

    def record(
        self, action: Action, version: str, evidence: str | None, override: str | None = None
    ) -> LedgerEntry:
        """Append the decision, bound to ``evidence``, to the model's ledger, and tag the version."""
        entry = ledger.append(
            self.client,
            self.model,
            action=action,
            version=version,
            previous_champion=self.champion,
            evidence_sha256=evidence,
            override=override,
            **asdict(self.signature),
        )
        store.tag_version(self.client, self.model, tagged_version(entry), decision_tags(entry))
        return entry


def _open(
    settings: EvenflowSettings, model: str, reviewer: str, note: str, now: datetime | None
) -> _Desk:
    """Every decision starts here: a reviewer's name that fits a tag, and the current champion."""
    check_reviewer(reviewer)
    client = store.client_for(settings)
    champion = store.find_alias(client, model, layout.CHAMPION)
    version = None if champion is None else str(champion.version)
    return _Desk(client, model, version, _Signature(reviewer, note, decision_time(now)))


def promote(
    settings: EvenflowSettings,
    model: str,
    version: str,
    reviewer: str,
    note: str,
    *,
    override: str | None = None,
    now: datetime | None = None,
) -> LedgerEntry:
    """Make a reviewed version champion, bound to the evidence digest the reviewer saw.

    Raises:
        PromotionRefused: The version failed its gates (without ``override``), was never
            reviewed, its evidence changed since the review, or it already is the champion.
    """
    desk = _open(settings, model, reviewer, note, now)
    target = store.model_version(desk.client, model, version)
    files = evidence_hashes(desk.client, str(target.run_id))
    current = evidence_digest(files)
    reason = promotion_refusal(
        target.tags.get(layout.GATE_TAG),
        target.tags.get(layout.REVIEWED_SHA_TAG),
        current,
        override,
        changed=changed_artifacts(reviewed_files(target), files),
        is_champion=desk.champion == version,
    )
    if reason is not None:
        raise PromotionRefused(f"{model} version {version} cannot be promoted: {reason}")
    entry = desk.record("promote", version, current, override)
    desk.client.set_registered_model_alias(model, layout.CHAMPION, version)
    logger.info("%s v%s is champion (ledger %d, by %s)", model, version, entry.seq, reviewer)
    return entry


def reject(
    settings: EvenflowSettings,
    model: str,
    version: str,
    reviewer: str,
    note: str,
    *,
    now: datetime | None = None,
) -> LedgerEntry:
    """Record that a person rejected a version, with the evidence digest as it is now.

    Removes nothing and leaves ``champion`` alone: a rejection is a record, not a deletion.
    """
    desk = _open(settings, model, reviewer, note, now)
    target = store.model_version(desk.client, model, version)
    if desk.champion == version:
        logger.warning("%s v%s is the champion; rejecting it does not demote it", model, version)
    entry = desk.record(
        "reject", version, evidence_digest(evidence_hashes(desk.client, str(target.run_id)))
    )
    logger.info("%s v%s rejected (ledger %d, by %s)", model, version, entry.seq, reviewer)
    return entry


def rollback(
    settings: EvenflowSettings, model: str, reviewer: str, note: str, *, now: datetime | None = None
) -> LedgerEntry:
    """Give ``champion`` back to the version the current champion replaced, per the ledger.

    Raises:
        PromotionRefused: There is no champion, or the ledger names no previous champion.
    """
    desk = _open(settings, model, reviewer, note, now)
    current = desk.champion
    if current is None:
        store.registered_model(desk.client, model)
        raise PromotionRefused(f"{model} has no champion to roll back")
    target = rollback_target(
        ledger_entries(store.registered_model(desk.client, model).tags), current
    )
    if target is None:
        raise PromotionRefused(
            f"{model}: no previous champion to roll back to; the ledger records none before "
            f"version {current}"
        )
    restored = store.model_version(desk.client, model, target)
    entry = desk.record("rollback", target, restored.tags.get(layout.PROMOTED_SHA_TAG))
    desk.client.set_registered_model_alias(model, layout.CHAMPION, target)
    store.tag_version(desk.client, model, target, {layout.RESTORED_SEQ_TAG: str(entry.seq)})
    logger.info("%s champion rolled back from v%s to v%s", model, current, target)
    return entry


def history(settings: EvenflowSettings, model: str) -> list[LedgerEntry]:
    """The model's append-only promotion ledger, oldest first."""
    return ledger_entries(store.registered_model(store.client_for(settings), model).tags)
