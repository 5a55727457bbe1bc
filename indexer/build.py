"""Full index build with atomic publish.

A build writes a complete new version under INDEX_DIR/versions/.building-<name>, renames it to
its final name once every file is on disk, and only then replaces the CURRENT pointer. A crash
or Ctrl-C at any point leaves the previous version serving and intact; the half-built directory
is removed by the next build.

A rebuild whose vectors all equal the published version's (an unchanged catalog, every vector
from the embedding cache) shares that version's vector file instead of rebuilding the index.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import structlog
from tqdm import tqdm

from indexer import format as fmt
from indexer.catalog import Product
from indexer.config import IndexConfig
from indexer.embedding import Embedder, EmbeddingCache, embed_with_cache
from indexer.importers import ImportReport, load_catalog
from indexer.lexical import make_document, open_index
from indexer.product_store import ProductStore
from indexer.text import passage
from indexer.vectors import (
    build_vector_index,
    holds_vectors,
    save_vector_index,
    share_vector_index,
    vector_index_info,
)

log = structlog.get_logger("vitrine.indexer")

BUILDING_PREFIX = ".building-"


@dataclass
class BuildResult:
    manifest: fmt.Manifest
    version_dir: Path
    report: ImportReport | None = None
    pruned: list[str] = field(default_factory=list)


def file_checksum(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return "sha256:" + digest.hexdigest()


def products_checksum(products: Sequence[Product]) -> str:
    digest = hashlib.sha256()
    for product in products:
        digest.update(product.to_json().encode())
        digest.update(b"\n")
    return "sha256:" + digest.hexdigest()


def build_from_catalog(
    catalog: str | Path,
    index_dir: str | Path,
    config: IndexConfig | None = None,
    catalog_format: str | None = None,
    embedder: Embedder | None = None,
    progress: bool = True,
) -> BuildResult:
    """Import a catalog file and build + publish an index from it."""
    config = config or IndexConfig()
    catalog = Path(catalog)
    report = load_catalog(catalog, catalog_format, max_rejected_share=config.max_rejected_share)
    for rejection in report.rejections:
        log.warning("row rejected", file=rejection.file, line=rejection.line, reason=rejection.reason)
    result = build_index(
        report.products,
        index_dir,
        config,
        embedder=embedder,
        checksum=file_checksum(catalog),
        source=str(catalog),
        progress=progress,
        rejected_rows=len(report.rejections),
    )
    result.report = report
    return result


def build_index(
    products: Sequence[Product],
    index_dir: str | Path,
    config: IndexConfig | None = None,
    *,
    embedder: Embedder | None = None,
    checksum: str | None = None,
    source: str | None = None,
    progress: bool = True,
    rejected_rows: int = 0,
) -> BuildResult:
    config = config or IndexConfig()
    embedder = embedder or Embedder(config)
    index_dir = Path(index_dir)
    versions = fmt.versions_dir(index_dir)
    versions.mkdir(parents=True, exist_ok=True)
    _remove_abandoned_builds(versions)

    started = time.perf_counter()
    name = fmt.new_version_name()
    building = versions / f"{BUILDING_PREFIX}{name}"
    building.mkdir()
    try:
        passages = [passage(p, config.description_chars) for p in products]
        with _phase("embedding", products=len(products)):
            vectors, encoded = _embed(embedder, index_dir, passages, progress)
        with _phase("vector index"):
            vector_info = _write_vector_index(index_dir, building, vectors, config)
        with _phase("text index"):
            _write_text_index(building, products, config, progress)
        with _phase("product store"):
            hashes = [hashlib.sha256(p.encode()).hexdigest() for p in passages]
            with ProductStore(building / fmt.STORE_FILE) as store:
                store.insert_all(products, hashes)

        manifest = fmt.Manifest(
            format_version=fmt.INDEX_FORMAT_VERSION,
            version=name,
            model=config.model,
            backend=config.backend,
            dimension=int(vectors.shape[1]) if len(products) else embedder.dimension,
            products=len(products),
            variants=sum(len(p.variants) for p in products),
            catalog_checksum=checksum or products_checksum(products),
            catalog_source=source,
            built_at=datetime.now(UTC),
            build_seconds=round(time.perf_counter() - started, 3),
            embedded=encoded,
            embedding_cache_hits=len(products) - encoded,
            vector_index=vector_info,
            rejected_rows=rejected_rows,
        )
        fmt.write_manifest(building, manifest)
        final = versions / name
        building.rename(final)
    except BaseException:
        # Ctrl-C included: never leave a half-built version that could be published.
        shutil.rmtree(building, ignore_errors=True)
        raise
    fmt.publish(index_dir, final)
    pruned = prune_versions(index_dir, config.keep_versions)
    log.info(
        "index published",
        version=name,
        products=manifest.products,
        variants=manifest.variants,
        embedded=encoded,
        cache_hits=manifest.embedding_cache_hits,
        vector_index=vector_info.kind,
        seconds=manifest.build_seconds,
    )
    return BuildResult(manifest=manifest, version_dir=final, pruned=pruned)


@contextmanager
def _phase(name: str, **fields: object) -> Iterator[None]:
    """Log how long one step of a build took (debug level: for profiling builds)."""
    started = time.perf_counter()
    yield
    log.debug("build phase done", phase=name, seconds=round(time.perf_counter() - started, 3), **fields)


def _embed(
    embedder: Embedder, index_dir: Path, passages: list[str], progress: bool
) -> tuple[np.ndarray, int]:
    cache = EmbeddingCache(index_dir / fmt.EMBEDDING_CACHE_FILE, embedder.model_id)
    try:
        with tqdm(total=len(passages), desc="embedding", unit="products", disable=not progress) as bar:
            return embed_with_cache(embedder, cache, passages, bar.update)
    finally:
        cache.close()


def _write_vector_index(
    index_dir: Path, building: Path, vectors: np.ndarray, config: IndexConfig
) -> fmt.VectorIndexInfo:
    """Build the vector index, or share the published version's file when it holds the very same
    vectors (an unchanged catalog): an HNSW graph of 50k vectors takes seconds to rebuild."""
    info = vector_index_info(len(vectors), config)
    previous = _published_vector_file(index_dir, info)
    if previous is not None and holds_vectors(previous, vectors):
        share_vector_index(previous, building / fmt.VECTORS_FILE)
        log.info("vector index unchanged, shared", version=previous.parent.name, kind=info.kind)
        return info
    index, info = build_vector_index(vectors, config)
    save_vector_index(index, building / fmt.VECTORS_FILE)
    return info


def _published_vector_file(index_dir: Path, info: fmt.VectorIndexInfo) -> Path | None:
    """The published version's vector file if it is an index of the same kind and parameters."""
    try:
        version_dir = fmt.current_version_dir(index_dir)
        manifest = fmt.read_manifest(version_dir)
    except (fmt.IndexNotFound, fmt.UnsupportedIndexFormat):
        return None
    path = version_dir / fmt.VECTORS_FILE
    return path if manifest.vector_index == info and path.is_file() else None


