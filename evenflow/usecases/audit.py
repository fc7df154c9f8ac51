"""The auditor's story: one zip holding a version's evidence, hashed, and a check that it still holds.

:func:`build_bundle` gathers what the registry keeps about a model version (the card, the
reports, the data contract and its validation, the shard manifest, the gate decision, the
environment, the lineage, the review and the promotion ledger) into a zip whose
``MANIFEST.json`` names every file with its sha256 and where it came from, and maps the EU AI
Act's Annex IV items to the files that answer them (:mod:`evenflow.govern.annex_iv`).

:func:`verify_bundle` recomputes every hash (a changed, missing or extra file is named) and,
unless told not to, compares the bundle with the registry: the version still exists with the
same run, every run artifact the bundle holds or withholds still hashes the same, the registry
records (lineage, review) still say what the bundle says, and each ledger entry in the bundle
still equals the registry's (an edited entry is named by its sequence number). What the
registry gained since (a newer ledger entry, a new tag) is a note, not a failure.

Row-level files (predictions, as Parquet) and the model's own files are withheld: their hashes
are in the manifest and checked against the registry, their content (personal data, the
booster) stays in the registry.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import tempfile
import zipfile
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from fnmatch import fnmatchcase
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from pydantic import Field, ValidationError

from evenflow import layout
from evenflow.config.settings import EvenflowSettings
from evenflow.errors import DataError
from evenflow.govern.annex_iv import AnnexRow, annex_iv_table
from evenflow.govern.ledger import LedgerEntry, ledger_key, read_ledger, verify_chain
from evenflow.io import atomic_path
from evenflow.records import Record
from evenflow.registry import store
from evenflow.reports.render import render_markdown

logger = logging.getLogger(__name__)

MANIFEST_NAME = "MANIFEST.json"
BUNDLE_FORMAT = "evenflow-audit-bundle/1"

#: Run artifact folders whose files travel in the bundle (row-level files are withheld).
EVIDENCE_FOLDERS = (
    layout.MODEL_CARD_DIR,
    layout.REPORTS_DIR,
    layout.GATE_DIR,
    layout.DATA_DIR,
    layout.VALIDATION_DIR,
    layout.PARAMS_DIR,
    layout.TRAINING_DIR,
    layout.EXPLANATIONS_DIR,
    layout.MITIGATIONS_DIR,
    layout.LINEAGE_DIR,
    layout.PREDICTIONS_DIR,
    layout.MODEL_ARTIFACT,
)
#: The environment the model was logged with (MLflow writes them beside the model).
ENVIRONMENT_FILES = tuple(
    f"{layout.MODEL_ARTIFACT}/{name}"
    for name in ("MLmodel", "requirements.txt", "conda.yaml", "python_env.yaml")
)
#: Not listed at all: the Data Docs render validation_result.json; the model's code is the
#: package at the recorded git commit.
SKIPPED = (f"{layout.VALIDATION_DIR}/data_docs", f"{layout.MODEL_ARTIFACT}/code")
ROW_LEVEL = "*.parquet"
#: Files every fully recorded version has; a bundle lists which of them it lacks under ``absent``.
EXPECTED = (
    layout.CARD_HTML,
    layout.CARD_MARKDOWN,
    layout.METRICS,
    layout.FAIRNESS,
    layout.DECISION,
    layout.MANIFEST,
    f"{layout.VALIDATION_DIR}/{layout.VALIDATION_RESULT_FILE}",
    layout.RUN_PARAMS,
    f"{layout.MODEL_ARTIFACT}/requirements.txt",
)

LINEAGE_RECORD = "registry/lineage.json"
REVIEW_RECORD = "registry/review.json"
LEDGER_FOLDER = "registry/ledger"
CONTRACT_RECORD = "contract/expectations.json"
README = "README.md"
README_TEMPLATE = "audit_readme.md.j2"

#: Aliases move as champions change: recorded in the review record, never compared.
UNCOMPARED = "aliases_when_bundled"

Source = Literal["run artifact", "registry", "derived"]


class BundleFile(Record):
    """A file of the bundle: its hash and where it came from."""

    path: str = Field(description="Path inside the zip.")
    sha256: str
    size: int = Field(ge=0)
    source: Source
    origin: str = Field(description="The run artifact, registry record or file it was made from.")


class WithheldFile(Record):
    """A run artifact kept out of the bundle: its hash lets the auditor check the registry's copy."""

    artifact: str
    sha256: str
    reason: str


class BundleManifest(Record):
    """``MANIFEST.json``: what the bundle holds, for which version, and what answers the Act."""

    format: str = BUNDLE_FORMAT
    model: str
    version: str
    run_id: str
    created_at: datetime
    files: tuple[BundleFile, ...]
    withheld: tuple[WithheldFile, ...]
    absent: tuple[str, ...] = Field(
        description="Evidence looked for and not recorded for this version (not an error)."
    )
    annex_iv: tuple[AnnexRow, ...]


