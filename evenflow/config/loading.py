"""How a parameters file becomes a validated model: YAML, CLI overrides, readable errors, a hash.

Training and monitoring runs are each described by one YAML file that CLI flags override; both
load, merge and report errors the same way, through ``YamlParams``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, ClassVar, Self

import yaml
from pydantic import ValidationError

from evenflow.errors import ConfigError
from evenflow.records import Record


def read_yaml(path: Path, what: str) -> Any:
    """The YAML document in ``path``; ``what`` names the file in errors (``deployments file``).

    Raises:
        ConfigError: the file is missing or is not YAML.
    """
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: {what} not found") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None


def deep_merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``overrides`` applied, nested mappings merged key by key."""
    merged = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def describe_validation_error(exc: ValidationError, source: str, what: str) -> str:
    """One line naming ``source`` and each key at fault: unknown, missing or out of bounds."""
    problems = []
    for error in exc.errors():
        key = ".".join(str(part) for part in error["loc"])
        if error["type"] == "extra_forbidden":
            problems.append(f"unknown key '{key}'")
        elif error["type"] == "missing":
            problems.append(f"missing key '{key}'")
        else:
            problems.append(f"'{key}': {error['msg']}")
    return f"{source}: invalid {what}: " + "; ".join(problems)


def canonical_hash(payload: Any) -> str:
    """sha256 of the canonical JSON of ``payload``: the same parameters give the same hash."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


class YamlParams(Record):
    """Parameters read from one YAML file, overridable key by key; unknown keys are errors."""

    WHAT: ClassVar[str] = "run configuration"
    """How errors name these parameters."""

    PATH_KEYS: ClassVar[tuple[str, ...]] = ()
    """Dotted keys of paths that a YAML file writes relative to its own folder."""

    @classmethod
    def from_yaml(cls, path: Path, overrides: dict[str, Any] | None = None) -> Self:
        """Load from YAML; relative paths (``PATH_KEYS``) resolve against the file's folder."""
        raw = read_yaml(path, f"{cls.WHAT} file")
        if not isinstance(raw, dict):
            raise ConfigError(
                f"{path}: expected a mapping at the top level, got {type(raw).__name__}"
            )
        for dotted in cls.PATH_KEYS:
            _resolve_relative(raw, dotted, path.parent)
        return cls.from_mapping(deep_merge(raw, overrides or {}), source=str(path))

    @classmethod
    def from_mapping(cls, data: dict[str, Any], source: str = "parameters") -> Self:
        """Validate a nested mapping, turning pydantic's errors into one readable message.

        Raises:
            ConfigError: naming ``source`` and each key at fault.
        """
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise ConfigError(describe_validation_error(exc, source, cls.WHAT)) from None


def _resolve_relative(raw: dict[str, Any], dotted: str, folder: Path) -> None:
    """Make the path at ``dotted`` (e.g. ``dataset.path``) absolute, relative to ``folder``."""
    *parents, key = dotted.split(".")
    holder: Any = raw
    for parent in parents:
        holder = holder.get(parent) if isinstance(holder, dict) else None
    if isinstance(holder, dict) and isinstance(holder.get(key), str):
        holder[key] = str((folder / holder[key]).resolve())
