"""Cache keys cover the code a stage really runs: its entry point's import closure, module by module."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from evenflow.govern import code_closure
from tasks.caching import MODULE_PART, miss_reason
from tests.conftest import REPO_ROOT

ENTRY = "evenflow.usecases.train"  # what the train, evaluate and explain task bodies call


def _copy_of_evenflow(tmp_path: Path) -> Path:
    root = tmp_path / "src"
    shutil.copytree(
        REPO_ROOT / "evenflow", root / "evenflow", ignore=shutil.ignore_patterns("__pycache__")
    )
    return root


def _parts(hashes: dict[str, str]) -> dict[str, str]:
    return {f"{MODULE_PART}{path}": value for path, value in hashes.items()}


def test_closure_of_the_train_entry_point_reaches_modules_imported_only_indirectly() -> None:
    root = code_closure.source_root(ENTRY)

    hashes = code_closure.module_hashes(ENTRY, root)

    assert root == REPO_ROOT
    # pipeline imports training, which imports boosters; the parent package runs too.
    assert {
        "evenflow/usecases/train.py",
        "evenflow/training/engine.py",
        "evenflow/training/boosters.py",
    } <= set(hashes)
    assert "evenflow/__init__.py" in hashes
    assert all(path.startswith("evenflow/") for path in hashes), "third-party code followed"
    assert "evenflow/cli/main.py" not in hashes  # not imported by the stage's code


def test_editing_an_indirect_import_changes_the_hash_and_names_the_module(tmp_path: Path) -> None:
    root = _copy_of_evenflow(tmp_path)
    before = code_closure.module_hashes(ENTRY, root)
    assert before == code_closure.module_hashes(ENTRY, REPO_ROOT), "the copy differs already"

    boosters = root / "evenflow" / "training" / "boosters.py"
    boosters.write_text(boosters.read_text() + "\n# a comment changes the bytes\n")
    after = code_closure.module_hashes(ENTRY, root)

    assert [p for p in after if after[p] != before[p]] == ["evenflow/training/boosters.py"]
    assert (
        miss_reason(_parts(before), _parts(after)) == "code changed: evenflow/training/boosters.py"
    )
    with_outputs = miss_reason(
        {**_parts(before), "code": "a", "outputs": "x"},
        {**_parts(after), "code": "b", "outputs": "y"},
    )
    assert (
        with_outputs
        == "code changed: evenflow/training/boosters.py; changed since last run: outputs"
    )


def test_a_new_import_is_seen_at_once_and_a_removed_module_is_named(tmp_path: Path) -> None:
    root = _copy_of_evenflow(tmp_path)
    before = code_closure.module_hashes(ENTRY, root)
    assert "evenflow/ops/deployments.py" not in before

    boosters = root / "evenflow" / "training" / "boosters.py"
    boosters.write_text(
        boosters.read_text() + "\n\ndef _late():\n    from evenflow.ops import deployments\n"
    )
    after = code_closure.module_hashes(ENTRY, root)

    assert "evenflow/ops/deployments.py" in after
    reason = miss_reason(_parts(after), _parts(before)) or ""
    assert reason.startswith("code changed: ")
    # the edited module, and the modules in the previous closure that are gone from this one
    assert set(reason.removeprefix("code changed: ").split(", ")) == {
        "evenflow/training/boosters.py",
        "evenflow/ops/__init__.py",
        "evenflow/ops/deployments.py",
    }


def test_relative_and_submodule_imports_resolve_within_the_project(tmp_path: Path) -> None:
    files = {
        "app/__init__.py": "from . import entry\n",
        "app/entry.py": "import json\nfrom .sub import leaf\nfrom app import sibling\n",
        "app/sibling.py": "import numpy\n",
        "app/sub/__init__.py": "",
        "app/sub/leaf.py": "from .. import helpers\nfrom ..missing import nothing\n",
        "app/helpers.py": "from app.sub.leaf import *\n",
        "app/unused.py": "",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)

    hashes = code_closure.module_hashes("app.entry", tmp_path)

    assert set(hashes) == set(files) - {"app/unused.py"}
    with pytest.raises(ModuleNotFoundError):
        code_closure.module_hashes("app.nowhere", tmp_path)


def test_lock_file_is_hashed_or_reported_absent(tmp_path: Path) -> None:
    assert "absent: no uv.lock in" in code_closure.lock_hash(tmp_path)
    (tmp_path / "uv.lock").write_text("version = 1\n")
    assert len(code_closure.lock_hash(tmp_path / "nowhere", tmp_path)) == 64