class Finding(Record):
    """One way a bundle no longer matches itself or the registry."""

    subject: str = Field(description="The file, artifact or ledger entry concerned.")
    problem: str

    def describe(self) -> str:
        """``subject: problem`` on one line."""
        return f"{self.subject}: {self.problem}"


class Verification(Record):
    """What :func:`verify_bundle` checked and found."""

    model: str
    version: str
    files_checked: int
    artifacts_checked: int
    ledger_entries_checked: int
    registry_checked: bool
    findings: tuple[Finding, ...]
    notes: tuple[str, ...]

    @property
    def ok(self) -> bool:
        """True when nothing was found."""
        return not self.findings


# --- building -------------------------------------------------------------------------------


def build_bundle(
    settings: EvenflowSettings,
    model: str,
    version: str,
    out: Path,
    *,
    now: datetime | None = None,
) -> BundleManifest:
    """Write the audit bundle of ``model`` version ``version`` to ``out`` (a zip), atomically.

    Raises:
        EvenflowError: no such model or version.
    """
    client = store.client_for(settings)
    found = store.model_version(client, model, version)
    run_id = str(found.run_id)
    created_at = (now or datetime.now(UTC)).astimezone(UTC)
    with tempfile.TemporaryDirectory(prefix="evenflow-audit-") as scratch:
        staging = Path(scratch) / "bundle"
        files, withheld, absent = _gather_artifacts(client, run_id, staging, Path(scratch))
        files += _write_registry_records(client, model, found, staging, absent)
        files += _write_contract(staging)
        annex = annex_iv_table([f.path for f in files])
        manifest = BundleManifest(
            model=model,
            version=version,
            run_id=run_id,
            created_at=created_at,
            files=tuple(sorted(files, key=lambda f: f.path)),
            withheld=tuple(withheld),
            absent=tuple(absent),
            annex_iv=annex,
        )
        manifest = _with_readme(manifest, staging)
        _write_zip(manifest, staging, out)
    logger.info("audit bundle of %s v%s: %d files, %s", model, version, len(files), out)
    return manifest


def _gather_artifacts(
    client: MlflowClient, run_id: str, staging: Path, scratch: Path
) -> tuple[list[BundleFile], list[WithheldFile], list[str]]:
    """Download the run's evidence into ``staging``; hash what is withheld."""
    files: list[BundleFile] = []
    withheld: list[WithheldFile] = []
    listed = {
        path for folder in EVIDENCE_FOLDERS for path in _artifact_files(client, run_id, folder)
    }
    for artifact in sorted(listed):
        kind = _disposition(artifact)
        if kind == "bundle":
            local = _download(client, run_id, artifact, staging)
            files.append(_bundled(staging, artifact, "run artifact", artifact))
            logger.debug("bundled %s (%d bytes)", artifact, local.stat().st_size)
        else:
            local = _download(client, run_id, artifact, scratch / "withheld")
            withheld.append(WithheldFile(artifact=artifact, sha256=_sha256(local), reason=kind))
    absent = [f"{p} (not among the run's artifacts)" for p in EXPECTED if p not in listed]
    return files, withheld, absent


def _disposition(artifact: str) -> str:
    """``bundle``, or the reason the artifact is withheld (its hash still goes in the manifest)."""
    if fnmatchcase(artifact, ROW_LEVEL) or artifact.startswith(f"{layout.PREDICTIONS_DIR}/"):
        return "row-level data (personal data): only its hash travels"
    if artifact.startswith(f"{layout.MODEL_ARTIFACT}/") and artifact not in ENVIRONMENT_FILES:
        return "the model's own files: only their hash travels"
    return "bundle"


def _artifact_files(client: MlflowClient, run_id: str, folder: str) -> Iterator[str]:
    """Every file under an artifact folder, recursively, except the :data:`SKIPPED` subtrees."""
    for info in client.list_artifacts(run_id, folder):
        if info.path in SKIPPED:
            continue
        if info.is_dir:
            yield from _artifact_files(client, run_id, info.path)
        else:
            yield info.path


def _download(client: MlflowClient, run_id: str, artifact: str, root: Path) -> Path:
    """One run artifact at ``root/<artifact path>``.

    Where MLflow puts a download under its destination differs by store (a run's ``model/``
    resolves to MLflow 3's logged model), so each file is fetched alone and moved into place.
    """
    target = root / artifact
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root) as fetched:
        shutil.move(client.download_artifacts(run_id, artifact, fetched), target)
    return target


