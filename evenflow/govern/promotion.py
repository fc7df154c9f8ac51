"""Human review and promotion: a person decides, and the decision is bound to the evidence seen.

A review puts a registered version beside the current ``champion`` (metrics, per-group metrics
with intervals, the gate decision, what changed in the data, where the model card is) and computes
an *evidence digest*: the sha256 of the version's model card, reports and gate decision. Recording
the review stores that digest on the version; promotion recomputes it and refuses when it differs,
so nobody promotes on evidence they did not see.

Every decision (promote, reject, rollback) is appended to a ledger kept with the registered model:
one registered-model tag per entry, ``evenflow.ledger.NNNNNN``, never rewritten. MLflow has no
compare-and-set, so two people appending at the same instant could race; the append re-reads the
tags just before writing and checks the value afterwards, which narrows the window but cannot
close it.

Decisions are pure functions (:func:`promotion_refusal`, :func:`rollback_target`,
:func:`evidence_digest`); the functions that call MLflow only gather inputs and apply outcomes.
All MLflow access goes through :func:`evenflow.registry.store.client_for`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion, RegisteredModel
from mlflow.exceptions import MlflowException
from mlflow.utils.validation import MAX_MODEL_REGISTRY_TAG_VALUE_LENGTH, MAX_TAG_VAL_LENGTH
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from evenflow.assess.fairness import PRIVATE, CellStatus, record_status
from evenflow.config.fairness import FairnessParams
from evenflow.config.settings import EvenflowSettings
from evenflow.errors import EvenflowError, PromotionRefused
from evenflow.govern.gates import GateDecision, describe_failures
from evenflow.io import file_sha256
from evenflow.numbers import finite_int, finite_number
from evenflow.registry import store as registry

logger = logging.getLogger(__name__)


# --- names ----------------------------------------------------------------------------------

REVIEWED_SHA_TAG = "evenflow.reviewed_evidence_sha256"
REVIEWED_AT_TAG = "evenflow.reviewed_at"
REVIEWED_FILES_TAG = "evenflow.reviewed_evidence_files"
REVIEWED_AGAINST_TAG = "evenflow.reviewed_against_champion"
LEDGER_PREFIX = "evenflow.ledger."
_LEDGER_KEY = re.compile(r"^evenflow\.ledger\.(\d{6})$")

CARD_HTML = "model_card/model_card.html"
CARD_MARKDOWN = "model_card/model_card.md"
METRICS_ARTIFACT = "reports/metrics.json"
GROUPS_ARTIFACT = "reports/groups.json"
FAIRNESS_ARTIFACT = "reports/fairness/fairness.json"
DECISION_ARTIFACT = "gate/decision.json"
MANIFEST_ARTIFACT = "data/manifest.json"
REPORTS_DIR = "reports"
# The evidence a reviewer sees: the card, every JSON report directly under reports/, the fairness
# report and the gate decision. Bulky HTML reports are rendered from these, so they are left out.
EVIDENCE_FILES = (CARD_HTML, CARD_MARKDOWN, FAIRNESS_ARTIFACT, DECISION_ARTIFACT)

# MLflow validates registered-model tag values against MAX_MODEL_REGISTRY_TAG_VALUE_LENGTH, but
# its SQL store keeps them in a VARCHAR(5000) column (registered_model_tags.value), which
# PostgreSQL enforces; run tags stop at MAX_TAG_VAL_LENGTH. A ledger entry fits all three.
_SQL_TAG_VALUE_COLUMN = 5000
LEDGER_VALUE_LIMIT = min(
    MAX_TAG_VAL_LENGTH, MAX_MODEL_REGISTRY_TAG_VALUE_LENGTH, _SQL_TAG_VALUE_COLUMN
)
# model_versions.description is VARCHAR(5000) in the SQL store.
DESCRIPTION_LIMIT = 5000
TRUNCATED = " …[truncated]"
MAX_REVIEWER_LENGTH = 200

GROUP_METRICS = ("recall", "precision", "selection_rate")
# Overall metrics in the order a reviewer reads them; others follow as found.
METRIC_ORDER = (
    "roc_auc",
    "accuracy",
    "precision",
    "recall",
    "f1",
    "selection_rate",
    "base_rate",
    "tpr",
    "fpr",
    "fnr",
    "log_loss",
    "brier",
    "mean_score",
    "n",
)
_COUNTS = ("n",)
# metrics.json / groups.json name -> the fairness report's name for the same rate.
_FAIRNESS_NAME = {"recall": "tpr"}
SPLITS = ("train", "valid", "test")

Action = Literal["promote", "reject", "rollback"]


# --- records --------------------------------------------------------------------------------


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Comparison(_Record):
    """One figure of the reviewed version beside the champion's, with intervals when known."""

    name: str
    value: float | None = Field(description="The reviewed version's value.")
    low: float | None = None
    high: float | None = None
    champion: float | None = Field(default=None, description="The champion's value.")
    champion_low: float | None = None
    champion_high: float | None = None
    difference: float | None = Field(default=None, description="value - champion.")


