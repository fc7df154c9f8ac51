"""Lineage: the data hash, code commit and environment that let anyone rebuild a run."""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from evenflow.layout import (
    BUILD_TAGS,
    DATA_MD5_TAG,
    ENV_HASH_TAG,
    FLOW_RUN_ID_TAG,
    GIT_COMMIT_TAG,
    GIT_DIRTY_TAG,
    PARAMS_HASH_TAG,
)

# Files a flow run rewrites itself; they are outputs, so they never make the code look dirty.
RUN_OUTPUTS = ("data.dvc",)


class CodeVersion(BaseModel):
    """The git state of the code that ran."""

    model_config = ConfigDict(frozen=True)

    commit: str
    dirty: bool
    diff: str = ""


def code_version(code_root: Path) -> CodeVersion:
    """Commit of ``code_root`` and whether tracked code or configuration differs from it."""
    commit = _git(code_root, "rev-parse", "HEAD")
    if commit is None:
        return CodeVersion(commit="unknown", dirty=True, diff="not a git checkout")
    excludes = [f":(exclude){name}" for name in RUN_OUTPUTS]
    status = _git(code_root, "status", "--porcelain", "--untracked-files=no", "--", ".", *excludes)
    dirty = bool(status)
    diff = (_git(code_root, "diff", "HEAD", "--", ".", *excludes) or "") if dirty else ""
    return CodeVersion(commit=commit, dirty=dirty, diff=diff)


def _git(cwd: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=30, check=True
        )
    except (subprocess.SubprocessError, OSError):
        return None
    return done.stdout.strip()


def env_hash() -> str:
    """Hash of every installed distribution and its version: the run's software environment."""
    pins = sorted(
        f"{d.metadata['Name'].lower()}=={d.version}"
        for d in metadata.distributions()
        if d.metadata["Name"]
    )
    return hashlib.sha256("\n".join(pins).encode()).hexdigest()


def lineage_tags(
    data_md5: str, code: CodeVersion, params_hash: str, flow_run_id: str
) -> dict[str, str]:
    """The tags every run and model version carries (see DESIGN.md, Records)."""
    return {
        DATA_MD5_TAG: data_md5,
        GIT_COMMIT_TAG: code.commit,
        GIT_DIRTY_TAG: str(code.dirty).lower(),
        PARAMS_HASH_TAG: params_hash,
        ENV_HASH_TAG: env_hash(),
        FLOW_RUN_ID_TAG: flow_run_id,
    }


def same_build(tags: Mapping[str, str], other: Mapping[str, str]) -> bool:
    """Whether two lineage tag sets describe the same build; a dirty tree is never the same.

    Same data hash, parameters hash, git commit and environment hash, both from a clean tree:
    re-registering would add a version identical to the one that exists.
    """
    if tags.get(GIT_DIRTY_TAG) != "false" or other.get(GIT_DIRTY_TAG) != "false":
        return False
    return all(tags.get(name) and tags.get(name) == other.get(name) for name in BUILD_TAGS)
