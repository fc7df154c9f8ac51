"""Content-hash caching: a stage re-runs only when its data, parameters or code changed, and says why.

Each cached stage is one :class:`StageCache`: the parts of its key read from its inputs (data md5,
the parameters it reads), the one core module it calls (its entry point) and where its outputs live.
The key adds the code: a hash of every project module the entry point imports, directly or not, one
part per module, and the hash of ``uv.lock`` (the third-party environment). The key is a hash of
all parts. Before Prefect looks the key up, the policy compares the parts with the previous run's
and logs what changed, naming the changed modules
(``cache train: miss, code changed: evenflow/training/boosters.py``). The line goes through the
task run's logger, so it shows in the flow run's logs in the Prefect UI as well as on the console
(once: not through the module logger too).
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from prefect import Task, get_run_logger, task
from prefect.cache_policies import CachePolicy
from prefect.context import TaskRunContext
from prefect.exceptions import MissingContextError
from prefect.logging.loggers import LoggingAdapter
from prefect.results import get_result_store

from evenflow.config.settings import EvenflowSettings
from evenflow.govern import code_closure
from evenflow.io import write_json_atomic
from tasks.isolation import exclusive

logger = logging.getLogger("evenflow.cache")
"""Cache lines outside a task run (the policy is always asked inside one by Prefect)."""

Inputs = Mapping[str, Any]
"""A stage task's inputs by parameter name (``settings`` among them), as Prefect passes them."""
KeyParts = Callable[[Inputs], dict[str, str]]
Folder = Callable[[Inputs], Path]

P = ParamSpec("P")
R = TypeVar("R")


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


@dataclass(frozen=True)
class StageCache:
    """One cached stage: what its key reads, the code it runs, where it writes, when it is done.

    A stage's key changes with its inputs' parts, its code and its output folder; by default its
    outputs live in a folder addressed by the parts and the code, so other inputs write elsewhere.
    """

    name: str
    entry: str
    """The core module the task body calls (its import closure is the stage's code)."""
    key_inputs: KeyParts
    """The parts read from the task's inputs: data hashes and the parameters the stage reads."""
    outputs: Folder | None = None
    """Where the stage writes, if not the content-addressed folder of :func:`stage_dir`."""
    done: tuple[str, ...] | None = None
    """The path, inside the outputs, written last (``()``: the folder itself); None: unchecked."""

    def out_dir(self, inputs: Inputs) -> Path:
        """The folder the stage writes for these inputs."""
        if self.outputs is not None:
            return self.outputs(inputs)
        return stage_dir(inputs["settings"], self.name, self._content(inputs))

    def key_parts(self, inputs: Inputs) -> dict[str, str]:
        """The named parts of the key: inputs, code summary, lock file and output folder."""
        return {**self._content(inputs), "outputs": str(self.out_dir(inputs))}

    def outputs_missing(self, inputs: Inputs) -> bool:
        """Whether the file written last is gone (a cached result whose outputs were deleted)."""
        return self.done is not None and not self.out_dir(inputs).joinpath(*self.done).exists()

    def task(self, name: str, **options: Any) -> Callable[[Callable[P, R]], Task[P, R]]:
        """A Prefect task cached on this stage's key, its result persisted for the next run.

        The body runs holding the lock of the stage's output folder, so two runs with the same
        inputs never write it at once (the second finds it written, or a cached result).
        """
        policy = ContentCache(stage=self)
        cached = task(name=name, cache_policy=policy, persist_result=True, **options)

        def decorate(body: Callable[P, R]) -> Task[P, R]:
            @functools.wraps(body)
            def locked(*args: P.args, **kwargs: P.kwargs) -> R:
                bound = inspect.signature(body).bind(*args, **kwargs)
                bound.apply_defaults()
                inputs = bound.arguments
                with exclusive(inputs["settings"], self.out_dir(inputs)):
                    return body(*args, **kwargs)

            return cached(locked)

        return decorate

    def _content(self, inputs: Inputs) -> dict[str, str]:
        return {**self.key_inputs(inputs), **code_parts(self.entry, inputs["settings"])}


def cache_logger() -> logging.Logger | LoggingAdapter:
    """The task run's logger (its lines reach the flow run's logs in the UI), else the module's."""
    try:
        return get_run_logger()
    except MissingContextError:
        return logger


@dataclass
class ContentCache(CachePolicy):
    """A cache key made of a stage's named content hashes, with the reason for a miss logged."""

    stage: StageCache | None = None

    def compute_key(
        self,
        task_ctx: TaskRunContext,
        inputs: dict[str, Any] | None,
        flow_parameters: dict[str, Any] | None,
        **kwargs: Any,
    ) -> str | None:
        """Hash the stage's parts; log whether they match the previous run's and, if not, why."""
        if self.stage is None or inputs is None:
            return None
        name = self.stage.name
        log = cache_logger()
        settings: EvenflowSettings = inputs["settings"]
        parts = {**self.stage.key_parts(inputs), **module_parts(self.stage.entry)}
        record = settings.state_dir / "cache-keys" / f"{name}.json"
        previous = json.loads(record.read_text(encoding="utf-8")) if record.is_file() else {}
        write_json_atomic(record, parts)
        key = f"{name}-{digest(parts)}"
        reason = miss_reason(previous, parts)
        if not previous:
            log.info("cache %s: no earlier run recorded, computing", name)
        elif reason:
            log.info("cache %s: miss, %s", name, reason)
        elif self.stage.outputs_missing(inputs):
            if get_result_store().exists(key):
                # A cached result whose outputs were deleted: a fresh key forces the stage to run
                # again (into the same content-addressed folder, so the old record stays valid).
                log.info("cache %s: inputs unchanged but outputs missing, recomputing", name)
                return f"{key}-rebuild-{uuid.uuid4().hex}"
            # No result yet (a retry of a failed attempt): computed and stored under the plain key.
            log.info("cache %s: no finished result yet, computing", name)
        else:
            log.info("cache %s: data, parameters and code unchanged, reusing the last result", name)
        return key