class GroupComparison(_Record):
    """Per-group rates of one (column, group) cell for both versions, with each side's status.

    A private side shows no rate (only n); an insufficient side shows its rates, marked.
    """

    column: str
    group: str
    n: int | None
    champion_n: int | None
    status: CellStatus | None = Field(description="None when the group is absent here.")
    champion_status: CellStatus | None = Field(description="None when absent or no champion.")
    metrics: tuple[Comparison, ...]


class DataChange(_Record):
    """The data versions of both models and what changed between them."""

    data_md5: str | None
    champion_data_md5: str | None
    same_data: bool | None = Field(description="None when there is no champion to compare.")
    rows: dict[str, int]
    champion_rows: dict[str, int] | None
    features_added: tuple[str, ...] = ()
    features_removed: tuple[str, ...] = ()
    kind_changed: tuple[str, ...] = Field(default=(), description="'name: old -> new' lines.")
    categories_added: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    categories_removed: dict[str, tuple[str, ...]] = Field(default_factory=dict)


class GateSummary(_Record):
    """The gate outcome as tagged on the version and as recorded in gate/decision.json."""

    tag: str | None = Field(description="Version tag evenflow.gate: passed or failed.")
    passed: bool | None = Field(description="decision.json's verdict; None when missing.")
    n_clauses: int
    failed: tuple[str, ...] = Field(description="One readable line per failed clause.")


class VersionInfo(_Record):
    """A registered version and its lineage, as read from the registry."""

    version: str
    run_id: str
    aliases: tuple[str, ...]
    data_md5: str | None
    git_commit: str | None


class ModelCardRef(_Record):
    """Where the model card lives: artifacts of the version's run."""

    run_id: str
    html: str
    markdown: str
    present: tuple[str, ...] = Field(description="Which of the two files the run holds.")


class Evidence(_Record):
    """The digest a decision is bound to and the per-file hashes it was computed from."""

    files: dict[str, str] = Field(description="Artifact path -> sha256 of its bytes.")
    sha256: str


class ReviewSummary(_Record):
    """Everything a reviewer needs to decide on one version, against the current champion."""

    model: str
    version: VersionInfo
    champion: VersionInfo | None
    metrics: tuple[Comparison, ...]
    groups: tuple[GroupComparison, ...]
    gate: GateSummary
    data: DataChange
    model_card: ModelCardRef
    evidence: Evidence
    missing: tuple[str, ...] = Field(description="Artifacts the review looked for and lacked.")


class LedgerEntry(_Record):
    """One decision in a registered model's promotion ledger."""

    seq: int = Field(ge=1, le=999_999)
    action: Action
    version: str
    previous_champion: str | None
    reviewer: str
    at: datetime = Field(description="When, in UTC.")
    note: str
    evidence_sha256: str | None
    override: str | None = None

    @field_validator("at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("a ledger time must carry a timezone")
        return value.astimezone(UTC)


# --- pure decisions -------------------------------------------------------------------------


def evidence_digest(files: Mapping[str, str]) -> str:
    """sha256 over the sorted (artifact path, file sha256) pairs: one number for all evidence.

    Paths are part of the digest, so moving a report counts as a change.
    """
    digest = hashlib.sha256()
    for path in sorted(files):
        digest.update(f"{path}\0{files[path]}\n".encode())
    return digest.hexdigest()


def changed_artifacts(reviewed: Mapping[str, str], current: Mapping[str, str]) -> list[str]:
    """Artifacts that differ between two evidence listings, each marked changed/added/removed."""
    lines = []
    for path in sorted(set(reviewed) | set(current)):
        if path not in current:
            lines.append(f"{path} (removed)")
        elif path not in reviewed:
            lines.append(f"{path} (added)")
        elif reviewed[path] != current[path]:
            lines.append(f"{path} (changed)")
    return lines


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
            else f"has no gate result ({registry.GATE_TAG} is {gate_tag or 'missing'})"
        )
        return f"it {state}; promote with an override reason to proceed anyway"
    if reviewed_digest is None:
        return "it was never reviewed; run the review first"
    if reviewed_digest != current_digest:
        what = f": {', '.join(changed)}" if changed else ""
        return f"its evidence changed since it was reviewed{what}; review it again"
    return None


def rollback_target(entries: Sequence[LedgerEntry], champion: str) -> str | None:
    """The version to restore: the previous champion of the latest promote of ``champion``.

    A rollback entry is not followed back, so rolling back twice walks further into the past
    instead of undoing the first rollback.
    """
    for entry in reversed(entries):
        if entry.action == "promote" and entry.version == champion:
            return entry.previous_champion
    return None


def ledger_key(seq: int) -> str:
    """Registered-model tag key of ledger entry ``seq``."""
    return f"{LEDGER_PREFIX}{seq:06d}"


def ledger_entries(tags: Mapping[str, str]) -> list[LedgerEntry]:
    """Ledger entries stored in a registered model's tags, in sequence order."""
    entries = []
    for key in sorted(k for k in tags if _LEDGER_KEY.match(k)):
        entry = LedgerEntry.model_validate_json(tags[key])
        if ledger_key(entry.seq) != key:
            logger.warning("ledger entry %s records seq %d", key, entry.seq)
        entries.append(entry)
    return entries


