"""Full builds: atomic publish, manifest and its version check, pruning, the embedding cache.

Properties checked:
  1. a build killed half-way (SIGKILL or Ctrl-C) leaves the previous index serving and intact,
     and the next build removes the abandoned directory;
  2. an index whose format this version does not read is refused with what to do;
  3. the manifest records format, model, counts, checksum, time and vector index kind;
  4. old versions are pruned to `keep_versions`, never the current one;
  5. rebuilding an unchanged catalog embeds nothing; one changed title embeds one product.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from indexer import format as fmt
from indexer.build import build_index, prune_versions
from indexer.catalog import Product
from indexer.config import IndexConfig
from indexer.embedding import Embedder
from indexer.sample import generate_catalog, write_catalog
from search.engine import SearchEngine
from search.models import SearchRequest
from search.settings import Settings

FIXTURES = Path(__file__).parent / "fixtures"
ROOT = Path(__file__).parent.parent


class CountingEmbedder(Embedder):
    """The real embedder, counting the passages it actually encodes."""

    def __init__(self, inner: Embedder) -> None:
        super().__init__(inner.config)
        self._model = inner.model
        self.encoded = 0

    def encode(self, texts, progress=None):
        self.encoded += len(texts)
        return super().encode(texts, progress)


# Upper bounds only (the waits below return as soon as their event happens); scale them on a
# slow or shared machine with VITRINE_TEST_TIMEOUT_SCALE.
TIMEOUT_SCALE = float(os.environ.get("VITRINE_TEST_TIMEOUT_SCALE", "1"))
_EMBEDDED = re.compile(rb"embedding[^|\r\n]*\|[^|\r\n]*\|\s*([0-9]+)/")


class _Build:
    """`vitrine index build` in a subprocess, with an event set once it has embedded products
    (read from its progress bar on stderr): an interruption then lands inside the build, not
    before it, however slow the machine."""

    def __init__(self, catalog: Path, index_dir: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "search.cli", "index", "build", "--catalog", str(catalog), "--index-dir", str(index_dir)],
            cwd=ROOT,
            env={**os.environ, "HF_HUB_OFFLINE": "1"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            # A test run started in the background (nohup, a CI runner, `cmd &`) ignores SIGINT,
            # and a child inherits that: give the build Python's own Ctrl-C handling back.
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        self.embedding = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        tail = b""
        while chunk := os.read(self.process.stderr.fileno(), 4096):  # drain to the end: never block the build
            tail = (tail + chunk)[-4096:]
            if any(int(n) > 0 for n in _EMBEDDED.findall(tail)):
                self.embedding.set()

    def wait_until_embedding(self, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout * TIMEOUT_SCALE
        while not self.embedding.wait(0.1):
            assert self.process.poll() is None, "the build ended before it could be interrupted"
            assert time.monotonic() < deadline, "the build never started embedding"


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["kill-9", "ctrl-c"])
def test_build_interrupted_half_way_leaves_previous_index_serving(mutable_index_dir, tmp_path, embedder, sig) -> None:
    before = fmt.current_version_dir(mutable_index_dir)
    catalog = tmp_path / "bigger.jsonl"
    write_catalog(catalog, 3000, seed=5)  # many embedding batches: the signal lands in the middle
    build = _Build(catalog, mutable_index_dir)
    process = build.process
    try:
        build.wait_until_embedding()
        assert list((mutable_index_dir / "versions").glob(".building-*")), "the build writes a partial version"
        process.send_signal(sig)
        process.wait(timeout=300 * TIMEOUT_SCALE)  # an upper bound: returns when the build exits
    finally:
        if process.poll() is None:
            process.kill()
    assert fmt.current_version_dir(mutable_index_dir) == before
    engine = SearchEngine(mutable_index_dir, Settings(index_dir=mutable_index_dir), embedder=embedder)
    assert engine.search(SearchRequest(q="dress", limit=5)).hits
    partial = list((mutable_index_dir / "versions").glob(".building-*"))
    if sig == signal.SIGINT:
        assert partial == [], "Ctrl-C must clean up its partial version"
    # The next build publishes and removes whatever an abandoned build left behind.
    build_index(generate_catalog(20, seed=1), mutable_index_dir, embedder=embedder, progress=False)
    assert list((mutable_index_dir / "versions").glob(".building-*")) == []


@pytest.mark.parametrize("version", [0, 1, 2])
def test_unsupported_index_format_is_refused_with_what_to_do(version: int) -> None:
    with pytest.raises(fmt.UnsupportedIndexFormat) as caught:
        SearchEngine(FIXTURES / f"index_v{version}")
    message = str(caught.value)
    assert f"format version {version}" in message and "vitrine index build" in message


def test_missing_index_says_how_to_build_one(tmp_path) -> None:
    with pytest.raises(fmt.IndexNotFound, match="vitrine index build"):
        SearchEngine(tmp_path)


def test_manifest_records_format_model_counts_and_vector_index(tmp_path, embedder) -> None:
    products = generate_catalog(40, seed=2)
    flat = build_index(products, tmp_path / "a", embedder=embedder, progress=False).manifest
    assert flat.format_version == fmt.INDEX_FORMAT_VERSION
    assert flat.model == IndexConfig().model and flat.dimension == 384
    assert flat.products == 40 and flat.variants == sum(len(p.variants) for p in products)
    assert flat.catalog_checksum.startswith("sha256:") and flat.built_at and flat.build_seconds > 0
    assert flat.vector_index.kind == "flat"
    on_disk = fmt.read_manifest(fmt.current_version_dir(tmp_path / "a"))
    assert on_disk == flat
    hnsw = build_index(products, tmp_path / "b", IndexConfig(hnsw_threshold=10), embedder=embedder, progress=False).manifest
    assert hnsw.vector_index.kind == "hnsw"
    assert hnsw.vector_index.params == {"m": 16, "ef_construction": 40, "ef_search": 96}
    engine = SearchEngine(tmp_path / "b", Settings(index_dir=tmp_path / "b"), embedder=embedder)
    assert engine.search(SearchRequest(q=products[0].title, limit=1)).hits[0].id == products[0].id


def test_old_versions_are_pruned_but_never_the_current(tmp_path, embedder) -> None:
    products = generate_catalog(10, seed=3)
    config = IndexConfig(keep_versions=2)
    names = [build_index(products, tmp_path, config, embedder=embedder, progress=False).version_dir.name for _ in range(3)]
    kept = sorted(p.name for p in (tmp_path / "versions").iterdir())
    assert kept == sorted(names[1:])
    assert fmt.current_version_dir(tmp_path).name == names[-1]
    assert prune_versions(tmp_path, keep=1) == [names[1]]


def test_unchanged_catalog_rebuild_embeds_nothing(tmp_path, embedder) -> None:
    products = generate_catalog(60, seed=4)
    counting = CountingEmbedder(embedder)
    first = build_index(products, tmp_path, embedder=counting, progress=False).manifest
    assert counting.encoded == 60 and first.embedded == 60
    second = build_index(products, tmp_path, embedder=counting, progress=False).manifest
    assert counting.encoded == 60, "an unchanged catalog must not be re-embedded"
    assert second.embedded == 0 and second.embedding_cache_hits == 60

    changed = [p.model_copy(deep=True) for p in products]
    changed[7].title = "Completely New Title For A Product"
    third = build_index(changed, tmp_path, embedder=counting, progress=False).manifest
    assert counting.encoded == 61 and third.embedded == 1


def test_stock_only_changes_do_not_change_the_embedded_text(tmp_path, embedder) -> None:
    products = generate_catalog(30, seed=6)
    counting = CountingEmbedder(embedder)
    build_index(products, tmp_path, embedder=counting, progress=False)
    restocked: list[Product] = [p.model_copy(deep=True) for p in products]
    for product in restocked:
        for variant in product.variants:
            variant.stock += 5
        product.price = (product.price or 0) + 1
    build_index(restocked, tmp_path, embedder=counting, progress=False)
    assert counting.encoded == 30
