"""Review, promotion, rejection, rollback and the ledger, on a real MLflow registry (SQLite).

Versions are made cheaply by tests/unit/conftest.py's ``make``: a run whose artifacts are real
evaluation, fairness and gate outputs of small synthetic predictions, registered without a model.
"""

from __future__ import annotations

from typing import Any

import pytest

from evenflow import layout
from evenflow.config.settings import EvenflowSettings
from evenflow.errors import PromotionRefused
from evenflow.govern.evidence import evidence_digest
from evenflow.govern.ledger import (
    GENESIS_SHA256,
    LEDGER_VALUE_LIMIT,
    TRUNCATED,
    LedgerEntry,
    encode_entry,
    ledger_key,
    next_seq,
    sealed,
)
from evenflow.govern.promotion import promotion_refusal, rollback_target
from evenflow.govern.review import review
from evenflow.io import file_sha256
from evenflow.layout import CARD_HTML, CARD_MARKDOWN, REVIEWED_SHA_TAG
from evenflow.registry import store as registry
from evenflow.reports.review import render_history, render_review, review_description
from evenflow.usecases.champion import history, promote, reject, rollback
from evenflow.usecases.review import record_review
from tests.unit.conftest import NOW, ledger_entry

EVIDENCE = {
    CARD_HTML,
    CARD_MARKDOWN,
    "reports/metrics.json",
    "reports/groups.json",
    "reports/fairness/fairness.json",
    "gate/decision.json",
}


def _reviewed(settings: EvenflowSettings, model: str, version: str) -> None:
    record_review(settings, model, version, review(settings, model, version), now=NOW)


def _champion(settings: EvenflowSettings, model: str) -> str:
    client = registry.client_for(settings)
    return str(client.get_model_version_by_alias(model, layout.CHAMPION).version)


def _ledger_tags(settings: EvenflowSettings, model: str) -> dict[str, str]:
    tags = registry.client_for(settings).get_registered_model(model).tags
    return {k: v for k, v in tags.items() if k.startswith("evenflow.ledger.")}


# --- review ---------------------------------------------------------------------------------


def test_review_compares_candidate_with_champion(
    settings: EvenflowSettings, model: str, make: Any
) -> None:
    old = make(seed=1)
    registry.client_for(settings).set_registered_model_alias(model, layout.CHAMPION, old.version)
    new = make(
        seed=2,
        shift=0.05,
        rows=1200,
        features={"age": (), "workclass": ("Private", "Self-emp"), "hours": ()},
    )

    summary = review(settings, model)  # the candidate by default

    assert summary.version.version == new.version
    assert summary.champion is not None
    assert summary.champion.version == old.version
    auc = next(m for m in summary.metrics if m.name == "roc_auc")
    assert auc.value == pytest.approx(new.metrics["roc_auc"])
    assert auc.champion == pytest.approx(old.metrics["roc_auc"])
    assert auc.difference == pytest.approx(new.metrics["roc_auc"] - old.metrics["roc_auc"])
    recall = next(m for m in summary.metrics if m.name == "recall")
    assert recall.low is not None and recall.high is not None  # from the fairness report
    female = next(g for g in summary.groups if (g.column, g.group) == ("sex", "Female"))
    ours = next(r for r in new.groups if r["group"] == "Female")
    theirs = next(r for r in old.groups if r["group"] == "Female")
    for item in female.metrics:
        assert item.value == pytest.approx(ours[item.name])
        assert item.difference == pytest.approx(ours[item.name] - theirs[item.name])
        assert item.low is not None and item.low <= item.high  # type: ignore[operator]
    assert summary.gate.passed is True
    assert summary.gate.tag == "passed"
    data = summary.data
    assert data.same_data is False
    assert data.rows == {"train": 1200, "valid": 240, "test": 240}
    assert data.champion_rows == {"train": 1000, "valid": 200, "test": 200}
    assert data.features_added == ("hours",)
    assert data.features_removed == ()
    assert data.categories_added == {"workclass": ("Self-emp",)}
    assert data.categories_removed == {"workclass": ("State-gov",)}
    assert summary.model_card.run_id == new.run_id
    assert summary.model_card.present == (CARD_HTML, CARD_MARKDOWN)
    assert set(summary.evidence.files) == EVIDENCE
    assert summary.evidence.files["reports/metrics.json"] == file_sha256(
        new.folder / "reports" / "metrics.json"
    )
    assert summary.evidence.sha256 == evidence_digest(summary.evidence.files)
    assert summary.missing == ()

    text = render_review(summary)
    assert f"vs champion v{old.version}" in text
    assert f"{auc.difference:+.4f}" in text
    assert "features added: hours" in text
    assert "categories added: workclass: Self-emp" in text
    assert new.run_id in text


