"""Full index build with atomic publish.

A build writes a complete new version under INDEX_DIR/versions/.building-<name>, renames it to
its final name once every file is on disk, and only then replaces the CURRENT pointer. A crash
or Ctrl-C at any point leaves the previous version serving and intact; the half-built directory
is removed by the next build.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import structlog
from tqdm import tqdm

from indexer import format as fmt
from indexer.catalog import Product
from indexer.config import IndexConfig
from indexer.embedding import Embedder, EmbeddingCache, embed_with_cache
from indexer.importers import ImportReport, load_catalog
from indexer.lexical import make_document, open_index
from indexer.store import ProductStore
from indexer.text import passage
from indexer.vectors import build_vector_index, save_vector_index

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
        cache = EmbeddingCache(index_dir / fmt.EMBEDDING_CACHE_FILE, embedder.model_id)
        try:
            with tqdm(
                total=len(passages), desc="embedding", unit="products", disable=not progress
            ) as bar:
                vectors, encoded = embed_with_cache(embedder, cache, passages, bar.update)
        finally:
            cache.close()

        vector_index, vector_info = build_vector_index(vectors, config)
        save_vector_index(vector_index, building / fmt.VECTORS_FILE)

        tantivy_index = open_index(building / fmt.TANTIVY_DIR, create=True)
        writer = tantivy_index.writer(heap_size=config.writer_heap_bytes, num_threads=min(2, os.cpu_count() or 1))
        for ord_, product in enumerate(tqdm(products, desc="text index", unit="products", disable=not progress)):
            writer.add_document(make_document(product, ord_))
        writer.commit()
        writer.wait_merging_threads()

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
