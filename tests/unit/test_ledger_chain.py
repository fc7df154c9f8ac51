"""The ledger's hash chain: pure verification, and tampering with a real MLflow registry (SQLite).

Tampering is done as anyone with write access would: ``MlflowClient.set_registered_model_tag``
to edit an entry, ``delete_registered_model_tag`` to remove one. Versions are made cheaply by
tests/unit/conftest.py's ``make`` (artifacts of synthetic predictions, no model), each its own seed.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from evenflow.config.settings import EvenflowSettings
from evenflow.govern.ledger import (
    GENESIS_SHA256,
    TRUNCATED,
    UNCHAINED,
    BrokenLedger,
    LedgerEntry,
    canonical_json,
    chain_link,
    encode_entry,
    entry_sha256,
    ledger_key,
    sealed,
    verify_chain,
)
from evenflow.registry import store as registry
from evenflow.usecases import champion
from tests.unit.conftest import NOW, TRAINER, promote_reviewed, run_cli


@pytest.fixture
def trainer() -> str:
    """Versions trained by someone other than the reviewer, so promoting them is allowed."""
    return TRAINER


def _fields(seq: int, note: str = "n") -> dict[str, Any]:
    return {
        "seq": seq,
        "action": "promote",
        "version": str(seq),
        "previous_champion": None if seq == 1 else str(seq - 1),
        "reviewer": "ada",
        "at": NOW,
        "note": note,
        "evidence_sha256": None,
    }


def _chain(count: int, *, unchained: int = 0) -> list[LedgerEntry]:
    """``unchained`` entries as written before the chain, then chained ones, as append writes."""
    entries: list[LedgerEntry] = []
    for seq in range(1, count + 1):
        entry = LedgerEntry.model_validate(_fields(seq, note=f"note {seq}"))
        if seq > unchained:
            previous = entries[-1] if entries else None
            entry = sealed(entry.model_copy(update={"prev_sha256": chain_link(previous)}))
        entries.append(entry)
    return entries


def _problems(entries: list[LedgerEntry]) -> list[tuple[int, str]]:
    return [(item.seq, item.problem.split(":")[0]) for item in verify_chain(entries)]


def _edit(settings: EvenflowSettings, model: str, seq: int, **changes: Any) -> None:
    """Rewrite one entry's tag as someone with registry access could, keeping its hashes."""
    client = registry.client_for(settings)
    key = ledger_key(seq)
    value = json.loads(client.get_registered_model(model).tags[key])
    client.set_registered_model_tag(model, key, json.dumps({**value, **changes}))


# --- the chain (pure) -----------------------------------------------------------------------


def test_canonical_json_is_pinned() -> None:
    """The documented canonical form: a change to it would break every recorded hash."""
    entry = LedgerEntry.model_validate({**_fields(1, note="é"), "prev_sha256": GENESIS_SHA256})
    assert canonical_json(entry) == (
        '{"action":"promote","at":"2025-03-01T12:00:00.000000Z","note":"\\u00e9",'
        f'"prev_sha256":"{GENESIS_SHA256}","reviewer":"ada","seq":1,"version":"1"}}'
    )
    assert entry_sha256(entry) == entry_sha256(sealed(entry))  # sha256 is not hashed itself
    later = entry.model_copy(update={"at": datetime(2025, 3, 1, 13, 0, tzinfo=UTC)})
    assert entry_sha256(later) != entry_sha256(entry)


def test_an_intact_chain_has_no_breaks() -> None:
    entries = _chain(4)
    assert entries[0].prev_sha256 == GENESIS_SHA256
    assert [e.prev_sha256 for e in entries[1:]] == [e.sha256 for e in entries[:-1]]
    assert verify_chain(entries) == []
    assert verify_chain([]) == []


def test_an_edited_entry_is_named_once() -> None:
    entries = _chain(4)
    entries[1] = entries[1].model_copy(update={"note": "edited afterwards"})
    assert _problems(entries) == [(2, "edited")]


def test_an_edit_with_its_hash_recomputed_breaks_the_next_link() -> None:
    entries = _chain(4)
    entries[1] = sealed(entries[1].model_copy(update={"reviewer": "mallory"}))
    assert _problems(entries) == [(3, "prev_sha256 does not match entry 2")]


def test_a_removed_entry_is_named_by_its_gap() -> None:
    entries = _chain(5)
    assert _problems([*entries[:2], *entries[3:]]) == [(3, "missing")]
    assert _problems(entries[1:]) == [(1, "missing")]
    breaks = verify_chain([entries[0], entries[4]])
    assert [b.describe() for b in breaks] == [
        "entry 2: missing: entries 2-4 are not in the ledger, but entry 5 follows (removed)"
    ]


def test_an_inserted_or_reordered_entry_is_named() -> None:
    entries = _chain(4)
    assert _problems([entries[0], entries[2], entries[1], entries[3]]) == [
        (3, "prev_sha256 does not match entry 1"),
        (2, "out of order"),
        (4, "prev_sha256 does not match entry 2"),
    ]
    copied = [*entries, entries[1]]  # entry 2's value written again under key 5
    assert _problems(copied) == [(2, "out of order")]
    forged = LedgerEntry.model_validate(_fields(5))  # appended without hashes
    assert _problems([*entries, forged]) == [
        (
            5,
            "carries no hash although the chain began before it (written outside evenflow, or its hashes removed)",
        )
    ]