def test_review_without_champion_and_record(
    settings: EvenflowSettings, model: str, make: Any
) -> None:
    made = make()
    summary = review(settings, model, made.version)
    assert summary.champion is None
    assert all(m.champion is None and m.difference is None for m in summary.metrics)
    assert summary.data.same_data is None
    assert "no champion yet" in render_review(summary)

    record_review(settings, model, made.version, summary, now=NOW)

    version = registry.client_for(settings).get_model_version(model, made.version)
    assert version.tags[REVIEWED_SHA_TAG] == summary.evidence.sha256
    assert version.tags["evenflow.reviewed_at"] == NOW.isoformat()
    assert version.description.startswith(f"**Review of {model} v{made.version}**")
    assert "| metric | this version | champion | difference |" in version.description
    assert summary.evidence.sha256 in version.description
    assert "```" not in version.description  # Markdown tables, not a terminal dump
    short = review_description(summary, limit=400)  # model_versions.description is VARCHAR(5000)
    assert len(short) <= 400
    assert short.endswith(TRUNCATED)


def test_review_shows_a_failed_gate(settings: EvenflowSettings, model: str, make: Any) -> None:
    made = make(passed=False)
    summary = review(settings, model, made.version)
    assert summary.gate.passed is False
    assert summary.gate.failed and summary.gate.failed[0].startswith("min_auc")
    assert "Gate: FAILED" in render_review(summary)


# --- promote --------------------------------------------------------------------------------


def test_promote_sets_champion_and_writes_the_ledger(
    settings: EvenflowSettings, model: str, make: Any
) -> None:
    made = make()
    summary = review(settings, model, made.version)
    record_review(settings, model, made.version, summary, now=NOW)

    entry = promote(settings, model, made.version, "ada", "looks fair", now=NOW)

    assert _champion(settings, model) == made.version
    assert entry == sealed(
        LedgerEntry(
            seq=1,
            action="promote",
            version=made.version,
            previous_champion=None,
            reviewer="ada",
            at=NOW,
            note="looks fair",
            evidence_sha256=summary.evidence.sha256,
            prev_sha256=GENESIS_SHA256,  # the first entry of the hash chain
        )
    )
    assert history(settings, model) == [entry]
    tags = registry.client_for(settings).get_model_version(model, made.version).tags
    assert tags["evenflow.promoted_by"] == "ada"
    assert tags["evenflow.promoted_evidence_sha256"] == summary.evidence.sha256
    assert tags["evenflow.promotion_note"] == "looks fair"
    assert "evenflow.promotion_override" not in tags


def test_promote_refuses_a_failed_version_unless_overridden(
    settings: EvenflowSettings, model: str, make: Any
) -> None:
    made = make(passed=False)
    _reviewed(settings, model, made.version)

    with pytest.raises(PromotionRefused, match="failed its gates"):
        promote(settings, model, made.version, "ada", "ship it")
    assert not _ledger_tags(settings, model)

    entry = promote(
        settings, model, made.version, "ada", "ship it", override="legal sign-off #12", now=NOW
    )
    assert entry.override == "legal sign-off #12"
    assert _champion(settings, model) == made.version
    tags = registry.client_for(settings).get_model_version(model, made.version).tags
    assert tags["evenflow.promotion_override"] == "legal sign-off #12"


def test_promote_refuses_an_unreviewed_version(
    settings: EvenflowSettings, model: str, make: Any
) -> None:
    made = make()
    with pytest.raises(PromotionRefused, match="never reviewed"):
        promote(settings, model, made.version, "ada", "ok")
    assert not _ledger_tags(settings, model)


