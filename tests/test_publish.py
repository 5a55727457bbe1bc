"""Index versions published to a shared directory and pulled by replicas (indexer/publish.py).

Properties checked, on real indexes:
  1. publishing copies the current version whole to the shared directory, points its CURRENT
     at it last, and leaves no temporary copy; publishing it again only moves the pointer;
  2. a replica pulls the published version into its own index directory, its engine swaps to
     it on refresh and finds a product only the new version has; the next pull has nothing new;
  3. an older version can be published again (rollback) and replicas follow it;
  4. a published version of a format this Vitrine cannot read is refused: the replica keeps
     its version;
  5. several workers on one index directory pulling at once copy it once and agree;
  6. an empty shared directory has nothing to pull.
"""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import pytest

from indexer import format as fmt
from indexer.build import build_index
from indexer.catalog import Product
from indexer.publish import (
    INCOMING_PREFIX,
    PULLING_PREFIX,
    publish_version,
    published_version,
    pull_published,
)
from search.engine import SearchEngine
from search.models import SearchRequest
from search.settings import Settings

NEW_PRODUCT = Product(id="ops-new-1", title="Zephyrquill glacier parka", brand="Northwind", categories=["Jackets"])


@pytest.fixture
def new_version_dir(index_dir: Path, tmp_path: Path, sample_products, embedder) -> Path:
    """An index directory whose current version has one product more than the sample's (built
    on a copy, so its embedding cache makes the build embed one passage)."""
    build_dir = tmp_path / "build"
    shutil.copytree(index_dir, build_dir, ignore=shutil.ignore_patterns("state"))
    build_index([*sample_products, NEW_PRODUCT], build_dir, embedder=embedder, progress=False)
    return build_dir


def _finds_new_product(engine: SearchEngine) -> bool:
    return any(hit.id == NEW_PRODUCT.id for hit in engine.search(SearchRequest(q="zephyrquill parka")).hits)


def test_publishing_copies_the_version_whole_and_moves_the_pointer_last(new_version_dir, tmp_path) -> None:
    shared = tmp_path / "shared"
    name = publish_version(new_version_dir, shared)
    source = fmt.current_version_dir(new_version_dir)
    assert name == source.name and published_version(shared) == name
    copy = fmt.versions_dir(shared) / name
    assert fmt.read_manifest(copy) == fmt.read_manifest(source)
    assert sorted(p.relative_to(copy).as_posix() for p in copy.rglob("*") if not p.name.endswith(("-wal", "-shm"))) == sorted(
        p.relative_to(source).as_posix() for p in source.rglob("*") if not p.name.endswith(("-wal", "-shm"))
    )
    assert not list(fmt.versions_dir(shared).glob(INCOMING_PREFIX + "*"))
    assert publish_version(new_version_dir, shared) == name  # again: nothing copied, same pointer


def test_a_replica_pulls_the_published_version_and_its_engine_swaps_to_it(index_dir, mutable_index_dir, new_version_dir, tmp_path, embedder) -> None:
    shared = tmp_path / "shared"
    engine = SearchEngine(mutable_index_dir, Settings(index_dir=mutable_index_dir), embedder=embedder)
    try:
        assert not _finds_new_product(engine)
        assert pull_published(shared, mutable_index_dir) is None  # nothing published yet
        name = publish_version(new_version_dir, shared)
        assert pull_published(shared, mutable_index_dir) == name
        assert fmt.current_version_dir(mutable_index_dir).name == name
        assert not list(fmt.versions_dir(mutable_index_dir).glob(PULLING_PREFIX + "*"))
        assert engine.refresh()
        assert engine.snapshot.version_dir.name == name
        assert _finds_new_product(engine)
        assert pull_published(shared, mutable_index_dir) is None

        # Rollback: the sample's own version published again; the replica follows.
        old = fmt.current_version_dir(index_dir).name
        publish_version(index_dir, shared)
        assert pull_published(shared, mutable_index_dir) == old
        assert engine.refresh() and engine.snapshot.version_dir.name == old
        assert not _finds_new_product(engine)
    finally:
        engine.close()


def test_a_version_of_an_unreadable_format_is_refused_and_the_replica_keeps_its_own(mutable_index_dir, new_version_dir, tmp_path) -> None:
    shared = tmp_path / "shared"
    name = publish_version(new_version_dir, shared)
    manifest_path = fmt.versions_dir(shared) / name / fmt.MANIFEST_FILE
    manifest = json.loads(manifest_path.read_text())
    manifest["format_version"] = 999
    manifest_path.write_text(json.dumps(manifest))
    before = fmt.current_version_dir(mutable_index_dir).name
    with pytest.raises(fmt.UnsupportedIndexFormat):
        pull_published(shared, mutable_index_dir)
    assert fmt.current_version_dir(mutable_index_dir).name == before
    assert not (fmt.versions_dir(mutable_index_dir) / name).exists()


def test_workers_pulling_at_once_copy_once_and_agree(mutable_index_dir, new_version_dir, tmp_path) -> None:
    shared = tmp_path / "shared"
    name = publish_version(new_version_dir, shared)
    results: list[str | None] = []
    errors: list[BaseException] = []

    def pull() -> None:
        try:
            results.append(pull_published(shared, mutable_index_dir))
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=pull) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert results.count(name) == 1 and results.count(None) == 3
    assert fmt.current_version_dir(mutable_index_dir).name == name
    assert not list(fmt.versions_dir(mutable_index_dir).glob(PULLING_PREFIX + "*"))
