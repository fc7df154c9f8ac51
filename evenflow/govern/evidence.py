"""The evidence a reviewer signs: the model card, the JSON reports and the gate decision.

A review records the *evidence digest* (:func:`evidence_digest` over each file's sha256) on the
version; promotion recomputes it and refuses when it differs, so nobody promotes on evidence they
did not see. The digest is pure; reading the files from MLflow is the separate
:func:`evidence_hashes`.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Mapping
from pathlib import Path

from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from pydantic import Field

from evenflow.io import file_sha256
from evenflow.layout import EVIDENCE_FILES, REPORTS_DIR, REVIEWED_FILES_TAG
from evenflow.records import Record
from evenflow.registry import store


class Evidence(Record):
    """The digest a decision is bound to and the per-file hashes it was computed from."""

    files: dict[str, str] = Field(description="Artifact path -> sha256 of its bytes.")
    sha256: str


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


def evidence_paths(client: MlflowClient, run_id: str) -> list[str]:
    """Artifact paths of the run's evidence that exist (listing folders, downloading nothing)."""
    present: set[str] = set()
    for folder in {p.rsplit("/", 1)[0] for p in EVIDENCE_FILES} | {REPORTS_DIR}:
        present.update(f.path for f in client.list_artifacts(run_id, folder) if not f.is_dir)
    reports = [p for p in present if p.startswith(f"{REPORTS_DIR}/") and p.endswith(".json")]
    return sorted({*reports, *(p for p in EVIDENCE_FILES if p in present)})


def evidence_hashes(client: MlflowClient, run_id: str) -> dict[str, str]:
    """Artifact path -> sha256 of each evidence file the run holds, as it is now."""
    with tempfile.TemporaryDirectory() as scratch:
        local = store.download_artifacts(
            client, run_id, evidence_paths(client, run_id), Path(scratch)
        )
        return {path: file_sha256(file) for path, file in local.items()}


def reviewed_files(version: ModelVersion) -> dict[str, str]:
    """The per-file hashes the last review recorded on the version; empty if never reviewed."""
    raw = version.tags.get(REVIEWED_FILES_TAG)
    if not raw:
        return {}
    files: dict[str, str] = json.loads(raw)
    return files