def _write_text_index(building: Path, products: Sequence[Product], config: IndexConfig, progress: bool) -> None:
    index = open_index(building / fmt.TANTIVY_DIR, create=True)
    writer = index.writer(heap_size=config.writer_heap_bytes, num_threads=min(2, os.cpu_count() or 1))
    for ord_, product in enumerate(tqdm(products, desc="text index", unit="products", disable=not progress)):
        writer.add_document(make_document(product, ord_))
    writer.commit()
    writer.wait_merging_threads()


def prune_versions(index_dir: Path, keep: int) -> list[str]:
    """Delete the oldest published versions beyond `keep`; never the current one."""
    current = fmt.current_version_dir(index_dir).name
    names = sorted(
        p.name for p in fmt.versions_dir(index_dir).iterdir()
        if p.is_dir() and not p.name.startswith(".")
    )
    removed = []
    for name in names[: max(0, len(names) - keep)]:
        if name != current:
            shutil.rmtree(fmt.versions_dir(index_dir) / name, ignore_errors=True)
            removed.append(name)
    return removed


def _remove_abandoned_builds(versions: Path) -> None:
    for path in versions.glob(BUILDING_PREFIX + "*"):
        pid = path.name.rsplit("-", 1)[-1]
        if pid.isdigit() and _alive(int(pid)) and int(pid) != os.getpid():
            continue  # another build in progress
        shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