def test_entries_before_the_chain_are_not_tampering() -> None:
    entries = _chain(4, unchained=2)
    assert [e.chained for e in entries] == [False, False, True, True]
    assert entries[2].prev_sha256 == entry_sha256(entries[1])  # seals the entry before it
    assert verify_chain(entries) == []
    assert verify_chain(entries[:2]) == []
    edited = [entries[0], entries[1].model_copy(update={"note": "x"}), *entries[2:]]
    assert _problems(edited) == [(3, "prev_sha256 does not match entry 2")]


def test_a_truncated_note_is_sealed_as_stored() -> None:
    entry = LedgerEntry.model_validate(
        {**_fields(1, note="é" * 9000), "prev_sha256": GENESIS_SHA256}
    )
    stored = LedgerEntry.model_validate_json(encode_entry(entry, limit=500))
    assert stored.note.endswith(TRUNCATED)
    assert stored.sha256 == entry_sha256(stored)
    assert verify_chain([stored]) == []


# --- a real registry ------------------------------------------------------------------------


def test_promotions_chain_and_verify(settings: EvenflowSettings, model: str, make: Any) -> None:
    first, second = make(seed=1), make(seed=2)
    one = promote_reviewed(settings, model, first.version, "first")
    two = promote_reviewed(settings, model, second.version, "second")

    assert (one.prev_sha256, two.prev_sha256) == (GENESIS_SHA256, one.sha256)
    assert two.sha256 == entry_sha256(two)
    verdict = champion.verify(settings, model)
    assert verdict.intact and verdict.chain_start == 1 and verdict.unchained == ()
    assert (verdict.head_seq, verdict.head_sha256) == (2, two.sha256)

    result = run_cli(settings, "history", model, "--verify")
    assert result.exit_code == 0, result.output
    assert f"{model}: ledger intact" in result.output
    assert f"head: entry 2 sha256 {two.sha256}" in result.output
    assert "prev sha256" in result.output.splitlines()[0]


def test_an_edited_note_is_named_and_blocks_decisions(
    settings: EvenflowSettings, model: str, make: Any
) -> None:
    first, second = make(seed=1), make(seed=2)
    promote_reviewed(settings, model, first.version, "first")
    promote_reviewed(settings, model, second.version, "second")
    _edit(settings, model, 1, note="approved by the board")

    verdict = champion.verify(settings, model)
    assert [(b.seq, b.problem.split(":")[0]) for b in verdict.breaks] == [(1, "edited")]
    result = run_cli(settings, "history", model, "--verify")
    assert result.exit_code == 1, result.output
    assert f"{model}: ledger BROKEN at entry 1" in result.output
    assert "entry 1: edited" in result.output
    assert "approved by the board" in result.output  # the ledger is still shown

    with pytest.raises(BrokenLedger, match=r"broken at entry 1: edited") as refused:
        champion.rollback(settings, model, "bob", "undo")
    assert f"evenflow history {model} --verify" in str(refused.value)
    assert len(champion.history(settings, model)) == 2  # nothing appended
    plain = run_cli(settings, "history", model)  # without --verify: the table, and a warning
    assert plain.exit_code == 0, plain.output
    assert "warning: the ledger is broken at entry 1: edited" in plain.stderr


def test_a_removed_entry_is_named(settings: EvenflowSettings, model: str, make: Any) -> None:
    versions = [make(seed=seed) for seed in (1, 2, 3)]
    for number, made in enumerate(versions):
        promote_reviewed(settings, model, made.version, f"promotion {number}")
    client = registry.client_for(settings)

    client.delete_registered_model_tag(model, ledger_key(2))
    breaks = champion.verify(settings, model).breaks
    assert [b.describe() for b in breaks] == [
        "entry 2: missing: entry 2 is not in the ledger, but entry 3 follows (removed)"
    ]

    client.delete_registered_model_tag(model, ledger_key(3))  # the newest: no entry follows
    result = run_cli(settings, "history", model, "--verify")
    assert result.exit_code == 1, result.output
    named = ", ".join(f"version {m.version} names entry {i}" for i, m in enumerate(versions, 1))
    assert (
        f"entry 2: missing: the ledger ends at entry 1 but {named.split(', ', 1)[1]} (removed)"
    ) in result.output


def test_the_chain_starts_after_entries_written_before_it(
    settings: EvenflowSettings, model: str, make: Any
) -> None:
    first, second = make(seed=1), make(seed=2)
    promote_reviewed(settings, model, first.version, "first")
    client = registry.client_for(settings)
    old = LedgerEntry.model_validate_json(client.get_registered_model(model).tags[ledger_key(1)])
    legacy = old.model_copy(update={"prev_sha256": None, "sha256": None})  # as written before
    client.set_registered_model_tag(model, ledger_key(1), legacy.model_dump_json())

    two = promote_reviewed(settings, model, second.version, "second")

    assert two.prev_sha256 == entry_sha256(legacy)
    verdict = champion.verify(settings, model)
    assert verdict.intact and (verdict.unchained, verdict.chain_start) == ((1,), 2)
    result = run_cli(settings, "history", model, "--verify")
    assert result.exit_code == 0, result.output
    assert f"entry 1: {UNCHAINED}" in result.output
    assert "the hash chain starts at entry 2" in result.output


def test_an_unreadable_entry_is_named(settings: EvenflowSettings, model: str, make: Any) -> None:
    promote_reviewed(settings, model, make(seed=1).version, "first")
    registry.client_for(settings).set_registered_model_tag(model, ledger_key(1), "{not json")
    result = run_cli(settings, "history", model, "--verify")
    assert result.exit_code == 1, result.output
    assert "entry 1: not a readable ledger entry" in result.output
