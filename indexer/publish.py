"""Index versions shared between machines: publish a finished version to a shared directory,
and pull the newest one from there into a replica's own index directory.

The shared directory (a mounted volume, `index.publish_dir`) has the layout of an index
directory, without the embedding cache:

    PUBLISH_DIR/
      CURRENT                the version replicas should serve (replaced atomically, last)
      versions/<version>/    complete copies; `.incoming-*` directories are copies in progress

Publishing copies into `versions/.incoming-<version>-<pid>`, renames it to its final name once
every file is written and synced, then replaces CURRENT: a replica that reads CURRENT always
finds a complete version. Pulling does the same into the replica's index directory
(`versions/.pulling-…`, rename, then the local CURRENT), so the replica's engine swaps to it
exactly as it swaps to a version built in place (`SearchEngine.refresh`: between requests,
requests in flight finish on the old snapshot).

SQLite files are copied with SQLite's online backup, so a version that is being written to
(catalog updates land in the live version's store) is copied as one consistent state.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from indexer import format as fmt
from indexer.build import prune_versions

INCOMING_PREFIX = ".incoming-"
PULLING_PREFIX = ".pulling-"
LOCK_FILE = ".publish.lock"


class PublishError(RuntimeError):
    """A version cannot be published or pulled; the message says why."""


def publish_version(index_dir: Path, publish_dir: Path, version: str | None = None) -> str:
    """Copy a finished version of `index_dir` (default: its current one) to `publish_dir` and
    make it the version replicas serve. Returns the version name. Publishing a version that is
    already there only moves the pointer (a rollback is `publish_version(..., old_version)`)."""
    index_dir, publish_dir = Path(index_dir), Path(publish_dir)
    source = fmt.versions_dir(index_dir) / version if version else fmt.current_version_dir(index_dir)
    if not source.is_dir():
        raise PublishError(f"{index_dir} has no version {version!r}: see `vitrine index info --index-dir {index_dir}`")
    fmt.read_manifest(source)  # complete and of a supported format, or refused here
    fmt.versions_dir(publish_dir).mkdir(parents=True, exist_ok=True)
    with _locked(publish_dir):
        target = fmt.versions_dir(publish_dir) / source.name
        if not target.is_dir():
            _copy_version(source, fmt.versions_dir(publish_dir), INCOMING_PREFIX)
        fmt.publish(publish_dir, target)
    return source.name


def published_version(publish_dir: Path) -> str | None:
    """The version the shared directory points at, or None while nothing is published."""
    try:
        return fmt.current_version_dir(Path(publish_dir)).name
    except fmt.IndexNotFound:
        return None


def pull_published(publish_dir: Path, index_dir: Path, keep: int = 3) -> str | None:
    """Make the shared directory's current version this index directory's current one.

    Copies it first when it is not here yet. Returns the version name when the local pointer
    moved, None when there was nothing new. Several processes on one index directory (the
    workers of one `vitrine serve`) may call this at once: one copies, the others then find
    the copy. Raises UnsupportedIndexFormat for a version this Vitrine cannot read (the
    replica keeps serving what it has)."""
    publish_dir, index_dir = Path(publish_dir), Path(index_dir)
    name = published_version(publish_dir)
    if name is None:
        return None
    try:
        if fmt.current_version_dir(index_dir).name == name:
            return None
    except fmt.IndexNotFound:
        pass
    source = fmt.versions_dir(publish_dir) / name
    fmt.read_manifest(source)
    fmt.versions_dir(index_dir).mkdir(parents=True, exist_ok=True)
    with _locked(index_dir):
        try:
            if fmt.current_version_dir(index_dir).name == name:
                return None  # another worker pulled it while this one waited for the lock
        except fmt.IndexNotFound:
            pass
        for abandoned in fmt.versions_dir(index_dir).glob(PULLING_PREFIX + "*"):
            shutil.rmtree(abandoned, ignore_errors=True)  # only the lock holder pulls
        target = fmt.versions_dir(index_dir) / name
        if not target.is_dir():
            _copy_version(source, fmt.versions_dir(index_dir), PULLING_PREFIX)
        fmt.publish(index_dir, target)
        # A process still answering from a pruned version keeps its open files until it swaps.
        prune_versions(index_dir, keep)
    return name


def _copy_version(source: Path, versions: Path, prefix: str) -> Path:
    """Copy a version directory under a temporary name, sync it, rename it into place."""
    temporary = versions / f"{prefix}{source.name}-{os.getpid()}"
    shutil.rmtree(temporary, ignore_errors=True)
    try:
        _copy_tree(source, temporary)
        _sync_tree(temporary)
        target = versions / source.name
        os.rename(temporary, target)
        _sync_dir(versions)
        return target
    finally:
        shutil.rmtree(temporary, ignore_errors=True)


def _copy_tree(source: Path, target: Path) -> None:
    target.mkdir(parents=True)
    for entry in source.iterdir():
        if entry.name.endswith(("-wal", "-shm", "-journal")):
            continue  # their content reaches the copy through the backup below
        if entry.is_dir():
            _copy_tree(entry, target / entry.name)
        elif entry.suffix == ".sqlite":
            _backup_sqlite(entry, target / entry.name)
        else:
            shutil.copy2(entry, target / entry.name)


def _backup_sqlite(source: Path, target: Path) -> None:
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
        # The copy is a plain file: no WAL beside it until a writer opens it.
        dst.execute("PRAGMA journal_mode=DELETE")
    finally:
        dst.close()
        src.close()


def _sync_tree(path: Path) -> None:
    for root, _dirs, files in os.walk(path):
        for name in files:
            with open(os.path.join(root, name), "rb") as handle:
                os.fsync(handle.fileno())
        _sync_dir(Path(root))


def _sync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def _locked(directory: Path) -> Iterator[None]:
    with open(directory / LOCK_FILE, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
