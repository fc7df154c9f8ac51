"""File helpers that never leave half-written data behind: write to a temp path, then rename."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pandas loads in a second and a half: not for a command that writes no frame
    import pandas as pd

_CHUNK = 1 << 20


def file_md5(path: Path) -> str:
    """Return the md5 of a file's bytes, the same digest DVC uses for file objects."""
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    """Return the sha256 of a file's bytes (used to bind evidence to a decision)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


@contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temp path beside ``target``; rename it onto ``target`` only if the block succeeds."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        if tmp.is_file():
            # mkstemp creates 0600; outputs are handed to other people (scores, reports).
            tmp.chmod(0o644)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def atomic_dir(target: Path) -> Iterator[Path]:
    """Yield a temp directory beside ``target``; swap it in as ``target`` only on success."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        yield tmp
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def write_text_atomic(target: Path, text: str) -> Path:
    """Write ``text`` to ``target`` atomically and return the path."""
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return target


def write_json_atomic(target: Path, payload: Any) -> Path:
    """Write ``payload`` as indented, key-sorted JSON, atomically."""
    return write_text_atomic(
        target, json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n"
    )


def write_parquet_atomic(frame: pd.DataFrame, target: Path) -> Path:
    """Write ``frame`` as parquet (no index), atomically, and return the path."""
    with atomic_path(target) as tmp:
        frame.to_parquet(tmp, index=False)
    return target
