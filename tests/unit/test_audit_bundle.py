"""The audit bundle on a real MLflow registry (SQLite): built, verified, and caught when tampered with.

One version is made cheaply (tests/unit/conftest.py's make_version), reviewed and promoted so the
ledger has an entry, and bundled once per module; each test tampers with its own copy of the zip. The test
that edits the registry's ledger runs last and on its own model, so it spoils nothing shared.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import zipfile
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from evenflow import layout
from evenflow.config.settings import EvenflowSettings
from evenflow.govern.annex_iv import ITEMS, UNANSWERED, annex_iv_table
from evenflow.govern.ledger import ledger_key
from evenflow.io import file_sha256
from evenflow.registry import store as registry
from evenflow.usecases.audit import MANIFEST_NAME, BundleManifest, build_bundle
from evenflow.usecases.audit_verify import verify_bundle
from tests.conftest import make_champion
from tests.unit.conftest import Made, make_version, run_cli

MODEL = "audited"


@pytest.fixture(scope="module")
def made(settings: EvenflowSettings, tmp_path_factory: pytest.TempPathFactory) -> Made:
    """A version with a validation result and a row-level file, reviewed and made champion."""
    folder = tmp_path_factory.mktemp("version")
    made = make_version(settings, MODEL, folder)
    client = registry.client_for(settings)
    validation = folder / "validation"
    validation.mkdir()
    result = {
        "success": True,
        "suite_name": MODEL,
        "results": [
            {
                "success": True,
                "expectation_config": {
                    "type": "expect_column_to_exist",
                    "kwargs": {"column": "age"},
                },
            }
        ],
    }
    (validation / layout.VALIDATION_RESULT_FILE).write_text(json.dumps(result), encoding="utf-8")
    client.log_artifacts(made.run_id, str(validation), layout.VALIDATION_DIR)
    rows = folder / layout.PREDICTIONS_FILE
    pd.DataFrame({"score": [0.1, 0.9], "sex": ["Female", "Male"]}).to_parquet(rows)
    client.log_artifact(made.run_id, str(rows), layout.PREDICTIONS_DIR)
    make_champion(settings, MODEL, made.version)
    return made


@pytest.fixture(scope="module")
def bundle(
    settings: EvenflowSettings, made: Made, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, BundleManifest]:
    out = tmp_path_factory.mktemp("bundle") / "bundle.zip"
    return out, build_bundle(settings, MODEL, made.version, out)


@pytest.fixture
def copy(bundle: tuple[Path, BundleManifest], tmp_path: Path) -> Path:
    """This test's own copy of the bundle, to tamper with."""
    return Path(shutil.copy(bundle[0], tmp_path / "bundle.zip"))