def test_promote_refuses_when_evidence_changed_after_review(
    settings: EvenflowSettings, model: str, make: Any
) -> None:
    made = make()
    _reviewed(settings, model, made.version)
    metrics = made.folder / "reports" / "metrics.json"
    metrics.write_text(metrics.read_text(encoding="utf-8").replace("0.", "0.9", 1), "utf-8")
    registry.client_for(settings).log_artifact(made.run_id, str(metrics), "reports")

    with pytest.raises(PromotionRefused, match=r"reports/metrics\.json \(changed\)"):
        promote(settings, model, made.version, "ada", "ok")

    _reviewed(settings, model, made.version)  # reviewing again binds the new evidence
    assert promote(settings, model, made.version, "ada", "ok").action == "promote"


def test_promote_refuses_the_current_champion(
    settings: EvenflowSettings, model: str, make: Any
) -> None:
    made = make()
    _reviewed(settings, model, made.version)
    promote(settings, model, made.version, "ada", "ok")
    with pytest.raises(PromotionRefused, match="already the champion"):
        promote(settings, model, made.version, "ada", "again")


# --- reject and rollback --------------------------------------------------------------------


def test_reject_is_recorded_and_leaves_the_champion(
    settings: EvenflowSettings, model: str, make: Any
) -> None:
    old, new = make(seed=1), make(seed=2)
    _reviewed(settings, model, old.version)
    promote(settings, model, old.version, "ada", "first")

    entry = reject(settings, model, new.version, "bob", "recall dropped for women", now=NOW)

    assert entry.action == "reject"
    assert entry.seq == 2
    assert entry.previous_champion == old.version
    assert entry.evidence_sha256 == review(settings, model, new.version).evidence.sha256
    assert _champion(settings, model) == old.version
    version = registry.client_for(settings).get_model_version(model, new.version)
    assert version.tags["evenflow.rejected_by"] == "bob"
    assert version.tags["evenflow.rejection_note"] == "recall dropped for women"
    assert layout.CANDIDATE in version.aliases  # nothing removed


def test_rollback_restores_the_previous_champion(
    settings: EvenflowSettings, model: str, make: Any
) -> None:
    first, second = make(seed=1), make(seed=2)
    for made in (first, second):
        _reviewed(settings, model, made.version)
        promote(settings, model, made.version, "ada", f"promote {made.version}")

    entry = rollback(settings, model, "bob", "alerts on v2", now=NOW)

    assert _champion(settings, model) == first.version
    assert (entry.action, entry.version, entry.previous_champion) == (
        "rollback",
        first.version,
        second.version,
    )
    demoted = registry.client_for(settings).get_model_version(model, second.version)
    assert demoted.tags["evenflow.rollback_note"] == "alerts on v2"
    # The first champion replaced nobody: a second rollback has nowhere to go.
    with pytest.raises(PromotionRefused, match="no previous champion"):
        rollback(settings, model, "bob", "again")
    assert [e.action for e in history(settings, model)] == ["promote", "promote", "rollback"]


def test_rollback_without_previous_champion_is_refused(
    settings: EvenflowSettings, model: str, make: Any
) -> None:
    made = make()
    with pytest.raises(PromotionRefused, match="no champion"):
        rollback(settings, model, "bob", "nothing to undo")
    _reviewed(settings, model, made.version)
    promote(settings, model, made.version, "ada", "first")
    with pytest.raises(PromotionRefused, match="no previous champion"):
        rollback(settings, model, "bob", "undo")
    assert _champion(settings, model) == made.version
    assert len(history(settings, model)) == 1


# --- the ledger -----------------------------------------------------------------------------


