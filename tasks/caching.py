"""Content-hash caching: a stage re-runs only when its data, parameters or code changed, and says why.

Each cached stage names the parts of its key (data md5, the parameters it reads, the source of the
core modules it runs, where its outputs live). The key is a hash of those parts. Before Prefect looks
the key up, the policy compares the parts with the previous run's and logs what changed.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import json
import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prefect.cache_policies import CachePolicy
from prefect.context import TaskRunContext
from prefect.results import get_result_store

from evenflow.io import write_json_atomic
from evenflow.settings import EvenflowSettings

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


def source_hash(modules: tuple[str, ...]) -> str:
    """Hash of the source of the modules a stage runs: a code change re-runs the stage."""
    sources = [inspect.getsource(importlib.import_module(name)) for name in modules]
    return hashlib.sha256("\n".join(sources).encode()).hexdigest()


def stage_dir(settings: EvenflowSettings, stage: str, parts: Mapping[str, str]) -> Path:
    """Content-addressed output folder of a stage: same inputs, same folder."""
    return settings.state_dir / "stages" / stage / digest(dict(parts))[:16]


@dataclass
class ContentCache(CachePolicy):
    """A cache key made of named content hashes, with the reason for a miss logged."""

    stage: str = ""
    parts: KeyParts | None = None
    modules: tuple[str, ...] = field(default_factory=tuple)
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
        parts = {**self.parts(inputs), "code": source_hash(self.modules)}
        settings: EvenflowSettings = inputs["settings"]
        record = settings.state_dir / "cache-keys" / f"{self.stage}.json"
        previous = json.loads(record.read_text(encoding="utf-8")) if record.is_file() else {}
        write_json_atomic(record, parts)
        key = f"{self.stage}-{digest(parts)}"
        changed = sorted(k for k in parts if previous.get(k) != parts[k])
        if not previous:
            logger.info("cache %s: no earlier run recorded, computing", self.stage)
        elif changed:
            logger.info(
                "cache %s: miss, changed since last run: %s", self.stage, ", ".join(changed)
            )
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
