"""Promotion decisions: may a version become champion, what a rollback restores, what is tagged.

Pure functions only (a decision is separate from its side effect): the reviewer's story that
reads the registry, appends to the ledger and moves the ``champion`` alias is
:mod:`evenflow.usecases.champion`.
"""

from __future__ import annotations

from collections.abc import Sequence

from evenflow import layout
from evenflow.errors import PromotionRefused
from evenflow.govern.ledger import Action, LedgerEntry

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
# Per action: the version tag holding the evidence digest the decision was bound to.
_EVIDENCE_TAGS: dict[Action, str] = {
    "promote": layout.PROMOTED_SHA_TAG,
    "reject": layout.REJECTED_SHA_TAG,
}


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
    """Who decided, when, why, the ledger entry, the evidence digest and any override reason.

    They are tagged on :func:`tagged_version`: a rollback's (without a digest) on the demoted
    champion, not on the version it restores.
    """
    by, at, note, seq = _DECISION_TAGS[entry.action]
    tags = {by: entry.reviewer, at: entry.at.isoformat(), note: entry.note, seq: str(entry.seq)}
    evidence = _EVIDENCE_TAGS.get(entry.action)
    if evidence is not None and entry.evidence_sha256 is not None:
        tags[evidence] = entry.evidence_sha256
    if entry.override is not None:
        tags[layout.PROMOTION_OVERRIDE_TAG] = entry.override
    return tags


def tagged_version(entry: LedgerEntry) -> str:
    """The version a decision's tags go on: a rollback's on the champion it demoted."""
    if entry.action != "rollback":
        return entry.version
    if entry.previous_champion is None:
        raise ValueError(f"ledger entry {entry.seq} rolls back from no champion")
    return entry.previous_champion


def rollback_target(entries: Sequence[LedgerEntry], champion: str) -> str | None:
    """The version to restore: the previous champion of the latest promote of ``champion``.

    A rollback entry is not followed back, so rolling back twice walks further into the past
    instead of undoing the first rollback.
    """
    for entry in reversed(entries):
        if entry.action == "promote" and entry.version == champion:
            return entry.previous_champion
    return None


def self_review_refusal(
    reviewer: str, launcher: str | None, *, allow_self_review: bool, setting: str
) -> str | None:
    """Why ``reviewer`` may not approve a version that ``launcher`` trained, or None when they may.

    Separation of duties: the person who launched the training run does not approve its version
    unless the review policy allows it (``setting``). Names are compared without case or
    surrounding spaces; an unknown launcher (an older run that recorded none) cannot be compared.
    """
    if allow_self_review or launcher is None or not launcher.strip():
        return None
    if reviewer.strip().casefold() != launcher.strip().casefold():
        return None
    return (
        f"the reviewer {reviewer.strip()!r} launched its training run (launcher "
        f"{launcher.strip()!r}); another person must approve it, or set {setting}=1 to allow "
        "self-review"
    )


def replaced_champion(
    entries: Sequence[LedgerEntry], ledger_champion: str | None, version: str
) -> str | None:
    """The champion a promotion of ``version`` replaces, as the ledger knows it.

    Normally the ledger's champion. When ``version`` already is the ledger's champion (it is
    promoted again to put back an alias moved outside the ledger), it replaces what it replaced
    before, so a later rollback still walks into the past instead of restoring itself.
    """
    if ledger_champion != version:
        return ledger_champion
    return rollback_target(entries, version)


def check_reviewer(reviewer: str) -> None:
    """A decision names who made it, in a name that fits a tag."""
    if not reviewer.strip():
        raise PromotionRefused("a decision needs the reviewer's name")
    if len(reviewer) > MAX_REVIEWER_LENGTH:
        raise PromotionRefused(f"a reviewer name is at most {MAX_REVIEWER_LENGTH} characters")
