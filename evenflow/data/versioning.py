"""DVC versioning of shard directories.

``data/`` is tracked by ``data.dvc`` at the project root. Each run's shard directory also gets its
own DVC tree object (``<md5>.dir``) in the cache and the remote, so the exact data of any run can
be restored by that hash alone, even after other datasets or versions were added to ``data/``.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from dvc.repo import Repo
from dvc_data.hashfile.build import build
from dvc_data.hashfile.checkout import checkout
from dvc_data.hashfile.db import HashFileDB
from dvc_data.hashfile.hash_info import HashInfo
from dvc_data.hashfile.transfer import transfer
from dvc_data.hashfile.tree import Tree
from dvc_objects.fs.local import LocalFileSystem

from evenflow.errors import VersioningError
from evenflow.io import atomic_dir
from evenflow.logs import held_at

logger = logging.getLogger(__name__)

REMOTE_NAME = "evenflow-local"
# Validation results and Data Docs sit next to each batch but are reports, not versioned data.
DVCIGNORE = (
    "# Validation results and Data Docs sit next to each batch but are reports, not versioned data.\n"
    "validation/\n"
)


def ensure_repo(project_root: Path, remote: str) -> None:
    """Initialise DVC in ``project_root`` once and point its default remote at ``remote``."""
    os.environ.setdefault("DVC_NO_ANALYTICS", "1")
    if not (project_root / ".dvc").is_dir():
        _init_repo(project_root)
    # The remote's location is a setting of this machine, so it goes to the git-ignored local config;
    # the tracked .dvc/config is left alone, or every run would make the code look dirty.
    with Repo(str(project_root)) as repo, repo.config.edit("local") as conf:
        conf["remote"][REMOTE_NAME] = {"url": remote}
        conf["core"]["remote"] = REMOTE_NAME


def _init_repo(project_root: Path) -> None:
    no_scm = not (project_root / ".git").exists()
    # "Initialized DVC repository." and its git hints, on stdout
    with held_at(logging.WARNING, "dvc"):
        Repo.init(str(project_root), no_scm=no_scm).close()
    logger.info("initialised DVC in %s", project_root)
    (project_root / ".dvcignore").write_text(DVCIGNORE, encoding="utf-8")
    with Repo(str(project_root)) as repo, repo.config.edit("repo") as conf:
        conf["core"]["analytics"] = False
        conf["core"]["autostage"] = False


def version_directory(project_root: Path, data_root: Path, shard_dir: Path) -> str:
    """Track ``data_root`` with ``data.dvc``, store ``shard_dir``'s tree, push it, return its hash."""
    with Repo(str(project_root)) as repo:
        cwd = Path.cwd()
        try:
            os.chdir(project_root)  # DVC resolves some output paths against the working directory.
            # data.dvc is an output of the run, not a change for the user to stage: no git hint.
            repo.scm_context.quiet = True
            repo.add(str(data_root.relative_to(project_root)))
        except Exception as exc:
            raise VersioningError(f"dvc add {data_root} failed: {exc}") from exc
        finally:
            os.chdir(cwd)
        cache = repo.cache.local
        tree_hash = _store_tree(cache, shard_dir)
        _push(repo, cache, tree_hash)
    logger.info("versioned %s as %s", shard_dir, tree_hash.value)
    return str(tree_hash.value)


def _store_tree(cache: HashFileDB, directory: Path) -> HashInfo:
    staging, _, obj = build(cache, str(directory), LocalFileSystem(), "md5")
    transfer(staging, cache, {obj.hash_info}, hardlink=False, shallow=False)
    return obj.hash_info


def _push(repo: Repo, cache: HashFileDB, tree_hash: HashInfo) -> None:
    try:
        remote = repo.cloud.get_remote_odb(REMOTE_NAME)
        transfer(cache, remote, {tree_hash}, shallow=False)
    except Exception as exc:
        raise VersioningError(f"dvc push of {tree_hash.value} failed: {exc}") from exc


def restore_directory(project_root: Path, data_md5: str, target: Path) -> Path:
    """Check the tree ``data_md5`` out into ``target``, fetching it from the remote if needed."""
    hash_info = HashInfo("md5", data_md5)
    with Repo(str(project_root)) as repo:
        cache = repo.cache.local
        if not _in_cache(cache, hash_info):
            _fetch(repo, cache, hash_info)
        tree = Tree.load(cache, hash_info)
        with atomic_dir(target) as tmp:
            shutil.rmtree(tmp)
            checkout(str(tmp), LocalFileSystem(), tree, cache)
    return target


def _in_cache(cache: HashFileDB, hash_info: HashInfo) -> bool:
    try:
        tree = Tree.load(cache, hash_info)
    except (FileNotFoundError, ValueError):
        return False
    return all(cache.exists(oid.value) for _, _, oid in tree)


def _fetch(repo: Repo, cache: HashFileDB, hash_info: HashInfo) -> None:
    try:
        remote = repo.cloud.get_remote_odb(REMOTE_NAME)
        transfer(remote, cache, {hash_info}, shallow=False)
        Tree.load(cache, hash_info)
    except Exception as exc:
        raise VersioningError(
            f"data {hash_info.value} is in neither the DVC cache nor the remote '{REMOTE_NAME}': {exc}"
        ) from exc