def test_ledger_is_append_only_and_ordered(
    settings: EvenflowSettings, model: str, make: Any
) -> None:
    first, second = make(seed=1), make(seed=2)
    snapshots = []
    _reviewed(settings, model, first.version)
    promote(settings, model, first.version, "ada", "one")
    snapshots.append(_ledger_tags(settings, model))
    reject(settings, model, second.version, "bob", "two")
    snapshots.append(_ledger_tags(settings, model))
    _reviewed(settings, model, second.version)
    promote(settings, model, second.version, "cy", "three")
    snapshots.append(_ledger_tags(settings, model))
    rollback(settings, model, "dee", "four")
    final = _ledger_tags(settings, model)

    for earlier in snapshots:  # every key written stays, byte for byte
        assert {k: final[k] for k in earlier} == earlier
    assert sorted(final) == [ledger_key(i) for i in range(1, 5)]
    entries = history(settings, model)
    assert [(e.seq, e.note) for e in entries] == [(1, "one"), (2, "two"), (3, "three"), (4, "four")]
    assert all(len(value) <= LEDGER_VALUE_LIMIT for value in final.values())


def test_long_notes_are_truncated_to_fit_a_tag(
    settings: EvenflowSettings, model: str, make: Any
) -> None:
    made = make()
    _reviewed(settings, model, made.version)
    entry = promote(settings, model, made.version, "ada", "x" * 20_000)
    assert entry.note.endswith(TRUNCATED)
    assert len(_ledger_tags(settings, model)[ledger_key(1)]) <= LEDGER_VALUE_LIMIT


def test_history_renders(settings: EvenflowSettings, model: str, make: Any) -> None:
    made = make()
    _reviewed(settings, model, made.version)
    promote(settings, model, made.version, "ada", "looks fair", now=NOW)
    reject(settings, model, made.version, "bob", "second thoughts", now=NOW)

    lines = render_history(history(settings, model)).splitlines()

    assert lines[0].split() == [
        "seq",
        "at",
        "(UTC)",
        "action",
        "version",
        "previous",
        "reviewer",
        "evidence",
        "override",
        "note",
    ]
    assert lines[1].split()[:5] == ["1", "2025-03-01", "12:00:00Z", "promote", made.version]
    assert lines[2].split()[3:7] == ["reject", made.version, made.version, "bob"]
    assert lines[1].index("promote") == lines[0].index("action")  # aligned
    assert render_history([]) == "No promotion decisions recorded."


# --- pure decisions -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("gate", "reviewed", "override", "expected"),
    [
        ("passed", "abc", None, None),
        ("failed", "abc", None, "failed its gates"),
        (None, "abc", None, "no gate result"),
        ("failed", "abc", "reason", None),
        ("failed", "abc", "  ", "needs a reason"),
        ("passed", None, None, "never reviewed"),
        ("passed", "old", None, "evidence changed"),
    ],
)
def test_promotion_refusal(
    gate: str | None, reviewed: str | None, override: str | None, expected: str | None
) -> None:
    reason = promotion_refusal(gate, reviewed, "abc", override)
    if expected is None:
        assert reason is None
    else:
        assert reason is not None and expected in reason


def test_rollback_target_follows_the_latest_promote() -> None:
    entries = [
        ledger_entry(1, "promote", "1", None),
        ledger_entry(2, "promote", "2", "1"),
        ledger_entry(3, "promote", "3", "2"),
        ledger_entry(4, "rollback", "2", "3"),
    ]
    assert rollback_target(entries, "2") == "1"  # not back to 3
    assert rollback_target(entries[:3], "3") == "2"
    assert rollback_target(entries, "1") is None
    assert rollback_target(entries, "9") is None


def test_evidence_digest_binds_paths_and_bytes() -> None:
    files = {"a.json": "1" * 64, "b.json": "2" * 64}
    assert evidence_digest(files) == evidence_digest(dict(reversed(files.items())))
    assert evidence_digest(files) != evidence_digest({"c.json": "1" * 64, "b.json": "2" * 64})
    assert evidence_digest(files) != evidence_digest({**files, "b.json": "3" * 64})


def test_next_seq_and_encoding() -> None:
    tags = {ledger_key(1): "{}", ledger_key(7): "{}", "evenflow.ledger.x": "", "other": ""}
    assert next_seq(tags) == 8
    assert next_seq({}) == 1
    entry = ledger_entry(1, "promote", "1", None).model_copy(update={"note": "é" * 9000})
    value = encode_entry(entry, limit=500)
    assert len(value) <= 500
    assert LedgerEntry.model_validate_json(value).note.endswith(TRUNCATED)
