"""The promotion ledger: every decision (promote, reject, rollback), kept with the registered model.

One registered-model tag per entry, ``evenflow.ledger.NNNNNN``, never rewritten. MLflow has no
compare-and-set, so two people appending at the same instant could race; :func:`append` re-reads
the tags just before writing and checks the value afterwards, which narrows the window but cannot
close it.

Tags can be edited or deleted by anyone with write access to the registry, so the entries form a
hash chain that makes such a change evident. Each entry carries ``sha256``, the SHA-256 of its
canonical JSON (:func:`canonical_json`), and ``prev_sha256``, the ``sha256`` of the entry before
it (:data:`GENESIS_SHA256` for the first entry of a ledger). :func:`verify_chain` finds an edited,
removed, inserted or reordered entry and names it. Entries written before the chain existed carry
no hashes: they are reported as unchained, not as tampering, and the chain starts at the first
hashed entry, whose ``prev_sha256`` is the canonical hash of the unchained entry just before it.

The chain holds no secret: whoever rewrites an entry *and* recomputes every later hash, or removes
the newest entries, leaves a chain that verifies. Compare the head (the newest entry's ``sha256``,
printed by ``evenflow history MODEL --verify``) with a copy kept outside the registry; the ledger
sequence numbers tagged on versions catch most removals from the end.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from mlflow import MlflowClient
from mlflow.utils.validation import MAX_MODEL_REGISTRY_TAG_VALUE_LENGTH, MAX_TAG_VAL_LENGTH
from pydantic import Field, ValidationError, field_validator

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

#: ``prev_sha256`` of the first entry of a ledger: there is no entry before it.
GENESIS_SHA256 = "0" * 64

#: How a ledger entry written before the hash chain is reported (it is not tampering).
UNCHAINED = "unchained (written before the hash chain)"

Action = Literal["promote", "reject", "rollback"]

_SHA256_HEX = r"^[0-9a-f]{64}$"


class BrokenLedger(PromotionRefused):
    """A decision was refused because the ledger's hash chain is broken (the entry is named)."""


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
    prev_sha256: str | None = Field(
        default=None,
        pattern=_SHA256_HEX,
        description=(
            "The previous entry's sha256 (GENESIS_SHA256 for the first entry); None: written "
            "before the hash chain."
        ),
    )
    sha256: str | None = Field(
        default=None,
        pattern=_SHA256_HEX,
        description="SHA-256 of this entry's canonical JSON; None: written before the hash chain.",
    )

    @field_validator("at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("a ledger time must carry a timezone")
        return value.astimezone(UTC)

    @property
    def chained(self) -> bool:
        """Whether the entry takes part in the hash chain (written since it exists)."""
        return self.sha256 is not None or self.prev_sha256 is not None


class ChainBreak(Record):
    """One place where the ledger is not as it was written: which entry and what is wrong."""

    seq: int = Field(description="The entry at fault (for a removal: the first one missing).")
    problem: str

    def describe(self) -> str:
        """One line naming the entry."""
        return f"entry {self.seq}: {self.problem}"


class ChainVerdict(Record):
    """The answer to ``history --verify``: intact or not, and where the chain starts and ends."""

    model: str
    unchained: tuple[int, ...] = Field(description="Entries written before the hash chain.")
    chain_start: int | None = Field(description="The first hashed entry; None: none is hashed.")
    head_seq: int | None = Field(description="The newest entry.")
    head_sha256: str | None = Field(description="Its sha256, to compare with a copy kept apart.")
    breaks: tuple[ChainBreak, ...]

    @property
    def intact(self) -> bool:
        """True when no entry was edited, removed, inserted or reordered (as far as one can tell)."""
        return not self.breaks

    def describe(self) -> list[str]:
        """The verdict in plain lines: the breaks first, then where the chain starts and ends."""
        lines = (
            [f"{self.model}: ledger BROKEN at entry {self.breaks[0].seq}"] if self.breaks else []
        )
        lines += [f"  - {item.describe()}" for item in self.breaks]
        if not self.breaks:
            lines.append(f"{self.model}: ledger intact")
        if self.unchained:
            which = "entry" if len(self.unchained) == 1 else "entries"
            lines.append(f"  {which} {_seqs(self.unchained)}: {UNCHAINED}; not verifiable")
        if self.chain_start is not None:
            lines.append(f"  the hash chain starts at entry {self.chain_start}")
        elif self.head_seq is not None:
            lines.append("  no entry is hashed yet: the chain starts with the next decision")
        if self.head_seq is not None:
            lines.append(
                f"  head: entry {self.head_seq} sha256 {self.head_sha256 or '-'} (compare with a "
                "copy kept outside the registry)"
            )
        return lines


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


def read_ledger(tags: Mapping[str, str]) -> tuple[list[LedgerEntry], list[ChainBreak]]:
    """The readable entries in key order, and a break for each tag that is no ledger entry.

    Unlike :func:`ledger_entries` it never raises: an entry edited into something unreadable is
    a finding of the verification, not a crash.
    """
    entries: list[LedgerEntry] = []
    unreadable: list[ChainBreak] = []
    for key in sorted(k for k in tags if _LEDGER_KEY.match(k)):
        try:
            entries.append(LedgerEntry.model_validate_json(tags[key]))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "value"
            problem = f"not a readable ledger entry ({where}: {first['msg']})"
            unreadable.append(ChainBreak(seq=int(key[len(LEDGER_PREFIX) :]), problem=problem))
    return entries, unreadable


def next_seq(tags: Mapping[str, str]) -> int:
    """Sequence number of the next ledger entry: one past the highest key present."""
    numbers = [int(m.group(1)) for k in tags if (m := _LEDGER_KEY.match(k))]
    return max(numbers, default=0) + 1


def canonical_json(entry: LedgerEntry) -> str:
    """The text an entry's ``sha256`` is computed over: stable across versions and platforms.

    Every field but ``sha256`` itself, fields that are None left out (so a field added later
    does not change the hash of older entries), keys sorted, separators ``,`` and ``:``, ASCII
    only (other characters as JSON ``u`` escapes), and ``at`` in UTC as ``YYYY-MM-DDTHH:MM:SS.ffffffZ``.
    """
    content: dict[str, Any] = entry.model_dump(mode="json", exclude={"sha256"}, exclude_none=True)
    content["at"] = entry.at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def entry_sha256(entry: LedgerEntry) -> str:
    """SHA-256 (hex) of the entry's canonical JSON, UTF-8 encoded."""
    return hashlib.sha256(canonical_json(entry).encode("utf-8")).hexdigest()


def chain_link(previous: LedgerEntry | None) -> str:
    """The ``prev_sha256`` an entry following ``previous`` must carry.

    The previous entry's recorded ``sha256``; for an unchained one (written before the chain),
    its canonical hash computed now, so the first hashed entry also seals the one before it.
    """
    if previous is None:
        return GENESIS_SHA256
    return previous.sha256 or entry_sha256(previous)


def sealed(entry: LedgerEntry) -> LedgerEntry:
    """The entry with its ``sha256`` set over its content as it is now."""
    return entry.model_copy(update={"sha256": entry_sha256(entry)})


def verify_chain(
    entries: Sequence[LedgerEntry], *, unreadable: Collection[int] = ()
) -> list[ChainBreak]:
    """Where the ledger (entries in key order) differs from what was appended, entry by entry.

    Finds an edited entry (its ``sha256`` no longer matches its content), a removed one (a gap
    in the sequence; ``unreadable`` entries, reported apart, are not gaps), an inserted, copied
    or reordered one (a sequence number out of order, or a ``prev_sha256`` that does not match
    the entry before it), and an unhashed entry after the chain began. Unchained entries before
    the first hashed one are not breaks. Pure: nothing is read or written.
    """
    breaks: list[ChainBreak] = []
    accounted = {entry.seq for entry in entries} | set(unreadable)
    previous: LedgerEntry | None = None
    chain_started = False
    for entry in entries:
        linked = _sequence_break(previous, entry, accounted)
        if linked is not None:
            breaks.append(linked)
        chain_started = chain_started or entry.chained
        if chain_started:
            breaks.extend(_hash_breaks(previous, entry, check_link=linked is None))
        previous = entry
    return breaks


def _sequence_break(
    previous: LedgerEntry | None, entry: LedgerEntry, accounted: Collection[int]
) -> ChainBreak | None:
    """A removed entry before ``entry``, or ``entry`` out of order; None when it follows on.

    A skipped entry found elsewhere in the ledger (``accounted``) was moved, not removed: its
    own position, and the links around it, report it.
    """
    expected = 1 if previous is None else previous.seq + 1
    if entry.seq < expected:
        after = "comes first" if previous is None else f"follows entry {previous.seq}"
        return ChainBreak(
            seq=entry.seq,
            problem=f"out of order: it {after} in the ledger (inserted, copied or reordered)",
        )
    missing = [seq for seq in range(expected, entry.seq) if seq not in accounted]
    if not missing:
        return None
    what = f"entry {missing[0]} is" if len(missing) == 1 else f"entries {_seqs(missing)} are"
    return ChainBreak(
        seq=missing[0],
        problem=f"missing: {what} not in the ledger, but entry {entry.seq} follows (removed)",
    )


def _hash_breaks(
    previous: LedgerEntry | None, entry: LedgerEntry, *, check_link: bool
) -> list[ChainBreak]:
    """An entry of the chain: its own hash, and (unless already reported) its link."""
    if entry.sha256 is None or entry.prev_sha256 is None:
        return [
            ChainBreak(
                seq=entry.seq,
                problem="carries no hash although the chain began before it (written outside "
                "evenflow, or its hashes removed)",
            )
        ]
    found = []
    if entry.sha256 != entry_sha256(entry):
        found.append(
            ChainBreak(
                seq=entry.seq,
                problem="edited: its content no longer matches its sha256 "
                f"{entry.sha256[:12]}… (recorded when it was appended)",
            )
        )
    if check_link and entry.prev_sha256 != chain_link(previous):
        before = "no entry (genesis)" if previous is None else f"entry {previous.seq}"
        found.append(
            ChainBreak(
                seq=entry.seq,
                problem=f"prev_sha256 does not match {before}: an entry before it was edited, "
                "replaced, removed or inserted",
            )
        )
    return found


def missing_tail(entries: Sequence[LedgerEntry], referenced: Mapping[int, str]) -> list[ChainBreak]:
    """Entries removed from the end: versions' tags name a ledger entry past the newest one.

    ``referenced`` maps each ledger seq named in a version's decision tags to that version.
    """
    newest = max((entry.seq for entry in entries), default=0)
    beyond = sorted(seq for seq in referenced if seq > newest)
    if not beyond:
        return []
    named = ", ".join(f"version {referenced[seq]} names entry {seq}" for seq in beyond)
    return [
        ChainBreak(
            seq=newest + 1,
            problem=f"missing: the ledger ends at entry {newest} but {named} (removed)",
        )
    ]


def verdict(
    model: str, entries: Sequence[LedgerEntry], breaks: Sequence[ChainBreak]
) -> ChainVerdict:
    """The verdict on ``model``'s ledger from its entries and every break found in them."""
    chained = [entry for entry in entries if entry.chained]
    start = chained[0].seq if chained else None
    head = entries[-1] if entries else None
    return ChainVerdict(
        model=model,
        unchained=tuple(
            e.seq for e in entries if not e.chained and (start is None or e.seq < start)
        ),
        chain_start=start,
        head_seq=None if head is None else head.seq,
        head_sha256=None if head is None else head.sha256,
        breaks=tuple(sorted(breaks, key=lambda item: item.seq)),
    )


def verify_tags(model: str, tags: Mapping[str, str]) -> ChainVerdict:
    """Read and verify the ledger kept in ``model``'s registered-model tags."""
    entries, unreadable = read_ledger(tags)
    found = verify_chain(entries, unreadable={item.seq for item in unreadable})
    return verdict(model, entries, [*unreadable, *found])


def refuse_broken(checked: ChainVerdict) -> None:
    """Refuse to append a decision to a broken ledger: the break would be buried under it.

    Raises:
        BrokenLedger: Naming the first broken entry and how to inspect the ledger.
    """
    if checked.intact:
        return
    first = checked.breaks[0]
    more = f" (and {len(checked.breaks) - 1} more)" if len(checked.breaks) > 1 else ""
    raise BrokenLedger(
        f"the promotion ledger of {checked.model} is broken at {first.describe()}{more}; no "
        f"decision is appended to a broken ledger. Inspect it with `evenflow history "
        f"{checked.model} --verify`, and restore the registered-model tag {ledger_key(first.seq)} "
        "from an audit bundle or a registry backup"
    )


def encode_entry(entry: LedgerEntry, limit: int = LEDGER_VALUE_LIMIT) -> str:
    """Compact JSON of an entry, shortening the note (then the override) to fit ``limit``.

    A chained entry is sealed after shortening, so its ``sha256`` covers what is stored.
    """
    entry = _sealed_if_chained(entry)
    value = entry.model_dump_json()
    for field in ("note", "override"):
        if len(value) <= limit:
            break
        text = getattr(entry, field)
        if not text:
            continue
        keep = max(0, len(text) - (len(value) - limit) - len(TRUNCATED))
        entry = _sealed_if_chained(entry.model_copy(update={field: text[:keep] + TRUNCATED}))
        value = entry.model_dump_json()
        logger.warning("ledger entry %d: %s truncated to fit a tag value", entry.seq, field)
    if len(value) > limit:
        raise PromotionRefused(f"a ledger entry must fit {limit} characters; shorten the fields")
    return value


def _sealed_if_chained(entry: LedgerEntry) -> LedgerEntry:
    return sealed(entry) if entry.prev_sha256 is not None else entry


def append(client: MlflowClient, model: str, **fields: Any) -> LedgerEntry:
    """Append one entry under the next free key, chained to the newest; a key is never rewritten.

    Raises:
        BrokenLedger: The ledger's hash chain is broken (:func:`refuse_broken`).
        PromotionRefused: Someone appended meanwhile.
    """
    tags = store.registered_model(client, model).tags
    checked = verify_tags(model, tags)
    refuse_broken(checked)
    entries = ledger_entries(tags)
    seq = next_seq(tags)
    previous = entries[-1] if entries else None
    entry = LedgerEntry(seq=seq, prev_sha256=chain_link(previous), **fields)
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


def _seqs(numbers: Sequence[int]) -> str:
    """Sequence numbers as ranges: ``1-3, 5``."""
    ranges: list[list[int]] = []
    for number in sorted(numbers):
        if ranges and number == ranges[-1][1] + 1:
            ranges[-1][1] = number
        else:
            ranges.append([number, number])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in ranges)