def next_seq(tags: Mapping[str, str]) -> int:
    """Sequence number of the next ledger entry: one past the highest key present."""
    numbers = [int(m.group(1)) for k in tags if (m := _LEDGER_KEY.match(k))]
    return max(numbers, default=0) + 1


def encode_entry(entry: LedgerEntry, limit: int = LEDGER_VALUE_LIMIT) -> str:
    """Compact JSON of an entry, shortening the note (then the override) to fit ``limit``."""
    value = entry.model_dump_json()
    for field in ("note", "override"):
        if len(value) <= limit:
            break
        text = getattr(entry, field)
        if not text:
            continue
        keep = max(0, len(text) - (len(value) - limit) - len(TRUNCATED))
        entry = entry.model_copy(update={field: text[:keep] + TRUNCATED})
        value = entry.model_dump_json()
        logger.warning("ledger entry %d: %s truncated to fit a tag value", entry.seq, field)
    if len(value) > limit:
        raise PromotionRefused(f"a ledger entry must fit {limit} characters; shorten the fields")
    return value


def compare_metrics(
    metrics: Mapping[str, Any],
    champion: Mapping[str, Any] | None,
    fairness: Mapping[str, Any] | None = None,
    champion_fairness: Mapping[str, Any] | None = None,
) -> tuple[Comparison, ...]:
    """Overall metrics of both versions and their differences.

    Intervals come from ``<name>_low``/``<name>_high`` in the metrics when present, else from the
    fairness report's overall row (bootstrap intervals of the rates).
    """
    present = [*metrics, *(n for n in champion or {} if n not in metrics)]
    names = [n for n in METRIC_ORDER if n in present]
    names += [n for n in present if n not in names and not n.endswith(("_low", "_high"))]
    overall = (fairness or {}).get("overall")
    champion_overall = (champion_fairness or {}).get("overall")
    return tuple(
        _comparison(
            name,
            _figure(metrics, name, overall),
            None if champion is None else _figure(champion, name, champion_overall),
        )
        for name in names
    )


def compare_groups(
    groups: Sequence[Mapping[str, Any]],
    champion: Sequence[Mapping[str, Any]] | None,
    fairness: Mapping[str, Any] | None = None,
    champion_fairness: Mapping[str, Any] | None = None,
) -> tuple[GroupComparison, ...]:
    """Per-group recall, precision and selection rate of both versions, with differences.

    Each side's status follows the one rule for small groups (records older than the rule are
    classified from their counts under their fairness report's parameters); a private side gives
    no rate at all.
    """
    rule, champion_rule = group_rule(fairness), group_rule(champion_fairness)
    rows = []
    for key, mine, other in paired_groups(groups, champion):
        status = group_status(mine, rule)
        theirs = None if other is None else group_status(other, champion_rule)
        figures = [
            _comparison(
                metric,
                _group_figure(mine, metric, fairness, key, status),
                None
                if other is None
                else _group_figure(other, metric, champion_fairness, key, theirs),
            )
            for metric in GROUP_METRICS
        ]
        rows.append(
            GroupComparison(
                column=key[0],
                group=key[1],
                n=finite_int(mine.get("n")),
                champion_n=None if other is None else finite_int(other.get("n")),
                status=status,
                champion_status=theirs,
                metrics=tuple(figures),
            )
        )
    return tuple(rows)


def group_rule(fairness: Mapping[str, Any] | None) -> FairnessParams:
    """The small-group rule a logged fairness report was made with (defaults when unreadable)."""
    params = (fairness or {}).get("params")
    if isinstance(params, Mapping):
        try:
            return FairnessParams.model_validate(params)
        except ValidationError:
            logger.warning("fairness parameters not readable; the default small-group rule is used")
    return FairnessParams()


def group_status(record: Mapping[str, Any], rule: FairnessParams) -> CellStatus | None:
    """A logged group record's status under the rule; None for an empty record (group absent)."""
    return record_status(record, rule) if record else None


def data_changes(
    manifest: Mapping[str, Any] | None,
    champion: Mapping[str, Any] | None,
    *,
    data_md5: str | None = None,
    champion_data_md5: str | None = None,
) -> DataChange:
    """What changed in the data between the champion's manifest and the reviewed version's."""
    md5 = (manifest or {}).get("data_md5") or data_md5
    champion_md5 = None if champion is None else champion.get("data_md5") or champion_data_md5
    features = _features(manifest)
    old = _features(champion)
    common = [name for name in features if name in old]
    return DataChange(
        data_md5=md5,
        champion_data_md5=champion_md5,
        same_data=None if md5 is None or champion_md5 is None else md5 == champion_md5,
        rows=_split_rows(manifest),
        champion_rows=None if champion is None else _split_rows(champion),
        features_added=tuple(n for n in features if champion is not None and n not in old),
        features_removed=tuple(n for n in old if n not in features),
        kind_changed=tuple(
            f"{n}: {old[n][0]} -> {features[n][0]}" for n in common if old[n][0] != features[n][0]
        ),
        categories_added=_category_diff(features, old, common),
        categories_removed=_category_diff(old, features, common),
    )


