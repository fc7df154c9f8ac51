"""The reviewer's story: review a candidate, make it champion or reject it, roll back, read the ledger.

Each decision reads what it needs from the registry, asks :mod:`evenflow.govern.promotion` (pure
functions) whether it may be made, appends it to the ledger (:mod:`evenflow.govern.ledger`), tags
the version and moves the ``champion`` alias. A promotion is bound to the evidence digest the
reviewer saw (:mod:`evenflow.govern.evidence`), which the review recorded on the version
(:mod:`evenflow.usecases.review`). The person who launched the training run may not approve
it unless the review policy allows it (:class:`~evenflow.config.gates.ReviewPolicy`).

Every decision, and every use of ``champion`` by scoring and monitoring, first compares the alias
with the ledger (:mod:`evenflow.govern.alias_guard`): a champion set outside the ledger is
reported here, refused by :func:`guard_alias`, listed by :func:`audit_aliases`, and put right by
a promote or rollback through the ledger.

Every decision also verifies the ledger's hash chain first (:func:`verify`) and refuses to append
to a broken one: an edited or removed entry must be looked at, not buried under a new decision.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import datetime

from mlflow import MlflowClient
from mlflow.entities.model_registry import RegisteredModel
from mlflow.utils.mlflow_tags import MLFLOW_USER

from evenflow import layout
from evenflow.config.gates import SELF_REVIEW_ENV, ReviewPolicy
from evenflow.config.settings import EvenflowSettings
from evenflow.errors import PromotionRefused
from evenflow.govern import ledger
from evenflow.govern import review as reading
from evenflow.govern.alias_guard import AliasAudit, audit_alias, refuse_unrecorded
from evenflow.govern.evidence import (
    changed_artifacts,
    evidence_digest,
    evidence_hashes,
    reviewed_files,
)
from evenflow.govern.ledger import (
    Action,
    ChainBreak,
    ChainVerdict,
    LedgerEntry,
    decision_time,
    ledger_entries,
    missing_tail,
    read_ledger,
    refuse_broken,
    verdict,
    verify_chain,
)
from evenflow.govern.promotion import (
    check_reviewer,
    decision_tags,
    promotion_refusal,
    replaced_champion,
    rollback_target,
    self_review_refusal,
    tagged_version,
)
from evenflow.govern.review import ReviewSummary
from evenflow.registry import store
from evenflow.usecases.review import record_review

logger = logging.getLogger(__name__)

#: MLflow's user id of a run created without one.
_UNKNOWN_USER = "unknown"

#: Version tags that name the ledger entry of a decision about the version.
_LEDGER_SEQ_TAGS = (
    layout.PROMOTION_SEQ_TAG,
    layout.REJECTION_SEQ_TAG,
    layout.ROLLBACK_SEQ_TAG,
    layout.RESTORED_SEQ_TAG,
)


def review(settings: EvenflowSettings, model: str, version: str | None = None) -> ReviewSummary:
    """Summarise a version (default: the candidate) beside the champion, and record the review.

    Promotion is refused later if the evidence changes after this review. Callers report a
    champion alias set outside the ledger with :func:`audit`.
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
    """One model's registry as a decision about it starts: its ledger and where champion points.

    ``champion`` is the ledger's champion: an alias moved outside the ledger is not one a
    decision builds on (it is named in the entry as ``unrecorded_champion`` instead).
    """

    client: MlflowClient
    model: str
    entries: list[LedgerEntry]
    alias: AliasAudit
    signature: _Signature

    @property
    def champion(self) -> str | None:
        """The version the ledger last made champion."""
        return self.alias.ledger_version

    def record(
        self,
        action: Action,
        version: str,
        evidence: str | None,
        *,
        previous_champion: str | None,
        override: str | None = None,
    ) -> LedgerEntry:
        """Append the decision, bound to ``evidence``, to the model's ledger, and tag the version."""
        entry = ledger.append(
            self.client,
            self.model,
            action=action,
            version=version,
            previous_champion=previous_champion,
            evidence_sha256=evidence,
            override=override,
            unrecorded_champion=None if self.alias.resolved else self.alias.alias_version or "none",
            **asdict(self.signature),
        )
        store.tag_version(self.client, self.model, tagged_version(entry), decision_tags(entry))
        return entry


