"""Verifying an audit bundle: every hash, then the registry it was taken from.

:func:`verify_bundle` recomputes every hash (a changed, missing or extra file is named) and,
unless told not to, compares the bundle with the registry: the version still exists with the
same run, every run artifact the bundle holds or withholds still hashes the same, the registry
records (lineage, review) still say what the bundle says, and each ledger entry in the bundle
still equals the registry's (an edited entry is named by its sequence number). What the
registry gained since (a newer ledger entry, a new tag) is a note, not a failure.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from pydantic import ValidationError

from evenflow import layout
from evenflow.config.settings import EvenflowSettings
from evenflow.errors import DataError
from evenflow.govern.ledger import LedgerEntry, ledger_key, read_ledger, verify_chain
from evenflow.io import file_sha256
from evenflow.registry import store
from evenflow.usecases.audit import (
    CONTRACT_RECORD,
    LEDGER_FOLDER,
    LINEAGE_RECORD,
    MANIFEST_NAME,
    REVIEW_RECORD,
    UNCOMPARED,
    BundleManifest,
    Finding,
    Verification,
    contract_record,
    download_artifact,
    ledger_path,
    lineage_record,
    review_record,
)


def read_manifest(bundle: Path) -> BundleManifest:
    """The bundle's manifest.

    Raises:
        DataError: not a zip, or no readable ``MANIFEST.json`` in it.
    """
    try:
        with zipfile.ZipFile(bundle) as archive:
            text = archive.read(MANIFEST_NAME)
    except (OSError, zipfile.BadZipFile) as error:
        raise DataError(f"{bundle} is not a readable zip: {error}") from error
    except KeyError as error:
        raise DataError(f"{bundle} has no {MANIFEST_NAME}: not an evenflow audit bundle") from error
    try:
        return BundleManifest.model_validate_json(text)
    except ValidationError as error:
        raise DataError(f"{bundle}: {MANIFEST_NAME} is not an audit manifest: {error}") from error


def verify_bundle(
    settings: EvenflowSettings, bundle: Path, *, registry: bool = True
) -> Verification:
    """Recompute every hash of ``bundle`` and, with ``registry``, compare it with the registry.

    Raises:
        DataError: ``bundle`` is not an audit bundle.
    """
    manifest = read_manifest(bundle)
    with zipfile.ZipFile(bundle) as archive:
        findings = _integrity(manifest, archive)
        contents = {f.path: archive.read(f.path) for f in manifest.files if _has(archive, f.path)}
    findings += _derived(contents) + _chain_findings(contents)
    notes: list[str] = []
    artifacts = entries = 0
    if registry:
        found, artifacts, entries = _against_registry(settings, manifest, contents, notes)
        findings += found
    return Verification(
        model=manifest.model,
        version=manifest.version,
        files_checked=len(manifest.files),
        artifacts_checked=artifacts,
        ledger_entries_checked=entries,
        registry_checked=registry,
        findings=tuple(findings),
        notes=tuple(notes),
    )


def _has(archive: zipfile.ZipFile, name: str) -> bool:
    try:
        archive.getinfo(name)
    except KeyError:
        return False
    return True


def _integrity(manifest: BundleManifest, archive: zipfile.ZipFile) -> list[Finding]:
    """Every listed file present with its hash; nothing present that is not listed."""
    findings = []
    names = {n for n in archive.namelist() if not n.endswith("/")} - {MANIFEST_NAME}
    for item in manifest.files:
        if item.path not in names:
            findings.append(Finding(subject=item.path, problem="missing from the bundle"))
            continue
        actual = hashlib.sha256(archive.read(item.path)).hexdigest()
        if actual != item.sha256:
            findings.append(
                Finding(
                    subject=item.path,
                    problem=f"changed: sha256 {actual[:12]}…, the manifest says {item.sha256[:12]}…",
                )
            )
    listed = {f.path for f in manifest.files}
    findings += [
        Finding(subject=name, problem="in the bundle but not in its manifest")
        for name in sorted(names - listed)
    ]
    return findings


def _derived(contents: Mapping[str, bytes]) -> list[Finding]:
    """The contract record still says what the validation result it was derived from says."""
    source = contents.get(f"{layout.VALIDATION_DIR}/{layout.VALIDATION_RESULT_FILE}")
    record = contents.get(CONTRACT_RECORD)
    if source is None or record is None:
        return []
    if json.loads(record) != contract_record(json.loads(source)):
        return [Finding(subject=CONTRACT_RECORD, problem="does not match validation_result.json")]
    return []


def _against_registry(
    settings: EvenflowSettings,
    manifest: BundleManifest,
    contents: Mapping[str, bytes],
    notes: list[str],
) -> tuple[list[Finding], int, int]:
    """Findings against the registry, and how many artifacts and ledger entries were compared."""
    client = store.client_for(settings)
    subject = f"{manifest.model} v{manifest.version}"
    try:
        found = client.get_model_version(manifest.model, manifest.version)
    except MlflowException:
        return [Finding(subject=subject, problem="no longer in the registry")], 0, 0
    if str(found.run_id) != manifest.run_id:
        problem = f"now built by run {found.run_id}, the bundle says {manifest.run_id}"
        return [Finding(subject=subject, problem=problem)], 0, 0
    findings, artifacts = _artifacts_match(client, manifest)
    findings += _records_match(client, found, contents, notes)
    ledger_findings, entries = _ledger_matches(client, manifest, contents, notes)
    return findings + ledger_findings, artifacts, entries


def _artifacts_match(client: MlflowClient, manifest: BundleManifest) -> tuple[list[Finding], int]:
    """Each run artifact the bundle holds or withholds still hashes the same in the registry."""
    expected = {f.origin: f.sha256 for f in manifest.files if f.source == "run artifact"}
    expected |= {w.artifact: w.sha256 for w in manifest.withheld}
    findings = []
    with tempfile.TemporaryDirectory(prefix="evenflow-verify-") as scratch:
        for artifact, sha in sorted(expected.items()):
            try:
                local = download_artifact(client, manifest.run_id, artifact, Path(scratch))
            except (MlflowException, OSError):
                findings.append(Finding(subject=artifact, problem="gone from the run's artifacts"))
                continue
            if file_sha256(local) != sha:
                findings.append(
                    Finding(subject=artifact, problem="the registry's copy has changed")
                )
    return findings, len(expected)


def _records_match(
    client: MlflowClient, found: ModelVersion, contents: Mapping[str, bytes], notes: list[str]
) -> list[Finding]:
    """The lineage and review records still hold in the registry (new keys are notes)."""
    findings = []
    current = {LINEAGE_RECORD: lineage_record(client, found), REVIEW_RECORD: review_record(found)}
    for path, now in current.items():
        if path not in contents:
            continue
        then = json.loads(contents[path])
        for record in (then, now):
            record.pop(UNCOMPARED, None)
        findings += _compare(path, then, now, notes)
    return findings


def _compare(
    path: str, then: Mapping[str, Any], now: Mapping[str, Any], notes: list[str]
) -> list[Finding]:
    """Keys of a record changed or removed since bundling (findings), or added (notes)."""
    findings = []
    for key, value in then.items():
        if isinstance(value, dict) and isinstance(now.get(key), dict):
            findings += _compare(f"{path} {key}", value, now[key], notes)
        elif key not in now:
            findings.append(Finding(subject=f"{path} {key}", problem="no longer in the registry"))
        elif now[key] != value:
            findings.append(Finding(subject=f"{path} {key}", problem="differs from the registry"))
    notes += [
        f"{path} {key}: added in the registry since the bundle" for key in now if key not in then
    ]
    return findings


def _ledger_matches(
    client: MlflowClient, manifest: BundleManifest, contents: Mapping[str, bytes], notes: list[str]
) -> tuple[list[Finding], int]:
    """Each ledger entry in the bundle equals the registry's entry of the same sequence number."""
    tags = store.registered_model(client, manifest.model).tags
    current = _registry_entries(tags)
    bundled = {
        int(PurePosixPath(path).stem): json.loads(data)
        for path, data in contents.items()
        if path.startswith(f"{LEDGER_FOLDER}/")
    }
    findings = []
    for seq, entry in sorted(bundled.items()):
        subject = f"ledger entry {seq} ({ledger_key(seq)})"
        now = current.get(seq)
        if now is None:
            findings.append(Finding(subject=subject, problem="no longer in the registry"))
        elif isinstance(now, str):
            findings.append(Finding(subject=subject, problem=now))
        elif now != entry:
            changed = sorted(k for k in entry.keys() | now.keys() if entry.get(k) != now.get(k))
            problem = f"edited in the registry since the bundle: {', '.join(changed)}"
            findings.append(Finding(subject=subject, problem=problem))
    notes += [
        f"ledger entry {seq}: appended since the bundle"
        for seq in sorted(current)
        if seq not in bundled
    ]
    return findings, len(bundled)


def _registry_entries(tags: Mapping[str, str]) -> dict[int, dict[str, Any] | str]:
    """The registry's ledger by sequence number: each entry's JSON, or why it cannot be read."""
    entries, unreadable = read_ledger(tags)
    found: dict[int, dict[str, Any] | str] = {e.seq: e.model_dump(mode="json") for e in entries}
    found |= {item.seq: f"in the registry: {item.problem}" for item in unreadable}
    return found


def _chain_findings(contents: Mapping[str, bytes]) -> list[Finding]:
    """Breaks of the hash chain among the bundle's own ledger entries (checked offline too)."""
    entries = []
    for path, data in sorted(contents.items()):
        if path.startswith(f"{LEDGER_FOLDER}/"):
            try:
                entries.append(LedgerEntry.model_validate_json(data))
            except ValidationError:
                continue  # an edited file: its hash already names it
    return [
        Finding(subject=f"ledger entry {item.seq} ({ledger_path(item.seq)})", problem=item.problem)
        for item in verify_chain(entries)
    ]
