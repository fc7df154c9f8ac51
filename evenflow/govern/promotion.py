"""Promotion: a person makes a reviewed version champion, rejects one, or rolls back.

The decisions are pure functions (:func:`promotion_refusal`, :func:`rollback_target`); the
functions that call MLflow (:func:`promote`, :func:`reject`, :func:`rollback`) only gather their
inputs, append to the ledger (:mod:`evenflow.govern.ledger`) and move the ``champion`` alias.
A promotion is bound to the evidence the reviewer saw (:mod:`evenflow.govern.evidence`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion

from evenflow.config.settings import EvenflowSettings
from evenflow.errors import PromotionRefused
from evenflow.govern.evidence import (
    changed_artifacts,
    evidence_digest,
    evidence_hashes,
    reviewed_files,
)
from evenflow.govern.ledger import Action, LedgerEntry, append, decision_time, ledger_entries
from evenflow.registry import layout, store

logger = logging.getLogger(__name__)

MAX_REVIEWER_LENGTH = 200

# Per action: the version tags naming who decided, when, why and the ledger entry.
_DECISION_TAGS: dict[Action, tuple[str, str, str, str]] = {
    "promote": (
        layout.PROMOTED_BY_TAG,
        layout.PROMOTED_AT_TAG,
        layout.PROMOTION_NOTE_TAG,
        layout.PROMOTION_SEQ_TAG,
    ),
    "reject": (
        layout.REJECTED_BY_TAG,
        layout.REJECTED_AT_TAG,
        layout.REJECTION_NOTE_TAG,
        layout.REJECTION_SEQ_TAG,
    ),
    "rollback": (
        layout.ROLLED_BACK_BY_TAG,
        layout.ROLLED_BACK_AT_TAG,
        layout.ROLLBACK_NOTE_TAG,
        layout.ROLLBACK_SEQ_TAG,
    ),
}


@dataclass(frozen=True)
class _Decided:
    """Who decided, why, when, and the evidence digest the decision is bound to."""

    reviewer: str
    note: str
    at: datetime
    evidence_sha256: str | None


def promotion_refusal(
    gate_tag: str | None,
    reviewed_digest: str | None,
    current_digest: str,
    override: str | None,
    *,
    changed: Sequence[str] = (),
    is_champion: bool = False,
) -> str | None:
    """Why a version may not become champion, or None when it may.

    Args:
        gate_tag: The version's ``evenflow.gate`` tag (``passed`` or ``failed``; None if untagged).
        reviewed_digest: The evidence digest recorded by the last review; None if never reviewed.
        current_digest: The evidence digest computed now.
        override: A reason to promote despite failed gates; None for no override.
        changed: Artifacts that changed since the review, named in the refusal.
        is_champion: Whether the version already holds the champion alias.
    """
    if is_champion:
        return "it is already the champion"
    if override is not None and not override.strip():
        return "an override needs a reason"
    if gate_tag != "passed" and override is None:
        state = (
            "failed its gates"
            if gate_tag == "failed"
            else f"has no gate result ({layout.GATE_TAG} is {gate_tag or 'missing'})"
        )
        return f"it {state}; promote with an override reason to proceed anyway"
    if reviewed_digest is None:
        return "it was never reviewed; run the review first"
    if reviewed_digest != current_digest:
        what = f": {', '.join(changed)}" if changed else ""
        return f"its evidence changed since it was reviewed{what}; review it again"
    return None


def decision_tags(entry: LedgerEntry) -> dict[str, str]:
    """Who decided, when, why and the ledger entry: tagged on the version the decision is about.

    A rollback's tags go on the demoted champion, not on the version it restores.
    """
    by, at, note, seq = _DECISION_TAGS[entry.action]
    return {by: entry.reviewer, at: entry.at.isoformat(), note: entry.note, seq: str(entry.seq)}


def rollback_target(entries: Sequence[LedgerEntry], champion: str) -> str | None:
    """The version to restore: the previous champion of the latest promote of ``champion``.

    A rollback entry is not followed back, so rolling back twice walks further into the past
    instead of undoing the first rollback.
    """
    for entry in reversed(entries):
        if entry.action == "promote" and entry.version == champion:
            return entry.previous_champion
    return None


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
    _check_reviewer(reviewer)
    client = store.client_for(settings)
    target = store.model_version(client, model, version)
    champion = store.find_alias(client, model, layout.CHAMPION)
    files = evidence_hashes(client, str(target.run_id))
    current = evidence_digest(files)
    reason = promotion_refusal(
        target.tags.get(layout.GATE_TAG),
        target.tags.get(layout.REVIEWED_SHA_TAG),
        current,
        override,
        changed=changed_artifacts(reviewed_files(target), files),
        is_champion=_version_of(champion) == version,
    )
    if reason is not None:
        raise PromotionRefused(f"{model} version {version} cannot be promoted: {reason}")
    decided = _Decided(reviewer, note, decision_time(now), current)
    entry = _append(
        client,
        model,
        decided,
        action="promote",
        version=version,
        previous=_version_of(champion),
        override=override,
    )
    client.set_registered_model_alias(model, layout.CHAMPION, version)
    tags = {**decision_tags(entry), layout.PROMOTED_SHA_TAG: current}
    if override is not None:
        tags[layout.PROMOTION_OVERRIDE_TAG] = entry.override or override
    store.tag_version(client, model, version, tags)
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
    _check_reviewer(reviewer)
    client = store.client_for(settings)
    target = store.model_version(client, model, version)
    champion = store.find_alias(client, model, layout.CHAMPION)
    if _version_of(champion) == version:
        logger.warning("%s v%s is the champion; rejecting it does not demote it", model, version)
    current = evidence_digest(evidence_hashes(client, str(target.run_id)))
    decided = _Decided(reviewer, note, decision_time(now), current)
    entry = _append(
        client, model, decided, action="reject", version=version, previous=_version_of(champion)
    )
    tags = {**decision_tags(entry), layout.REJECTED_SHA_TAG: current}
    store.tag_version(client, model, version, tags)
    logger.info("%s v%s rejected (ledger %d, by %s)", model, version, entry.seq, reviewer)
    return entry


def rollback(
    settings: EvenflowSettings,
    model: str,
    reviewer: str,
    note: str,
    *,
    now: datetime | None = None,
) -> LedgerEntry:
    """Give ``champion`` back to the version the current champion replaced, per the ledger.

    Raises:
        PromotionRefused: There is no champion, or the ledger names no previous champion.
    """
    _check_reviewer(reviewer)
    client = store.client_for(settings)
    champion = store.find_alias(client, model, layout.CHAMPION)
    if champion is None:
        store.registered_model(client, model)
        raise PromotionRefused(f"{model} has no champion to roll back")
    current = str(champion.version)
    entries = ledger_entries(store.registered_model(client, model).tags)
    target = rollback_target(entries, current)
    if target is None:
        raise PromotionRefused(
            f"{model}: no previous champion to roll back to; the ledger records none before "
            f"version {current}"
        )
    restored = store.model_version(client, model, target)
    evidence = restored.tags.get(layout.PROMOTED_SHA_TAG)
    decided = _Decided(reviewer, note, decision_time(now), evidence)
    entry = _append(client, model, decided, action="rollback", version=target, previous=current)
    client.set_registered_model_alias(model, layout.CHAMPION, target)
    store.tag_version(client, model, current, decision_tags(entry))
    store.tag_version(client, model, target, {layout.RESTORED_SEQ_TAG: str(entry.seq)})
    logger.info("%s champion rolled back from v%s to v%s", model, current, target)
    return entry


def _check_reviewer(reviewer: str) -> None:
    """A decision names who made it, in a name that fits a tag."""
    if not reviewer.strip():
        raise PromotionRefused("a decision needs the reviewer's name")
    if len(reviewer) > MAX_REVIEWER_LENGTH:
        raise PromotionRefused(f"a reviewer name is at most {MAX_REVIEWER_LENGTH} characters")


def _version_of(version: ModelVersion | None) -> str | None:
    return None if version is None else str(version.version)


def _append(
    client: MlflowClient,
    model: str,
    decided: _Decided,
    *,
    action: Action,
    version: str,
    previous: str | None,
    override: str | None = None,
) -> LedgerEntry:
    """Append the decision to the model's ledger."""
    return append(
        client,
        model,
        action=action,
        version=version,
        previous_champion=previous,
        reviewer=decided.reviewer,
        at=decided.at,
        note=decided.note,
        evidence_sha256=decided.evidence_sha256,
        override=override,
    )