def gate_summary(tag: str | None, decision: Mapping[str, Any] | None) -> GateSummary:
    """The gate outcome with one line per failed clause (figures and limits)."""
    if decision is None:
        return GateSummary(tag=tag, passed=None, n_clauses=0, failed=())
    try:
        lines = tuple(describe_failures(GateDecision.model_validate(decision)))
    except ValidationError:  # written by an older policy schema: fall back to the raw details
        lines = tuple(f"{c.get('name')}: {c.get('detail')}" for c in decision.get("failed", ()))
    return GateSummary(
        tag=tag,
        passed=bool(decision.get("passed")),
        n_clauses=len(decision.get("clauses", ())),
        failed=lines,
    )


# --- review ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Artifacts:
    """The JSON artifacts of one run that a review reads, and the hashes of its evidence."""

    metrics: dict[str, Any] | None
    groups: list[dict[str, Any]] | None
    fairness: dict[str, Any] | None
    decision: dict[str, Any] | None
    manifest: dict[str, Any] | None
    evidence: dict[str, str]
    missing: tuple[str, ...]


def review(settings: EvenflowSettings, model: str, version: str | None = None) -> ReviewSummary:
    """Summarise a version (default: the ``candidate``) beside the current champion.

    Reads only; :func:`record_review` stores the outcome on the version.
    """
    client = registry.client_for(settings)
    target = _version_or_candidate(client, model, version)
    champion = _alias_version(client, model, registry.CHAMPION)
    ours = _read_artifacts(client, str(target.run_id))
    theirs = None if champion is None else _read_artifacts(client, str(champion.run_id))
    missing = ours.missing + (
        () if theirs is None else tuple(f"{p} (champion)" for p in theirs.missing)
    )
    return ReviewSummary(
        model=model,
        version=_version_info(target),
        champion=None if champion is None else _version_info(champion),
        metrics=compare_metrics(
            (ours.metrics or {}).get("metrics", {}),
            None if theirs is None else (theirs.metrics or {}).get("metrics", {}),
            ours.fairness,
            None if theirs is None else theirs.fairness,
        ),
        groups=compare_groups(
            ours.groups or [],
            None if theirs is None else theirs.groups or [],
            ours.fairness,
            None if theirs is None else theirs.fairness,
        ),
        gate=gate_summary(target.tags.get(registry.GATE_TAG), ours.decision),
        data=data_changes(
            ours.manifest,
            None if theirs is None else theirs.manifest or {},
            data_md5=target.tags.get("evenflow.data_md5"),
            champion_data_md5=None if champion is None else champion.tags.get("evenflow.data_md5"),
        ),
        model_card=ModelCardRef(
            run_id=str(target.run_id),
            html=CARD_HTML,
            markdown=CARD_MARKDOWN,
            present=tuple(p for p in (CARD_HTML, CARD_MARKDOWN) if p in ours.evidence),
        ),
        evidence=Evidence(files=ours.evidence, sha256=evidence_digest(ours.evidence)),
        missing=missing,
    )


def record_review(
    settings: EvenflowSettings,
    model: str,
    version: str,
    summary: ReviewSummary,
    *,
    now: datetime | None = None,
) -> None:
    """Bind the review to the version: evidence digest, per-file hashes, time, description.

    The description carries the rendered review, so a reviewer using only the MLflow UI sees the
    same content as the terminal.
    """
    if summary.model != model or summary.version.version != version:
        raise EvenflowError(
            f"the summary describes {summary.model} v{summary.version.version}, "
            f"not {model} v{version}"
        )
    client = registry.client_for(settings)
    tags = {
        REVIEWED_SHA_TAG: summary.evidence.sha256,
        REVIEWED_AT_TAG: _utc(now).isoformat(),
        REVIEWED_FILES_TAG: json.dumps(summary.evidence.files, sort_keys=True),
        REVIEWED_AGAINST_TAG: summary.champion.version if summary.champion else "none",
    }
    _tag_version(client, model, version, tags)
    client.update_model_version(model, version, description=review_description(summary))
    logger.info("recorded review of %s v%s (evidence %s)", model, version, summary.evidence.sha256)


def review_description(summary: ReviewSummary, limit: int = DESCRIPTION_LIMIT) -> str:
    """The review as Markdown for the MLflow UI: the terminal text in a fixed-width block."""
    head = f"**Review of {summary.model} v{summary.version.version}** (`evenflow review`)\n\n"
    body = render_review(summary)
    tail = "\n```"
    text = f"{head}```text\n{body}{tail}"
    if len(text) <= limit:
        return text
    keep = limit - len(head) - len("```text\n") - len(TRUNCATED) - len(tail)
    return f"{head}```text\n{body[:keep]}{TRUNCATED}{tail}"