def _bundled(staging: Path, path: str, source: Source, origin: str) -> BundleFile:
    local = staging / path
    return BundleFile(
        path=path,
        sha256=_sha256(local),
        size=local.stat().st_size,
        source=source,
        origin=origin,
    )


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _write_json(staging: Path, path: str, payload: Any) -> None:
    target = staging / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def lineage_record(client: MlflowClient, found: ModelVersion) -> dict[str, Any]:
    """The training run's lineage as the registry holds it: tags, params, inputs, status."""
    run = client.get_run(str(found.run_id))
    inputs = run.inputs.dataset_inputs if run.inputs else []
    return {
        "run_id": run.info.run_id,
        "experiment_id": run.info.experiment_id,
        "run_name": run.info.run_name,
        "status": run.info.status,
        "start_time": run.info.start_time,
        "end_time": run.info.end_time,
        "lineage_tags": {tag: run.data.tags.get(tag) for tag in _LINEAGE_TAGS},
        "tags": dict(sorted(run.data.tags.items())),
        "params": dict(sorted(run.data.params.items())),
        "datasets": [
            {
                "name": d.dataset.name,
                "digest": d.dataset.digest,
                "source": d.dataset.source,
                "tags": {t.key: t.value for t in d.tags},
            }
            for d in inputs
        ],
    }


_LINEAGE_TAGS = (
    layout.DATA_MD5_TAG,
    layout.GIT_COMMIT_TAG,
    layout.GIT_DIRTY_TAG,
    layout.PARAMS_HASH_TAG,
    layout.ENV_HASH_TAG,
    layout.FLOW_RUN_ID_TAG,
)


def review_record(found: ModelVersion) -> dict[str, Any]:
    """The version's review as the registry holds it: its tags and its description.

    Aliases move as champions change; they are recorded for reading, not compared by verify.
    """
    return {
        "model": found.name,
        "version": str(found.version),
        "run_id": str(found.run_id),
        "tags": dict(sorted(found.tags.items())),
        "description": found.description or "",
        UNCOMPARED: sorted(found.aliases or ()),
    }


def _write_registry_records(
    client: MlflowClient, model: str, found: ModelVersion, staging: Path, absent: list[str]
) -> list[BundleFile]:
    """The lineage, the review and each readable ledger entry; an unreadable one goes in ``absent``."""
    _write_json(staging, LINEAGE_RECORD, lineage_record(client, found))
    files = [_bundled(staging, LINEAGE_RECORD, "registry", "the training run's tags and params")]
    _write_json(staging, REVIEW_RECORD, review_record(found))
    files.append(_bundled(staging, REVIEW_RECORD, "registry", "the version's tags and description"))
    entries, unreadable = read_ledger(store.registered_model(client, model).tags)
    absent += [f"ledger entry {item.seq}: {item.problem}" for item in unreadable]
    for entry in entries:
        path = _ledger_path(entry.seq)
        _write_json(staging, path, entry.model_dump(mode="json"))
        files.append(
            _bundled(staging, path, "registry", f"registered-model tag {ledger_key(entry.seq)}")
        )
    return files


def _ledger_path(seq: int) -> str:
    return f"{LEDGER_FOLDER}/{seq:06d}.json"


def contract_record(validation_result: Mapping[str, Any]) -> dict[str, Any]:
    """The data contract the run was checked against, as its GX validation result records it.

    The run logs the result, not the suite file; each result carries the expectation it checked.
    """
    return {
        "suite_name": validation_result.get("suite_name"),
        "derived_from": f"{layout.VALIDATION_DIR}/{layout.VALIDATION_RESULT_FILE}",
        "expectations": [r.get("expectation_config") for r in validation_result.get("results", [])],
    }


def _write_contract(staging: Path) -> list[BundleFile]:
    source = staging / layout.VALIDATION_DIR / layout.VALIDATION_RESULT_FILE
    if not source.is_file():
        return []
    result = json.loads(source.read_text(encoding="utf-8"))
    _write_json(staging, CONTRACT_RECORD, contract_record(result))
    origin = f"{layout.VALIDATION_DIR}/{layout.VALIDATION_RESULT_FILE}"
    return [_bundled(staging, CONTRACT_RECORD, "derived", origin)]


def _with_readme(manifest: BundleManifest, staging: Path) -> BundleManifest:
    """Add the bundle's README (what it is, the Annex IV table, how to verify) to the manifest."""
    text = render_markdown(README_TEMPLATE, manifest=manifest, manifest_name=MANIFEST_NAME)
    (staging / README).write_text(text, encoding="utf-8")
    readme = _bundled(staging, README, "derived", MANIFEST_NAME)
    files = tuple(sorted((*manifest.files, readme), key=lambda f: f.path))
    return manifest.model_copy(update={"files": files})


def _write_zip(manifest: BundleManifest, staging: Path, out: Path) -> None:
    """The zip at a temporary name beside ``out``, renamed onto it only when complete."""
    with atomic_path(out) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as bundle:
        for item in manifest.files:
            bundle.write(staging / item.path, item.path)
        bundle.writestr(MANIFEST_NAME, manifest.model_dump_json(indent=2) + "\n")


# --- verifying ------------------------------------------------------------------------------


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
                local = _download(client, manifest.run_id, artifact, Path(scratch))
            except (MlflowException, OSError):
                findings.append(Finding(subject=artifact, problem="gone from the run's artifacts"))
                continue
            if _sha256(local) != sha:
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
        Finding(subject=f"ledger entry {item.seq} ({_ledger_path(item.seq)})", problem=item.problem)
        for item in verify_chain(entries)
    ]
