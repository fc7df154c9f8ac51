"""Review: one version beside the current ``champion``, with everything a reviewer decides on.

:func:`review` reads a version's artifacts (metrics, per-group metrics with intervals, the gate
decision, the data manifest, the model card) and the champion's, and returns a
:class:`ReviewSummary`; it writes nothing. :func:`review_tags` says what recording the review
stores on the version (the evidence digest it is bound to); ``reports.review`` renders the summary.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from pydantic import Field, ValidationError

from evenflow import layout
from evenflow.config.settings import EvenflowSettings
from evenflow.errors import EvenflowError
from evenflow.govern.comparison import (
    Comparison,
    DataChange,
    GroupComparison,
    compare_groups,
    compare_metrics,
    data_changes,
)
from evenflow.govern.evidence import Evidence, evidence_digest, evidence_paths
from evenflow.govern.gates import GateDecision, describe_failures
from evenflow.govern.ledger import decision_time
from evenflow.io import file_sha256
from evenflow.records import Record
from evenflow.registry import store

logger = logging.getLogger(__name__)


class GateSummary(Record):
    """The gate outcome as tagged on the version and as recorded in gate/decision.json."""

    tag: str | None = Field(description="Version tag evenflow.gate: passed or failed.")
    passed: bool | None = Field(description="decision.json's verdict; None when missing.")
    n_clauses: int
    failed: tuple[str, ...] = Field(description="One readable line per failed clause.")


class VersionInfo(Record):
    """A registered version and its lineage, as read from the registry."""

    version: str
    run_id: str
    aliases: tuple[str, ...]
    data_md5: str | None
    git_commit: str | None


class ModelCardRef(Record):
    """Where the model card lives: artifacts of the version's run."""

    run_id: str
    html: str
    markdown: str
    present: tuple[str, ...] = Field(description="Which of the two files the run holds.")


class ReviewSummary(Record):
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

    Reads only; :func:`evenflow.usecases.review.record_review` stores the outcome on the version.
    """
    client = store.client_for(settings)
    target = _version_or_candidate(client, model, version)
    champion = store.find_alias(client, model, layout.CHAMPION)
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
        gate=gate_summary(target.tags.get(layout.GATE_TAG), ours.decision),
        data=data_changes(
            ours.manifest,
            None if theirs is None else theirs.manifest or {},
            data_md5=target.tags.get(layout.DATA_MD5_TAG),
            champion_data_md5=None if champion is None else champion.tags.get(layout.DATA_MD5_TAG),
        ),
        model_card=ModelCardRef(
            run_id=str(target.run_id),
            html=layout.CARD_HTML,
            markdown=layout.CARD_MARKDOWN,
            present=tuple(
                p for p in (layout.CARD_HTML, layout.CARD_MARKDOWN) if p in ours.evidence
            ),
        ),
        evidence=Evidence(files=ours.evidence, sha256=evidence_digest(ours.evidence)),
        missing=missing,
    )


def _version_or_candidate(client: MlflowClient, model: str, version: str | None) -> ModelVersion:
    """The named version, or the ``candidate`` when none is named."""
    if version is not None:
        return store.model_version(client, model, version)
    found = store.find_alias(client, model, layout.CANDIDATE)
    if found is None:
        store.registered_model(client, model)
        raise EvenflowError(f"{model} has no '{layout.CANDIDATE}' version; name a version")
    return found


def _version_info(version: ModelVersion) -> VersionInfo:
    return VersionInfo(
        version=str(version.version),
        run_id=str(version.run_id),
        aliases=tuple(version.aliases or ()),
        data_md5=version.tags.get(layout.DATA_MD5_TAG),
        git_commit=version.tags.get(layout.GIT_COMMIT_TAG),
    )


def _read_artifacts(client: MlflowClient, run_id: str) -> _Artifacts:
    """Download the JSON a review reads and hash the evidence, in one pass."""
    signed = evidence_paths(client, run_id)
    manifest_present = any(
        f.path == layout.MANIFEST for f in client.list_artifacts(run_id, layout.DATA_DIR)
    )
    wanted = [*signed, *([layout.MANIFEST] if manifest_present else [])]
    read = (layout.METRICS, layout.GROUPS, layout.FAIRNESS, layout.DECISION)
    with tempfile.TemporaryDirectory() as scratch:
        local = store.download_artifacts(client, run_id, wanted, Path(scratch))
        evidence = {p: file_sha256(local[p]) for p in signed}
        docs = {p: _json(local[p]) for p in (*read, layout.MANIFEST) if p in local}
    expected = (*read, layout.CARD_HTML, layout.CARD_MARKDOWN, layout.MANIFEST)
    return _Artifacts(
        metrics=docs.get(layout.METRICS),
        groups=docs.get(layout.GROUPS),
        fairness=docs.get(layout.FAIRNESS),
        decision=docs.get(layout.DECISION),
        manifest=docs.get(layout.MANIFEST),
        evidence=evidence,
        missing=tuple(p for p in expected if p not in local),
    )


def _json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def review_tags(summary: ReviewSummary, now: datetime | None = None) -> dict[str, str]:
    """What recording a review stores on the version: the evidence digest and per-file hashes."""
    return {
        layout.REVIEWED_SHA_TAG: summary.evidence.sha256,
        layout.REVIEWED_AT_TAG: decision_time(now).isoformat(),
        layout.REVIEWED_FILES_TAG: json.dumps(summary.evidence.files, sort_keys=True),
        layout.REVIEWED_AGAINST_TAG: summary.champion.version if summary.champion else "none",
    }