# --- decisions with side effects ------------------------------------------------------------


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
    client = registry.client_for(settings)
    target = _model_version(client, model, version)
    champion = _alias_version(client, model, registry.CHAMPION)
    files = _evidence_hashes(client, str(target.run_id))
    current = evidence_digest(files)
    reason = promotion_refusal(
        target.tags.get(registry.GATE_TAG),
        target.tags.get(REVIEWED_SHA_TAG),
        current,
        override,
        changed=changed_artifacts(_reviewed_files(target), files),
        is_champion=champion is not None and str(champion.version) == version,
    )
    if reason is not None:
        raise PromotionRefused(f"{model} version {version} cannot be promoted: {reason}")
    entry = _append(
        client,
        model,
        action="promote",
        version=version,
        previous_champion=None if champion is None else str(champion.version),
        reviewer=reviewer,
        at=_utc(now),
        note=note,
        evidence_sha256=current,
        override=override,
    )
    client.set_registered_model_alias(model, registry.CHAMPION, version)
    tags = {
        "evenflow.promoted_by": reviewer,
        "evenflow.promoted_at": entry.at.isoformat(),
        "evenflow.promotion_note": entry.note,
        "evenflow.promoted_evidence_sha256": current,
        "evenflow.promotion_ledger_seq": str(entry.seq),
    }
    if override is not None:
        tags["evenflow.promotion_override"] = entry.override or override
    _tag_version(client, model, version, tags)
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
    client = registry.client_for(settings)
    target = _model_version(client, model, version)
    champion = _alias_version(client, model, registry.CHAMPION)
    if champion is not None and str(champion.version) == version:
        logger.warning("%s v%s is the champion; rejecting it does not demote it", model, version)
    current = evidence_digest(_evidence_hashes(client, str(target.run_id)))
    entry = _append(
        client,
        model,
        action="reject",
        version=version,
        previous_champion=None if champion is None else str(champion.version),
        reviewer=reviewer,
        at=_utc(now),
        note=note,
        evidence_sha256=current,
    )
    tags = {
        "evenflow.rejected_by": reviewer,
        "evenflow.rejected_at": entry.at.isoformat(),
        "evenflow.rejection_note": entry.note,
        "evenflow.rejected_evidence_sha256": current,
        "evenflow.rejection_ledger_seq": str(entry.seq),
    }
    _tag_version(client, model, version, tags)
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
    client = registry.client_for(settings)
    champion = _alias_version(client, model, registry.CHAMPION)
    if champion is None:
        _registered_model(client, model)
        raise PromotionRefused(f"{model} has no champion to roll back")
    current = str(champion.version)
    entries = ledger_entries(_registered_model(client, model).tags)
    target = rollback_target(entries, current)
    if target is None:
        raise PromotionRefused(
            f"{model}: no previous champion to roll back to; the ledger records none before "
            f"version {current}"
        )
    restored = _model_version(client, model, target)
    entry = _append(
        client,
        model,
        action="rollback",
        version=target,
        previous_champion=current,
        reviewer=reviewer,
        at=_utc(now),
        note=note,
        evidence_sha256=restored.tags.get("evenflow.promoted_evidence_sha256"),
    )
    client.set_registered_model_alias(model, registry.CHAMPION, target)
    demoted = {
        "evenflow.rolled_back_by": reviewer,
        "evenflow.rolled_back_at": entry.at.isoformat(),
        "evenflow.rollback_note": entry.note,
        "evenflow.rollback_ledger_seq": str(entry.seq),
    }
    _tag_version(client, model, current, demoted)
    _tag_version(client, model, target, {"evenflow.restored_ledger_seq": str(entry.seq)})
    logger.info("%s champion rolled back from v%s to v%s", model, current, target)
    return entry


def history(settings: EvenflowSettings, model: str) -> list[LedgerEntry]:
    """The model's promotion ledger, oldest first."""
    client = registry.client_for(settings)
    return ledger_entries(_registered_model(client, model).tags)


# --- rendering ------------------------------------------------------------------------------


def render_review(summary: ReviewSummary) -> str:
    """The review as aligned plain text for a terminal (and the MLflow description)."""
    champion = summary.champion
    against = f"champion v{champion.version}" if champion else "no champion yet"
    aliases = f" ({', '.join(summary.version.aliases)})" if summary.version.aliases else ""
    lines = [
        f"Review: {summary.model} v{summary.version.version}{aliases} vs {against}",
        "",
        *_gate_lines(summary.gate),
        "",
        "Overall test metrics",
        *_table(
            ["metric", "this version", "champion", "difference"],
            [_metric_row(m, summary.champion is not None) for m in summary.metrics],
        ),
        "",
        "Per-group test metrics",
        *_table(
            ["column", "group", "n", "metric", "this version", "champion", "difference"],
            _group_rows(summary),
        ),
        *_group_legend(summary),
        "",
        "Data",
        *_data_lines(summary.data, champion),
        "",
        f"Model card: run {summary.model_card.run_id}, artifacts {summary.model_card.html} "
        f"and {summary.model_card.markdown}",
        f"Evidence sha256: {summary.evidence.sha256} ({len(summary.evidence.files)} files)",
    ]
    if summary.missing:
        lines.append(f"Missing artifacts: {', '.join(summary.missing)}")
    return "\n".join(lines)


