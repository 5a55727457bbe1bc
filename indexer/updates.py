"""Incremental catalog updates on the published index version, without a rebuild.

  - upsert: new or changed products. A product whose embedded text is unchanged keeps its
    ordinal and vector (no re-embedding); otherwise it gets a new ordinal and vector, embedded
    through the same cache as full builds.
  - delete: the product stops being live everywhere.
  - stock / price: per variant (by SKU) or per product; never re-embeds. Both rewrite the
    product's text-index document, whose filter fields (sizes in stock, stock state, price)
    retrieval filters and counts on.
Every change is logged in the store's change log in the same transaction as the data, so
readers (the query service, in any process) apply it on their next refresh.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
import tantivy

from indexer import format as fmt
from indexer.catalog import Product
from indexer.config import IndexConfig
from indexer.embedding import Embedder, EmbeddingCache, embed_with_cache
from indexer.lexical import delete_product, make_document, open_index
from indexer.product_store import ProductStore, StoredProduct
from indexer.text import passage

log = structlog.get_logger("vitrine.updates")

# Writers from several processes take turns on tantivy's single-writer lock.
_WRITER_RETRY_SECONDS = 10.0


@dataclass
class UpsertSummary:
    added: int = 0
    updated: int = 0
    embedded: int = 0


@dataclass
class StockSummary:
    updated: int = 0
    unknown: list[str] = field(default_factory=list)


def _needs_vector(row: StoredProduct | None, passage_hash: str) -> bool:
    """New products, and products whose embedded text changed, need a (new) vector."""
    return row is None or row.passage_hash != passage_hash


def _set_variant(field_name: str) -> Callable[[Product, str, Any], None]:
    def apply(product: Product, sku: str, value: Any) -> None:
        for variant in product.variants:
            if variant.sku == sku:
                setattr(variant, field_name, value)

    return apply


def _set_product_price(product: Product, _: str, price: Any) -> None:
    product.price = price


class CatalogUpdater:
    """Applies updates to the version CURRENT points at. Safe to share between threads."""

    def __init__(self, index_dir: str | Path, config: IndexConfig | None = None, embedder: Embedder | None = None) -> None:
        self.index_dir = Path(index_dir)
        self.version_dir = fmt.current_version_dir(self.index_dir)
        self.manifest = fmt.read_manifest(self.version_dir)
        base = config or IndexConfig()
        # Vectors must come from the model the index was built with.
        self.config = base.model_copy(update={"model": self.manifest.model, "backend": self.manifest.backend})
        self.embedder = embedder or Embedder(self.config)
        self.store = ProductStore(self.version_dir / fmt.STORE_FILE)
        self._tantivy: tantivy.Index | None = None
        self._lock = threading.Lock()

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> CatalogUpdater:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- products ------------------------------------------------------------------------

    def upsert(self, products: Sequence[Product]) -> UpsertSummary:
        summary = UpsertSummary()
        if not products:
            return summary
        passages = [passage(p, self.config.description_chars) for p in products]
        hashes = [hashlib.sha256(t.encode()).hexdigest() for t in passages]
        with self._lock:
            # A first look outside the write lock: embedding is the slow part and needs no lock.
            existing = {p.id: self.store.live_row(p.id) for p in products}
            need = [i for i, p in enumerate(products) if _needs_vector(existing[p.id], hashes[i])]
            vectors = self._embed(passages, need, summary)
            documents: list[tuple[str, Product, int]] = []
            with self.store.transaction():
                # Again under the write lock: another process may have written these products
                # since; what is stored now decides (no lost update, no duplicate ordinal).
                existing = {p.id: self.store.live_row(p.id) for p in products}
                late = [i for i, p in enumerate(products) if _needs_vector(existing[p.id], hashes[i]) and i not in vectors]
                vectors.update(self._embed(passages, late, summary))
                next_ord = self.store.next_ord()
                for i, product in enumerate(products):
                    row = existing[product.id]
                    if row is not None and not _needs_vector(row, hashes[i]):
                        self.store.replace_product(row.ord, product)
                        documents.append((product.id, product, row.ord))
                        summary.updated += 1
                        continue
                    if row is not None:
                        self.store.retire(row.ord)
                        summary.updated += 1
                    else:
                        summary.added += 1
                    self.store.add_product(next_ord, product, hashes[i], vectors[i])
                    documents.append((product.id, product, next_ord))
                    next_ord += 1
                self._write_text_index(documents, deleted=[])
        log.info("products upserted", added=summary.added, updated=summary.updated, embedded=summary.embedded)
        return summary

    def _embed(self, passages: list[str], which: list[int], summary: UpsertSummary) -> dict[int, Any]:
        if not which:
            return {}
        cache = EmbeddingCache(self.index_dir / fmt.EMBEDDING_CACHE_FILE, self.embedder.model_id)
        try:
            encoded, embedded = embed_with_cache(self.embedder, cache, [passages[i] for i in which])
        finally:
            cache.close()
        summary.embedded += embedded
        return {i: encoded[j] for j, i in enumerate(which)}

    def delete(self, product_ids: Sequence[str]) -> list[str]:
        """Delete products; returns the ids that were not found."""
        missing = []
        with self._lock, self.store.transaction():
            deleted = []
            for product_id in product_ids:
                row = self.store.live_row(product_id)
                if row is None:
                    missing.append(product_id)
                    continue
                self.store.retire(row.ord)
                deleted.append(product_id)
            if deleted:
                self._write_text_index([], deleted=deleted)
        return missing

    # ---- live fields ---------------------------------------------------------------------

    def set_stock(self, items: Sequence[tuple[str, int]]) -> StockSummary:
        """Set stock per SKU; a negative stock is rejected before anything is written."""
        for sku, stock in items:
            if stock < 0:
                raise ValueError(f"stock for SKU {sku!r} is {stock}; it must be 0 or more")
        with self._lock, self.store.transaction():
            ords = self.store.ords_for_skus([sku for sku, _ in items])
            summary, changed = self._edit(items, ords, _set_variant("stock"), kind="stock")
            # Sizes in stock and stock state are filter fields of the text index.
            self._write_text_index([(p.id, p, o) for o, p in changed.items()], deleted=[])
        return summary

    def set_prices(self, items: Sequence[tuple[str, float]], by: str = "sku") -> StockSummary:
        """Set prices per SKU (variant price) or per product id (`by="id"`)."""
        for key, price in items:
            if price < 0:
                raise ValueError(f"price for {key!r} is {price}; it must be 0 or more")
        with self._lock, self.store.transaction():
            if by == "sku":
                ords = self.store.ords_for_skus([key for key, _ in items])
                apply = _set_variant("price")
            else:
                rows = {key: self.store.live_row(key) for key, _ in items}
                ords = {key: row.ord for key, row in rows.items() if row is not None}
                apply = _set_product_price
            summary, changed = self._edit(items, ords, apply, kind="price")
            # The text index carries price as a filter and sort field; refresh those documents.
            self._write_text_index([(p.id, p, o) for o, p in changed.items()], deleted=[])
        return summary

    def _edit(
        self,
        items: Sequence[tuple[str, Any]],
        ords: dict[str, int],
        apply: Callable[[Product, str, Any], None],
        kind: str,
    ) -> tuple[StockSummary, dict[int, Product]]:
        """Apply `apply(product, key, value)` per item and store each changed product once."""
        summary = StockSummary()
        changed: dict[int, Product] = {}
        for key, value in items:
            ord_ = ords.get(key)
            if ord_ is None:
                summary.unknown.append(key)
                continue
            product = changed.get(ord_) or self.store.rows([ord_])[0].product
            apply(product, key, value)
            changed[ord_] = product
            summary.updated += 1
        for ord_, product in changed.items():
            self.store.replace_product(ord_, product, kind=kind)
        return summary, changed

    # ---- text index ----------------------------------------------------------------------

    def _write_text_index(self, documents: list[tuple[str, Product, int]], deleted: list[str]) -> None:
        if not documents and not deleted:
            return
        if self._tantivy is None:
            self._tantivy = open_index(self.version_dir / fmt.TANTIVY_DIR)
        writer = self._acquire_writer(self._tantivy)
        try:
            for product_id in deleted:
                delete_product(writer, product_id)
            for product_id, product, ord_ in documents:
                delete_product(writer, product_id)
                writer.add_document(make_document(product, ord_))
            writer.commit()
        except BaseException:
            writer.rollback()
            raise
        finally:
            # Release tantivy's single-writer lock at once so other processes can write.
            del writer

    def _acquire_writer(self, index: tantivy.Index) -> tantivy.IndexWriter:
        deadline = time.monotonic() + _WRITER_RETRY_SECONDS
        while True:
            try:
                return index.writer(heap_size=15_000_000, num_threads=1)
            except ValueError as exc:
                if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
