"""The auditor's story: one zip holding a version's evidence, hashed, and a check that it still holds.

:func:`build_bundle` gathers what the registry keeps about a model version (the card, the
reports, the data contract and its validation, the shard manifest, the gate decision, the
environment, the lineage, the review and the promotion ledger) into a zip whose
``MANIFEST.json`` names every file with its sha256 and where it came from, and maps the EU AI
Act's Annex IV items to the files that answer them (:mod:`evenflow.govern.annex_iv`).

:mod:`evenflow.usecases.audit_verify` checks a bundle against itself and the registry.

Row-level files (predictions, as Parquet) and the model's own files are withheld: their hashes
are in the manifest and checked against the registry, their content (personal data, the
booster) stays in the registry.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import zipfile
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, Literal

from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from pydantic import Field

from evenflow import layout
from evenflow.config.settings import EvenflowSettings
from evenflow.govern.annex_iv import AnnexRow, annex_iv_table
from evenflow.govern.ledger import ledger_key, read_ledger
from evenflow.io import atomic_path, file_sha256
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
            local = download_artifact(client, run_id, artifact, staging)
            files.append(_bundled(staging, artifact, "run artifact", artifact))
            logger.debug("bundled %s (%d bytes)", artifact, local.stat().st_size)
        else:
            local = download_artifact(client, run_id, artifact, scratch / "withheld")
            withheld.append(WithheldFile(artifact=artifact, sha256=file_sha256(local), reason=kind))
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


def download_artifact(client: MlflowClient, run_id: str, artifact: str, root: Path) -> Path:
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
        sha256=file_sha256(local),
        size=local.stat().st_size,
        source=source,
        origin=origin,
    )


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
        path = ledger_path(entry.seq)
        _write_json(staging, path, entry.model_dump(mode="json"))
        files.append(
            _bundled(staging, path, "registry", f"registered-model tag {ledger_key(entry.seq)}")
        )
    return files


def ledger_path(seq: int) -> str:
    """Where ledger entry ``seq`` lies in the bundle."""
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