def render_history(entries: Sequence[LedgerEntry]) -> str:
    """The ledger as an aligned table, oldest first."""
    if not entries:
        return "No promotion decisions recorded."
    rows = [
        [
            str(e.seq),
            e.at.strftime("%Y-%m-%d %H:%M:%SZ"),
            e.action,
            e.version,
            e.previous_champion or "-",
            e.reviewer,
            (e.evidence_sha256 or "-")[:12],
            e.override or "-",
            e.note,
        ]
        for e in entries
    ]
    headers = ["seq", "at (UTC)", "action", "version", "previous", "reviewer", "evidence"]
    return "\n".join(_table([*headers, "override", "note"], rows))


# --- MLflow access --------------------------------------------------------------------------


def _registered_model(client: MlflowClient, model: str) -> RegisteredModel:
    try:
        return client.get_registered_model(model)
    except MlflowException as error:
        raise EvenflowError(f"no registered model named {model!r}") from error


def _model_version(client: MlflowClient, model: str, version: str) -> ModelVersion:
    try:
        return client.get_model_version(model, version)
    except MlflowException as error:
        raise EvenflowError(f"{model} has no version {version!r}") from error


def _alias_version(client: MlflowClient, model: str, alias: str) -> ModelVersion | None:
    try:
        return client.get_model_version_by_alias(model, alias)
    except MlflowException:
        return None


def _version_or_candidate(client: MlflowClient, model: str, version: str | None) -> ModelVersion:
    if version is not None:
        return _model_version(client, model, version)
    found = _alias_version(client, model, registry.CANDIDATE)
    if found is None:
        _registered_model(client, model)
        raise EvenflowError(f"{model} has no '{registry.CANDIDATE}' version; name a version")
    return found


def _version_info(version: ModelVersion) -> VersionInfo:
    return VersionInfo(
        version=str(version.version),
        run_id=str(version.run_id),
        aliases=tuple(version.aliases or ()),
        data_md5=version.tags.get("evenflow.data_md5"),
        git_commit=version.tags.get("evenflow.git_commit"),
    )


def _tag_version(client: MlflowClient, model: str, version: str, tags: Mapping[str, str]) -> None:
    for key, value in tags.items():
        client.set_model_version_tag(model, version, key, value)


def _reviewed_files(version: ModelVersion) -> dict[str, str]:
    raw = version.tags.get(REVIEWED_FILES_TAG)
    if not raw:
        return {}
    files: dict[str, str] = json.loads(raw)
    return files


def _evidence_paths(client: MlflowClient, run_id: str) -> list[str]:
    """Artifact paths of the run's evidence that exist (listing folders, downloading nothing)."""
    present: set[str] = set()
    for folder in {p.rsplit("/", 1)[0] for p in EVIDENCE_FILES} | {REPORTS_DIR}:
        present.update(f.path for f in client.list_artifacts(run_id, folder) if not f.is_dir)
    reports = [p for p in present if p.startswith(f"{REPORTS_DIR}/") and p.endswith(".json")]
    return sorted({*reports, *(p for p in EVIDENCE_FILES if p in present)})


def _download(
    client: MlflowClient, run_id: str, paths: Iterable[str], scratch: Path
) -> dict[str, Path]:
    # One progress bar per small JSON file is noise in a terminal review.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    return {p: Path(client.download_artifacts(run_id, p, str(scratch))) for p in paths}


def _evidence_hashes(client: MlflowClient, run_id: str) -> dict[str, str]:
    with tempfile.TemporaryDirectory() as scratch:
        local = _download(client, run_id, _evidence_paths(client, run_id), Path(scratch))
        return {path: file_sha256(file) for path, file in local.items()}


def _read_artifacts(client: MlflowClient, run_id: str) -> _Artifacts:
    evidence_paths = _evidence_paths(client, run_id)
    manifest_present = any(
        f.path == MANIFEST_ARTIFACT for f in client.list_artifacts(run_id, "data")
    )
    wanted = [*evidence_paths, *([MANIFEST_ARTIFACT] if manifest_present else [])]
    read = (METRICS_ARTIFACT, GROUPS_ARTIFACT, FAIRNESS_ARTIFACT, DECISION_ARTIFACT)
    with tempfile.TemporaryDirectory() as scratch:
        local = _download(client, run_id, wanted, Path(scratch))
        evidence = {p: file_sha256(local[p]) for p in evidence_paths}
        docs = {p: _json(local[p]) for p in (*read, MANIFEST_ARTIFACT) if p in local}
    expected = (*read, CARD_HTML, CARD_MARKDOWN, MANIFEST_ARTIFACT)
    return _Artifacts(
        metrics=docs.get(METRICS_ARTIFACT),
        groups=docs.get(GROUPS_ARTIFACT),
        fairness=docs.get(FAIRNESS_ARTIFACT),
        decision=docs.get(DECISION_ARTIFACT),
        manifest=docs.get(MANIFEST_ARTIFACT),
        evidence=evidence,
        missing=tuple(p for p in expected if p not in local),
    )


