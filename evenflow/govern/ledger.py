"""The promotion ledger: every decision (promote, reject, rollback), kept with the registered model.

One registered-model tag per entry, ``evenflow.ledger.NNNNNN``, never rewritten. MLflow has no
compare-and-set, so two people appending at the same instant could race; :func:`append` re-reads
the tags just before writing and checks the value afterwards, which narrows the window but cannot
close it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from mlflow import MlflowClient
from mlflow.utils.validation import MAX_MODEL_REGISTRY_TAG_VALUE_LENGTH, MAX_TAG_VAL_LENGTH
from pydantic import Field, field_validator

from evenflow.errors import PromotionRefused
from evenflow.layout import LEDGER_PREFIX
from evenflow.records import Record
from evenflow.registry import store

logger = logging.getLogger(__name__)

_LEDGER_KEY = re.compile(rf"^{re.escape(LEDGER_PREFIX)}(\d{{6}})$")

# MLflow validates registered-model tag values against MAX_MODEL_REGISTRY_TAG_VALUE_LENGTH, but
# its SQL store keeps them in a VARCHAR(5000) column (registered_model_tags.value), which
# PostgreSQL enforces; run tags stop at MAX_TAG_VAL_LENGTH. A ledger entry fits all three.
_SQL_TAG_VALUE_COLUMN = 5000
LEDGER_VALUE_LIMIT = min(
    MAX_TAG_VAL_LENGTH, MAX_MODEL_REGISTRY_TAG_VALUE_LENGTH, _SQL_TAG_VALUE_COLUMN
)
TRUNCATED = " …[truncated]"

Action = Literal["promote", "reject", "rollback"]


class LedgerEntry(Record):
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
    unrecorded_champion: str | None = Field(
        default=None,
        description=(
            "Where the champion alias pointed when it disagreed with the ledger at this decision "
            "(moved outside it; 'none': removed). A promote or rollback puts the two back in "
            "agreement."
        ),
    )

    @field_validator("at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("a ledger time must carry a timezone")
        return value.astimezone(UTC)


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


def append(client: MlflowClient, model: str, **fields: Any) -> LedgerEntry:
    """Append one entry under the next free key; an existing key is never written."""
    seq = next_seq(store.registered_model(client, model).tags)
    entry = LedgerEntry(seq=seq, **fields)
    value = encode_entry(entry)
    key = ledger_key(seq)
    if key in store.registered_model(client, model).tags:  # re-read: someone appended meanwhile
        raise PromotionRefused(f"ledger entry {key} of {model} already exists; try again")
    client.set_registered_model_tag(model, key, value)
    if store.registered_model(client, model).tags.get(key) != value:
        raise PromotionRefused(
            f"ledger entry {key} of {model} was written concurrently; check history"
        )
    return LedgerEntry.model_validate_json(value)


def decision_time(now: datetime | None) -> datetime:
    """When a decision is recorded: ``now`` in UTC, or the current time when None."""
    if now is None:
        return datetime.now(UTC)
    if now.tzinfo is None:
        raise ValueError("pass a timezone-aware time")
    return now.astimezone(UTC)