def _open(
    settings: EvenflowSettings, model: str, reviewer: str, note: str, now: datetime | None
) -> _Desk:
    """Every decision starts here: a reviewer's name that fits a tag, an intact ledger, the alias.

    Raises:
        BrokenLedger: The ledger's hash chain is broken, or an entry is missing (it is named).
    """
    check_reviewer(reviewer)
    client = store.client_for(settings)
    found = store.registered_model(client, model)
    refuse_broken(_verify_registered(client, found))
    entries = ledger_entries(found.tags)
    alias = _audit_registered(found, entries)
    if not alias.resolved:
        logger.info("%s; this decision goes through the ledger", alias.describe())
    return _Desk(client, model, entries, alias, _Signature(reviewer, note, decision_time(now)))


def _audit_registered(found: RegisteredModel, entries: list[LedgerEntry]) -> AliasAudit:
    """The guard's answer for a registered model already read (its aliases and ledger tags)."""
    pointed = (found.aliases or {}).get(layout.CHAMPION)
    return audit_alias(found.name, None if pointed is None else str(pointed), entries)


def _launcher(client: MlflowClient, run_id: str) -> str | None:
    """Who launched the training run: its ``mlflow.user`` tag, else its user id; None if neither.

    A launcher that was never recorded cannot be compared with the reviewer: that is logged.
    """
    run = client.get_run(run_id)
    named = run.data.tags.get(MLFLOW_USER) or run.info.user_id
    if not named or named == _UNKNOWN_USER:
        logger.warning(
            "run %s records no launcher (%s); the reviewer cannot be checked against it",
            run_id,
            MLFLOW_USER,
        )
        return None
    return str(named)


def promote(
    settings: EvenflowSettings,
    model: str,
    version: str,
    reviewer: str,
    note: str,
    *,
    override: str | None = None,
    now: datetime | None = None,
    policy: ReviewPolicy | None = None,
) -> LedgerEntry:
    """Make a reviewed version champion, bound to the evidence digest the reviewer saw.

    The one path to ``champion`` for the CLI and the review flow alike. Promoting the version a
    champion alias set outside the ledger points at (or the ledger's own champion) records it
    through the ledger and so resolves the disagreement. ``policy`` says who may approve
    (default: read from the ``EVENFLOW_*`` variables).

    Raises:
        PromotionRefused: The reviewer launched the training run (and the policy does not allow
            self-review), the version failed its gates (without ``override``), was never
            reviewed, its evidence changed since the review, or it already is the champion.
    """
    desk = _open(settings, model, reviewer, note, now)
    target = store.model_version(desk.client, model, version)
    refused = self_review_refusal(
        reviewer,
        _launcher(desk.client, str(target.run_id)),
        allow_self_review=(policy or ReviewPolicy()).allow_self_review,
        setting=SELF_REVIEW_ENV,
    )
    if refused is not None:
        raise PromotionRefused(f"{model} version {version} cannot be promoted: {refused}")
    files = evidence_hashes(desk.client, str(target.run_id))
    current = evidence_digest(files)
    reason = promotion_refusal(
        target.tags.get(layout.GATE_TAG),
        target.tags.get(layout.REVIEWED_SHA_TAG),
        current,
        override,
        changed=changed_artifacts(reviewed_files(target), files),
        is_champion=desk.alias.resolved and desk.champion == version,
    )
    if reason is not None:
        raise PromotionRefused(f"{model} version {version} cannot be promoted: {reason}")
    entry = desk.record(
        "promote",
        version,
        current,
        previous_champion=replaced_champion(desk.entries, desk.champion, version),
        override=override,
    )
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
    if version in (desk.champion, desk.alias.alias_version):
        logger.warning("%s v%s is the champion; rejecting it does not demote it", model, version)
    entry = desk.record(
        "reject",
        version,
        evidence_digest(evidence_hashes(desk.client, str(target.run_id))),
        previous_champion=desk.champion,
    )
    logger.info("%s v%s rejected (ledger %d, by %s)", model, version, entry.seq, reviewer)
    return entry