def _append(client: MlflowClient, model: str, **fields: Any) -> LedgerEntry:
    """Append one entry under the next free key; an existing key is never written."""
    seq = next_seq(_registered_model(client, model).tags)
    entry = LedgerEntry(seq=seq, **fields)
    value = encode_entry(entry)
    key = ledger_key(seq)
    if key in _registered_model(client, model).tags:  # re-read: someone appended meanwhile
        raise PromotionRefused(f"ledger entry {key} of {model} already exists; try again")
    client.set_registered_model_tag(model, key, value)
    if _registered_model(client, model).tags.get(key) != value:
        raise PromotionRefused(
            f"ledger entry {key} of {model} was written concurrently; check history"
        )
    return LedgerEntry.model_validate_json(value)


# --- helpers --------------------------------------------------------------------------------


def _check_reviewer(reviewer: str) -> None:
    if not reviewer.strip():
        raise PromotionRefused("a decision needs the reviewer's name")
    if len(reviewer) > MAX_REVIEWER_LENGTH:
        raise PromotionRefused(f"a reviewer name is at most {MAX_REVIEWER_LENGTH} characters")


def _utc(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    if now.tzinfo is None:
        raise ValueError("pass a timezone-aware time")
    return now.astimezone(UTC)


def _json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


_Figure = tuple[float | None, float | None, float | None]


def _figure(metrics: Mapping[str, Any], name: str, overall: Mapping[str, Any] | None) -> _Figure:
    low, high = (
        finite_number(metrics.get(f"{name}_low")),
        finite_number(metrics.get(f"{name}_high")),
    )
    if low is None and high is None:
        low, high = _interval(overall, name)
    return finite_number(metrics.get(name)), low, high


def _interval(estimates: Mapping[str, Any] | None, name: str) -> tuple[float | None, float | None]:
    found = (estimates or {}).get(_FAIRNESS_NAME.get(name, name))
    if not isinstance(found, Mapping):
        return None, None
    return finite_number(found.get("low")), finite_number(found.get("high"))


def _comparison(name: str, ours: _Figure, theirs: _Figure | None) -> Comparison:
    value, low, high = ours
    champion, champion_low, champion_high = theirs or (None, None, None)
    difference = None if value is None or champion is None else value - champion
    return Comparison(
        name=name,
        value=value,
        low=low,
        high=high,
        champion=champion,
        champion_low=champion_low,
        champion_high=champion_high,
        difference=difference,
    )


def _group_key(record: Mapping[str, Any]) -> tuple[str, str]:
    return str(record["column"]), str(record["group"])


GroupPair = tuple[tuple[str, str], Mapping[str, Any], Mapping[str, Any] | None]


def paired_groups(
    groups: Sequence[Mapping[str, Any]], champion: Sequence[Mapping[str, Any]] | None
) -> list[GroupPair]:
    """Each (column, group) record beside the champion's: ours first, then groups only it has.

    A group missing on our side comes with an empty record; on the champion's side with None.
    """
    ours = {_group_key(g): g for g in groups}
    theirs = {_group_key(g): g for g in champion or ()}
    keys = [*ours, *(k for k in theirs if k not in ours)]
    return [(key, ours.get(key, {}), theirs.get(key)) for key in keys]


def _group_figure(
    record: Mapping[str, Any],
    metric: str,
    fairness: Mapping[str, Any] | None,
    key: tuple[str, str],
    status: CellStatus | None,
) -> _Figure:
    """A group's rate with its interval; nothing at all for a private group."""
    if status == PRIVATE:
        return None, None, None
    low, high = _interval(_fairness_group(fairness, key), metric)
    return finite_number(record.get(metric)), low, high


def _fairness_group(
    fairness: Mapping[str, Any] | None, key: tuple[str, str]
) -> Mapping[str, Any] | None:
    """The fairness report's group of one single-column slice, matched by column and value."""
    column, group = key
    for item in (fairness or {}).get("slices", ()):
        if list(item.get("columns", ())) != [column]:
            continue
        for found in item.get("groups", ()):
            if found.get("values", {}).get(column) == group:
                return dict(found)
    return None


def _features(manifest: Mapping[str, Any] | None) -> dict[str, tuple[str, tuple[str, ...]]]:
    return {
        str(f["name"]): (str(f.get("kind", "")), tuple(str(c) for c in f.get("categories", ())))
        for f in (manifest or {}).get("features", ())
    }


def _split_rows(manifest: Mapping[str, Any] | None) -> dict[str, int]:
    """Rows per split; empty when the manifest is missing (unknown, not zero)."""
    if not manifest or "shards" not in manifest:
        return {}
    rows = dict.fromkeys(SPLITS, 0)
    for shard in manifest["shards"]:
        rows[str(shard["split"])] = rows.get(str(shard["split"]), 0) + int(shard["n_rows"])
    return rows


def _category_diff(
    ours: Mapping[str, tuple[str, tuple[str, ...]]],
    theirs: Mapping[str, tuple[str, tuple[str, ...]]],
    names: Iterable[str],
) -> dict[str, tuple[str, ...]]:
    """Categories each common feature has in ``ours`` and not in ``theirs``."""
    diff = {}
    for name in names:
        extra = tuple(c for c in ours[name][1] if c not in set(theirs[name][1]))
        if extra:
            diff[name] = extra
    return diff


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _est(value: float | None, low: float | None, high: float | None) -> str:
    if low is None or high is None or value is None:
        return _fmt(value)
    return f"{value:.4f} [{low:.4f}, {high:.4f}]"


def _champ(item: Comparison) -> str:
    return _est(item.champion, item.champion_low, item.champion_high)


def _diff(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.4f}"


def _group_rows(summary: ReviewSummary) -> list[list[str]]:
    """Three rows per group; the group's name and size are written on its first row only.

    A private side reads "private (n only)", never a rate; an insufficient side's rates carry
    their intervals and the mark "insufficient evidence" beside its n.
    """
    rows = []
    for group in summary.groups:
        label = [group.column, group.group, _group_size(group, summary.champion is not None)]
        for item in group.metrics:
            ours = _est(item.value, item.low, item.high)
            theirs = _champ(item) if summary.champion else "-"
            if group.status == PRIVATE:
                ours = PRIVATE_CELL
            if summary.champion and group.champion_status == PRIVATE:
                theirs = PRIVATE_CELL
            rows.append([*label, item.name, ours, theirs, _diff(item.difference)])
            label = ["", "", ""]
    return rows


def _group_legend(summary: ReviewSummary) -> list[str]:
    """What the marks mean, when any group carries one."""
    marked = {g.status for g in summary.groups} | {g.champion_status for g in summary.groups}
    lines = []
    if "insufficient" in marked:
        lines.append(
            "  insufficient evidence: too few positives or negatives for a stable rate; shown "
            "with its interval, kept out of summaries and gates"
        )
    if PRIVATE in marked:
        lines.append("  private: fewer rows than the privacy floor; only n is shown")
    return lines


PRIVATE_CELL = "private (n only)"
_STATUS_MARK = {"private": " private", "insufficient": " insufficient evidence"}


def _group_size(group: GroupComparison, with_champion: bool) -> str:
    """'n (champion n)', marking private and insufficient cells."""

    def one(n: int | None, status: CellStatus | None) -> str:
        return ("n/a" if n is None else f"{n:,}") + _STATUS_MARK.get(status or "", "")

    text = one(group.n, group.status)
    if with_champion:
        text += f" ({one(group.champion_n, group.champion_status)})"
    return text


def _metric_row(item: Comparison, with_champion: bool) -> list[str]:
    if item.name in _COUNTS:
        count = [_count(finite_int(v)) for v in (item.value, item.champion, item.difference)]
        if item.difference is not None:
            count[2] = f"{int(item.difference):+,}"
        return [item.name, count[0], count[1] if with_champion else "-", count[2]]
    theirs = _champ(item) if with_champion else "-"
    return [item.name, _est(item.value, item.low, item.high), theirs, _diff(item.difference)]


def _gate_lines(gate: GateSummary) -> list[str]:
    if gate.passed is None:
        return [f"Gate: tag {gate.tag or 'none'}; gate/decision.json missing"]
    verdict = "passed" if gate.passed else "FAILED"
    lines = [f"Gate: {verdict} ({gate.n_clauses} clauses checked; tag {gate.tag or 'none'})"]
    lines += [f"  failed: {line}" for line in gate.failed]
    return lines


def _data_lines(data: DataChange, champion: VersionInfo | None) -> list[str]:
    rows = [["data md5", data.data_md5 or "n/a", data.champion_data_md5 or "-", ""]]
    for split in SPLITS:
        ours = data.rows.get(split)
        theirs = None if data.champion_rows is None else data.champion_rows.get(split)
        change = "" if ours is None or theirs is None else f"{ours - theirs:+,}"
        rows.append(
            [f"{split} rows", _count(ours), "-" if champion is None else _count(theirs), change]
        )
    lines = _table(["", "this version", "champion", "change"], rows)
    if champion is None:
        return lines
    lines.append(
        "same data as the champion" if data.same_data else "data differs from the champion"
    )
    changes = [
        ("features added", ", ".join(data.features_added)),
        ("features removed", ", ".join(data.features_removed)),
        ("feature kinds changed", "; ".join(data.kind_changed)),
        ("categories added", _categories(data.categories_added)),
        ("categories removed", _categories(data.categories_removed)),
    ]
    lines += [f"  {label}: {text}" for label, text in changes if text]
    return lines


def _count(value: int | None) -> str:
    return "n/a" if value is None else f"{value:,}"


def _categories(diff: Mapping[str, Sequence[str]]) -> str:
    return "; ".join(f"{name}: {', '.join(values)}" for name, values in diff.items())


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Left-aligned columns two spaces apart; the last column is not padded."""
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    return [
        "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [headers, *rows]
    ]
