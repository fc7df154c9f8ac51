"""Content-hash caching: a stage re-runs only when its data, parameters or code changed, and says why.

Each cached stage names the parts of its key (data md5, the parameters it reads, where its outputs
live) and the one core module it calls (its entry point). The policy adds the code: a hash of every
project module the entry point imports, directly or not, one part per module, and the hash of
``uv.lock`` (the third-party environment). The key is a hash of all parts. Before Prefect looks the
key up, the policy compares the parts with the previous run's and logs what changed, naming the
changed modules (``cache train: miss, code changed: evenflow/training/boosters.py``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from prefect.cache_policies import CachePolicy
from prefect.context import TaskRunContext
from prefect.results import get_result_store

from evenflow.config.settings import EvenflowSettings
from evenflow.govern import code_closure
from evenflow.io import write_json_atomic

logger = logging.getLogger("evenflow.cache")

KeyParts = Callable[[Mapping[str, Any]], dict[str, str]]
Marker = Callable[[Mapping[str, Any]], Path]


def digest(*values: Any) -> str:
    """Stable hash of JSON-able values (pydantic models as their JSON)."""
    payload = json.dumps(
        [v.model_dump(mode="json") if hasattr(v, "model_dump") else v for v in values],
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


# Key parts named ``code:<path>`` hold one module's hash each; ``code`` is their summary.
MODULE_PART = "code:"


@cache
def _source_root(entry: str) -> Path:
    return code_closure.source_root(entry)


def module_parts(entry: str) -> dict[str, str]:
    """One part per project module the entry point reaches: ``code:evenflow/training/boosters.py``."""
    hashes = code_closure.module_hashes(entry, _source_root(entry))
    return {f"{MODULE_PART}{path}": value for path, value in hashes.items()}


def code_parts(entry: str, settings: EvenflowSettings) -> dict[str, str]:
    """The code a stage runs: its import closure (one hash) and the lock file of its environment."""
    return {
        "code": digest(module_parts(entry)),
        "lock": code_closure.lock_hash(settings.code_root, _source_root(entry)),
    }


def miss_reason(previous: Mapping[str, str], parts: Mapping[str, str]) -> str | None:
    """Why ``parts`` differ from the previous run's, or None when nothing changed.

    Changed modules are named by path; ``code`` (their summary) is named only when the previous
    record has no per-module parts to compare with.
    """
    changed = sorted(k for k in parts.keys() | previous.keys() if previous.get(k) != parts.get(k))
    if not changed:
        return None
    per_module = any(k.startswith(MODULE_PART) for k in previous)
    modules = [k.removeprefix(MODULE_PART) for k in changed if k.startswith(MODULE_PART)]
    others = [
        k
        for k in changed
        if not k.startswith(MODULE_PART) and not (k == "code" and per_module and modules)
    ]
    reasons = []
    if modules and per_module:
        reasons.append("code changed: " + ", ".join(modules))
    if others:
        reasons.append("changed since last run: " + ", ".join(others))
    return "; ".join(reasons)


def stage_dir(settings: EvenflowSettings, stage: str, parts: Mapping[str, str]) -> Path:
    """Content-addressed output folder of a stage: same inputs, same folder."""
    return settings.state_dir / "stages" / stage / digest(dict(parts))[:16]


@dataclass
class ContentCache(CachePolicy):
    """A cache key made of named content hashes, with the reason for a miss logged."""

    stage: str = ""
    parts: KeyParts | None = None
    entry: str = ""
    """The core module the task body calls (its import closure is the stage's code)."""
    marker: Marker | None = None

    def compute_key(
        self,
        task_ctx: TaskRunContext,
        inputs: dict[str, Any] | None,
        flow_parameters: dict[str, Any] | None,
        **kwargs: Any,
    ) -> str | None:
        """Hash the stage's parts; log whether they match the previous run's and, if not, why."""
        if self.parts is None or inputs is None:
            return None
        settings: EvenflowSettings = inputs["settings"]
        parts = {
            **self.parts(inputs),
            **code_parts(self.entry, settings),
            **module_parts(self.entry),
        }
        record = settings.state_dir / "cache-keys" / f"{self.stage}.json"
        previous = json.loads(record.read_text(encoding="utf-8")) if record.is_file() else {}
        write_json_atomic(record, parts)
        key = f"{self.stage}-{digest(parts)}"
        reason = miss_reason(previous, parts)
        if not previous:
            logger.info("cache %s: no earlier run recorded, computing", self.stage)
        elif reason:
            logger.info("cache %s: miss, %s", self.stage, reason)
        elif self.marker is not None and not self.marker(inputs).exists():
            if get_result_store().exists(key):
                # A cached result whose outputs were deleted: a fresh key forces the stage to run
                # again (into the same content-addressed folder, so the old record stays valid).
                logger.info(
                    "cache %s: inputs unchanged but outputs missing, recomputing", self.stage
                )
                return f"{key}-rebuild-{uuid.uuid4().hex}"
            # No result yet (a retry of a failed attempt): computed and stored under the plain key.
            logger.info("cache %s: no finished result yet, computing", self.stage)
        else:
            logger.info(
                "cache %s: data, parameters and code unchanged, reusing the last result", self.stage
            )
        return key