def rollback(
    settings: EvenflowSettings, model: str, reviewer: str, note: str, *, now: datetime | None = None
) -> LedgerEntry:
    """Give ``champion`` back to the version the ledger's champion replaced, per the ledger.

    The ledger's champion, not the alias: an alias moved outside the ledger is put back too.

    Raises:
        PromotionRefused: The ledger records no champion, or no previous champion.
    """
    desk = _open(settings, model, reviewer, note, now)
    current = desk.champion
    if current is None:
        outside = "" if desk.alias.resolved else f" ({desk.alias.describe()})"
        raise PromotionRefused(f"{model} has no champion to roll back{outside}")
    target = rollback_target(desk.entries, current)
    if target is None:
        raise PromotionRefused(
            f"{model}: no previous champion to roll back to; the ledger records none before "
            f"version {current}"
        )
    restored = store.model_version(desk.client, model, target)
    entry = desk.record(
        "rollback", target, restored.tags.get(layout.PROMOTED_SHA_TAG), previous_champion=current
    )
    desk.client.set_registered_model_alias(model, layout.CHAMPION, target)
    store.tag_version(desk.client, model, target, {layout.RESTORED_SEQ_TAG: str(entry.seq)})
    logger.info("%s champion rolled back from v%s to v%s", model, current, target)
    return entry


def history(settings: EvenflowSettings, model: str) -> list[LedgerEntry]:
    """The model's append-only promotion ledger, oldest first (entries that cannot be read left out).

    An unreadable entry is named by :func:`verify`; history still shows the rest.
    """
    entries, _ = read_ledger(store.registered_model(store.client_for(settings), model).tags)
    return entries


def verify(settings: EvenflowSettings, model: str) -> ChainVerdict:
    """Whether ``model``'s ledger is as it was appended: its hash chain, and no entry missing.

    Besides the chain, the ledger entries named by versions' decision tags must be there: that
    finds entries removed from the end, which a hash chain alone cannot.
    """
    client = store.client_for(settings)
    return _verify_registered(client, store.registered_model(client, model))


def _verify_registered(client: MlflowClient, found: RegisteredModel) -> ChainVerdict:
    """The verdict on a registered model already read (its ledger tags), with its versions' tags."""
    entries, unreadable = read_ledger(found.tags)
    breaks: list[ChainBreak] = [
        *unreadable,
        *verify_chain(entries, unreadable={item.seq for item in unreadable}),
        *missing_tail(entries, _referenced_seqs(client, found.name)),
    ]
    return verdict(found.name, entries, breaks)


def _referenced_seqs(client: MlflowClient, model: str) -> dict[int, str]:
    """Ledger entries named by the model's versions (their decision tags): seq -> version."""
    quoted = "'" + model.replace("\\", "\\\\").replace("'", "\\'") + "'"
    named: dict[int, str] = {}
    for found in client.search_model_versions(f"name = {quoted}"):
        for key in _LEDGER_SEQ_TAGS:
            value = (found.tags or {}).get(key, "")
            if value.isdigit():
                named.setdefault(int(value), str(found.version))
    return named


def audit(settings: EvenflowSettings, model: str) -> AliasAudit:
    """Whether ``model``'s champion alias is where its ledger put it."""
    found = store.registered_model(store.client_for(settings), model)
    return _audit_registered(found, ledger_entries(found.tags))


def audit_aliases(settings: EvenflowSettings, model: str | None = None) -> list[AliasAudit]:
    """The guard's answer for one model, or for every registered model (by name)."""
    if model is not None:
        return [audit(settings, model)]
    client = store.client_for(settings)
    found: list[RegisteredModel] = []
    page = client.search_registered_models(max_results=1000)
    found.extend(page)
    while page.token:
        page = client.search_registered_models(max_results=1000, page_token=page.token)
        found.extend(page)
    return [
        _audit_registered(item, ledger_entries(item.tags))
        for item in sorted(found, key=lambda item: item.name)
    ]


def guard_alias(settings: EvenflowSettings, model: str, alias: str, version: str) -> None:
    """Refuse to use ``model@champion`` (resolved to ``version``) unless the ledger set it.

    Scoring and monitoring call it after resolving the alias, with the version they will use.

    Raises:
        UnrecordedChampion: ``alias`` is ``champion`` and the ledger made another version (or
            none) champion.
    """
    if alias != layout.CHAMPION:
        return
    found = store.registered_model(store.client_for(settings), model)
    refuse_unrecorded(audit_alias(model, version, ledger_entries(found.tags)), alias)
