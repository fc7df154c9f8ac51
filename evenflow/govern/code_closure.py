"""The code a stage runs: every project module its entry point imports, directly or not.

A cache key built from this closure is honest: editing any module the stage can reach (say
``evenflow/training/boosters.py``, reached only through ``evenflow.training.engine``) changes the key, and the
per-module hashes name the file that changed. Imports are read statically (``ast``), including
imports inside functions; only modules whose source lies under the project's source root count,
so third-party and standard-library modules are left to the environment hash (``uv.lock``).

Files are re-read and re-hashed on every call, so an edit is seen at once; only the parsing of a
given file content is cached for the life of the process.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
from pathlib import Path

LOCK_FILE = "uv.lock"

# Imports of a module, by (module, is package, sha256 of its content): parsed once per content.
_PARSED: dict[tuple[str, bool, str], frozenset[str]] = {}


def source_root(module: str) -> Path:
    """The folder holding ``module``'s top-level package (this checkout, for ``evenflow``)."""
    top = module.split(".", maxsplit=1)[0]
    spec = importlib.util.find_spec(top)
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations))).resolve().parent
    if spec is not None and spec.origin:
        return Path(spec.origin).resolve().parent
    raise ModuleNotFoundError(f"cannot find the source of '{top}'")


def module_hashes(entry: str, root: Path) -> dict[str, str]:
    """sha256 of every project module ``entry`` reaches by imports, keyed by path under ``root``.

    Parent packages count (importing ``evenflow.training.engine`` runs ``evenflow/__init__.py``). A module
    is a project module when its file lies under ``root``; anything else is not followed.
    """
    root = root.resolve()
    if _module_file(root, entry) is None:
        raise ModuleNotFoundError(f"'{entry}' is not a module under {root}")
    hashes: dict[str, str] = {}
    pending = [entry]
    seen: set[str] = set()
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        path = _module_file(root, name)
        if path is None:
            continue
        content = path.read_bytes()
        hashes[path.relative_to(root).as_posix()] = hashlib.sha256(content).hexdigest()
        is_package = path.name == "__init__.py"
        for imported in _imports(content, name, is_package):
            pending.extend(_with_parents(imported))
        pending.extend(_with_parents(name))
    return dict(sorted(hashes.items()))


def lock_hash(*folders: Path) -> str:
    """sha256 of the first ``uv.lock`` found in ``folders``, or a sentence saying none was."""
    for folder in folders:
        lock = folder / LOCK_FILE
        if lock.is_file():
            return hashlib.sha256(lock.read_bytes()).hexdigest()
    return f"absent: no {LOCK_FILE} in " + ", ".join(str(f) for f in dict.fromkeys(folders))


def _module_file(root: Path, name: str) -> Path | None:
    parts = name.split(".")
    if not all(part.isidentifier() for part in parts):
        return None
    base = root.joinpath(*parts)
    for candidate in (base / "__init__.py", base.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def _with_parents(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


def _imports(content: bytes, module: str, is_package: bool) -> frozenset[str]:
    key = (module, is_package, hashlib.sha256(content).hexdigest())
    if key not in _PARSED:
        _PARSED[key] = _parse_imports(content, module, is_package)
    return _PARSED[key]


def _parse_imports(content: bytes, module: str, is_package: bool) -> frozenset[str]:
    """Every module an import statement may load: ``from a import b`` yields ``a`` and ``a.b``."""
    names: set[str] = set()
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(content)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(node.module, node.level, package)
            if base is None:
                continue
            names.add(base)
            # ``from evenflow import boosters`` imports the submodule; a plain name is harmless.
            names.update(f"{base}.{alias.name}" for alias in node.names if alias.name != "*")
    return frozenset(names)


def _resolve(module: str | None, level: int, package: str) -> str | None:
    if level == 0:
        return module
    parts = package.split(".") if package else []
    if level - 1 > len(parts):
        return None
    anchor = parts[: len(parts) - (level - 1)]
    return ".".join([*anchor, module] if module else anchor) or None