def _rewrite(zip_path: Path, change: Any) -> None:
    """Rewrite the zip with ``change(name, data)`` deciding each member (None drops it)."""
    with zipfile.ZipFile(zip_path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    with zipfile.ZipFile(zip_path, "w") as archive:
        for name, data in members.items():
            kept = change(name, data)
            if kept is not None:
                archive.writestr(name, kept)


def test_a_bundle_holds_the_evidence_hashed_and_verifies(
    settings: EvenflowSettings, made: Made, bundle: tuple[Path, BundleManifest]
) -> None:
    out, manifest = bundle
    assert manifest.run_id == made.run_id and manifest.version == made.version
    with zipfile.ZipFile(out) as archive:
        names = set(archive.namelist())
        assert json.loads(archive.read(MANIFEST_NAME))["run_id"] == made.run_id
        for item in manifest.files:
            assert hashlib.sha256(archive.read(item.path)).hexdigest() == item.sha256
        ledger = json.loads(archive.read("registry/ledger/000001.json"))
        lineage = json.loads(archive.read("registry/lineage.json"))
        contract = json.loads(archive.read("contract/expectations.json"))
    assert names == {f.path for f in manifest.files} | {MANIFEST_NAME}
    for evidence in (*layout.EVIDENCE_FILES, layout.MANIFEST, layout.METRICS, "README.md"):
        assert evidence in names
    # The card in the bundle is the registry's card, byte for byte.
    card = next(f for f in manifest.files if f.path == layout.CARD_HTML)
    assert card.sha256 == file_sha256(made.folder / "model_card" / "model_card.html")
    assert ledger["action"] == "promote" and ledger["version"] == made.version
    assert lineage["lineage_tags"][layout.DATA_MD5_TAG] is None  # recorded as the run has it
    assert contract["expectations"][0]["kwargs"] == {"column": "age"}
    # Row-level predictions travel as a hash only; the environment's absence is said.
    assert [w.artifact for w in manifest.withheld] == [layout.PREDICTIONS]
    assert any("model/requirements.txt" in a for a in manifest.absent)

    result = verify_bundle(settings, out)
    assert result.ok, result.findings
    assert result.files_checked == len(manifest.files)
    assert result.artifacts_checked >= 8 and result.ledger_entries_checked == 1


def test_a_changed_byte_fails_naming_the_file(settings: EvenflowSettings, copy: Path) -> None:
    def flip(name: str, data: bytes) -> bytes:
        return data[:-1] + bytes([data[-1] ^ 1]) if name == layout.METRICS else data

    _rewrite(copy, flip)
    result = verify_bundle(settings, copy, registry=False)
    assert [f.subject for f in result.findings] == [layout.METRICS]
    assert "changed" in result.findings[0].problem


def test_a_removed_or_added_file_fails_naming_it(settings: EvenflowSettings, copy: Path) -> None:
    _rewrite(copy, lambda name, data: None if name == layout.DECISION else data)
    with zipfile.ZipFile(copy, "a") as archive:
        archive.writestr("reports/extra.json", b"{}")
    result = verify_bundle(settings, copy, registry=False)
    problems = {f.subject: f.problem for f in result.findings}
    assert problems == {
        layout.DECISION: "missing from the bundle",
        "reports/extra.json": "in the bundle but not in its manifest",
    }


def test_the_annex_iv_table_names_files_for_what_it_claims(
    bundle: tuple[Path, BundleManifest],
) -> None:
    manifest = bundle[1]
    files = {f.path for f in manifest.files}
    rows = {row.item: row for row in manifest.annex_iv}
    assert set(rows) == {item.item for item in ITEMS}
    for row in manifest.annex_iv:
        if row.status == UNANSWERED:
            assert not row.files and row.team_must_supply
        else:
            assert row.files and set(row.files) <= files, row.item
    unanswered = {item for item, row in rows.items() if row.status == UNANSWERED}
    # What only the provider can write is never claimed by the bundle.
    assert {"Annex IV 5", "Annex IV 7", "Annex IV 8", "Annex IV 9"} <= unanswered
    assert rows["Annex IV 1(a)"].status == "partly answered"
    assert "intended purpose" in (rows["Annex IV 1(a)"].team_must_supply or "")
    assert rows["Art. 14"].status == "answered"
    assert "registry/ledger/000001.json" in rows["Art. 14"].files
    # This version has no explanations: Art. 13 names only the card, and a version without a
    # card or explanations would leave it unanswered, saying which files it lacked.
    assert rows["Art. 13"].files == (layout.CARD_HTML, layout.CARD_MARKDOWN)
    (bare,) = annex_iv_table([], [i for i in ITEMS if i.item == "Art. 13"])
    assert bare.status == UNANSWERED and "explanations/*" in (bare.team_must_supply or "")


def test_the_cli_bundles_and_verifies_with_exit_codes(
    settings: EvenflowSettings, made: Made, tmp_path: Path, copy: Path
) -> None:
    out = tmp_path / "cli.zip"
    built = run_cli(settings, "audit", MODEL, made.version, "--out", str(out))
    assert built.exit_code == 0, built.output
    assert f"audit verify {out}" in built.output
    assert f"sha256 of the zip: {file_sha256(out)}" in built.output
    assert zipfile.is_zipfile(out)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".cli.zip")]  # no temp left

    verified = run_cli(settings, "audit", "verify", str(out))
    assert verified.exit_code == 0, verified.output
    assert "verified:" in verified.output

    _rewrite(copy, lambda name, data: b"tampered" if name == layout.CARD_MARKDOWN else data)
    failed = run_cli(settings, "audit", "verify", str(copy))
    assert failed.exit_code == 1
    assert layout.CARD_MARKDOWN in failed.output

    missing = run_cli(settings, "audit", "nosuchmodel", "1", "--out", str(tmp_path / "x.zip"))
    assert missing.exit_code == 2 and "nosuchmodel" in missing.output
    assert not (tmp_path / "x.zip").exists()
    not_a_bundle = tmp_path / "not.zip"
    not_a_bundle.write_text("plain text", encoding="utf-8")
    assert run_cli(settings, "audit", "verify", str(not_a_bundle)).exit_code == 2


def test_an_edited_ledger_entry_fails_naming_the_entry(
    settings: EvenflowSettings, tmp_path: Path, model: str
) -> None:
    folder = tmp_path / "v"
    folder.mkdir()
    made = make_version(settings, model, folder)
    make_champion(settings, model, made.version)
    out = tmp_path / "b.zip"
    build_bundle(settings, model, made.version, out)
    assert verify_bundle(settings, out).ok

    client = registry.client_for(settings)
    key = ledger_key(1)
    entry = json.loads(client.get_registered_model(model).tags[key])
    entry["note"] = "approved after all"  # rewritten by someone with write access
    client.set_registered_model_tag(model, key, json.dumps(entry))

    result = verify_bundle(settings, out)
    assert [f.subject for f in result.findings] == [f"ledger entry 1 ({key})"]
    assert "note" in result.findings[0].problem


def test_a_ledger_entry_rewritten_with_its_manifest_hash_breaks_the_chain_offline(
    settings: EvenflowSettings, copy: Path
) -> None:
    """A forger who also fixes MANIFEST.json passes the hashes, not the ledger's own chain."""
    path = "registry/ledger/000001.json"

    def forge(name: str, data: bytes) -> bytes:
        return forged if name == path else data

    with zipfile.ZipFile(copy) as archive:
        entry = json.loads(archive.read(path))
        manifest = json.loads(archive.read(MANIFEST_NAME))
    entry["reviewer"] = "someone else"
    forged = json.dumps(entry).encode()
    for item in manifest["files"]:
        if item["path"] == path:
            item["sha256"], item["size"] = hashlib.sha256(forged).hexdigest(), len(forged)
    _rewrite(
        copy,
        lambda name, data: (
            json.dumps(manifest).encode() if name == MANIFEST_NAME else forge(name, data)
        ),
    )

    result = verify_bundle(settings, copy, registry=False)
    assert [f.subject for f in result.findings] == [f"ledger entry 1 ({path})"]
