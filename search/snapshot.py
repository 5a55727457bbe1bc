"""An opened index version held in memory for searching, kept fresh from the store's change log.

Everything a query touches besides tantivy and faiss lives here in arrays indexed by product
ordinal: liveness, price, stock state, creation time, attribute columns for filters and facets.
`refresh()` applies the changes other writers logged (stock, price, upserts, deletes); the
engine calls it on a timer so updates are searchable within a fraction of a second.
"""

from __future__ import annotations

import threading
from datetime import datetime
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import structlog

from indexer import format as fmt
from indexer.catalog import Product
from indexer.lexical import effective_price as lexical_effective_price
from indexer.lexical import open_index
from indexer.product_store import ProductStore, StoredProduct
from indexer.vectors import load_vector_index
from search.columns import MultiValueColumn, SingleValueColumn
from search.vocabulary import Vocabulary

log = structlog.get_logger("vitrine.snapshot")

# A filtered nearest-neighbour search over at most this many products is an exact matrix
# product (~1 ms at 384 dimensions); over more, the vector index with an id selector.
EXACT_AMONG_AT_MOST = 10_000


def effective_price(product: Product) -> float:
    """The price a shopper sees first (nan when none): the same value the text index filters on."""
    price = lexical_effective_price(product)
    return float("nan") if price is None else price


# Products whose hit fields are kept (about 0.4 kB each; a catalog's head is far smaller).
HIT_FIELDS_KEPT = 20_000


class Snapshot:
    def __init__(
        self, version_dir: Path, ef_search: int | None = None, profile_attributes: tuple[str, ...] = ("material", "pattern", "gender")
    ) -> None:
        self.version_dir = version_dir
        # Checked first: an unsupported format is refused before any other file is opened.
        self.manifest = fmt.read_manifest(version_dir)
        self.tantivy = open_index(version_dir / fmt.TANTIVY_DIR)
        self.searcher = self.tantivy.searcher()
        self.schema = self.tantivy.schema
        self.store = ProductStore(version_dir / fmt.STORE_FILE)
        self.faiss = load_vector_index(version_dir / fmt.VECTORS_FILE, ef_search)
        self._lock = threading.RLock()
        # Bumped on every applied change; caches key on it.
        self.generation = 0

        self.seq = self.store.last_seq()
        rows = list(self.store.iter_rows())
        capacity = (rows[-1].ord + 1) if rows else 0
        self.products: list[Product | None] = [None] * capacity
        self.id_to_ord: dict[str, int] = {}
        self.live = np.zeros(capacity, dtype=bool)
        self.price = np.full(capacity, np.nan, dtype=np.float64)
        self.in_stock = np.zeros(capacity, dtype=bool)
        self.created = np.zeros(capacity, dtype=np.float64)
        self.brand = SingleValueColumn(capacity)
        self.category = MultiValueColumn(capacity)
        self.colour = MultiValueColumn(capacity)
        self.size = MultiValueColumn(capacity)  # sizes IN STOCK: a size filter means "available"
        self.size_all = MultiValueColumn(capacity)  # every size offered, in stock or not
        # Catalog attributes visitor profiles learn (material, pattern...), for personalization.
        self.attribute_columns = {key: MultiValueColumn(capacity) for key in profile_attributes}
        self.vocabulary = Vocabulary()
        # What a hit shows of a product (search.shaping), filled when the product is first shown
        # and dropped when a change replaces it: a page of 20 hits would otherwise walk every
        # product's variants for its stock and sizes on every request.
        self._hit_fields: dict[int, dict[str, Any]] = {}
        for row in rows:
            self._set_row(row)
        self.vocabulary.add_products(p for p in self.products if p is not None)

        self.vectors = self._load_vectors(capacity)

    # ---- loading -------------------------------------------------------------------------

    def _load_vectors(self, capacity: int) -> np.ndarray:
        """A dense copy of every vector (ordinal = row) for exact cosine of any candidate."""
        base = self.faiss.ntotal
        vectors = np.zeros((max(capacity, base), self.manifest.dimension), dtype=np.float32)
        if base:
            vectors[:base] = self.faiss.reconstruct_n(0, base)
        ords, deltas = self.store.vector_deltas(base)
        if deltas is not None:
            self._add_vectors(vectors, ords, deltas)
        return vectors

    def _add_vectors(self, vectors: np.ndarray, ords: list[int], deltas: np.ndarray) -> None:
        expected = self.faiss.ntotal
        for ord_, vector in zip(ords, deltas, strict=True):
            if ord_ < expected:
                continue
            if ord_ != expected:
                raise RuntimeError(f"vector ordinals out of sequence: got {ord_}, expected {expected}")
            self.faiss.add(vector.reshape(1, -1))
            vectors[ord_] = vector
            expected += 1

    def _set_row(self, row: StoredProduct) -> None:
        ord_ = row.ord
        self._ensure_capacity(ord_ + 1)
        product = row.product
        self._hit_fields.pop(ord_, None)
        old = self.products[ord_]
        if old is not None and self.id_to_ord.get(old.id) == ord_ and (not row.live or old.id != product.id):
            del self.id_to_ord[old.id]
        if not row.live:
            self.products[ord_] = None
            self.live[ord_] = False
            return
        self.products[ord_] = product
        self.id_to_ord[product.id] = ord_
        self.live[ord_] = True
        self.price[ord_] = effective_price(product)
        self.in_stock[ord_] = product.in_stock
        self.created[ord_] = product.created_at.timestamp() if isinstance(product.created_at, datetime) else 0.0
        self.brand.set(ord_, product.brand)
        self.category.set(ord_, product.categories)
        self.colour.set(ord_, product.colours)
        self.size.set(ord_, product.available_sizes)
        self.size_all.set(ord_, product.sizes)
        for key, column in self.attribute_columns.items():
            value = product.attributes.get(key)
            column.set(ord_, [value] if value else [])

    def _ensure_capacity(self, n: int) -> None:
        have = len(self.products)
        if n <= have:
            return
        grow = n - have
        self.products.extend([None] * grow)
        self.live = np.concatenate([self.live, np.zeros(grow, dtype=bool)])
        self.price = np.concatenate([self.price, np.full(grow, np.nan)])
        self.in_stock = np.concatenate([self.in_stock, np.zeros(grow, dtype=bool)])
        self.created = np.concatenate([self.created, np.zeros(grow)])
        columns: list[SingleValueColumn | MultiValueColumn] = [
            self.brand, self.category, self.colour, self.size, self.size_all, *self.attribute_columns.values()
        ]
        for column in columns:
            column.ensure_capacity(n)
        if hasattr(self, "vectors") and self.vectors.shape[0] < n:
            self.vectors = np.concatenate(
                [self.vectors, np.zeros((n - self.vectors.shape[0], self.vectors.shape[1]), np.float32)]
            )

    # ---- freshness -----------------------------------------------------------------------

    def refresh(self) -> int:
        """Apply changes logged since the last refresh. Returns how many were applied."""
        with self._lock:
            changes = self.store.changes_since(self.seq)
            if not changes:
                return 0
            ords = sorted({c.ord for c in changes})
            rows = self.store.rows(ords)
            for row in rows:
                self._set_row(row)
            self.vocabulary.add_products(r.product for r in rows if r.live)
            ords_new, deltas = self.store.vector_deltas(self.faiss.ntotal)
            if deltas is not None:
                self._ensure_capacity(ords_new[-1] + 1)
                self._add_vectors(self.vectors, ords_new, deltas)
            if any(c.kind in ("upsert", "delete", "price", "stock") for c in changes):
                self.tantivy.reload()
                self.searcher = self.tantivy.searcher()
            self.seq = changes[-1].seq
            self.generation += 1
            log.debug("changes applied", count=len(changes), seq=self.seq)
            return len(changes)

    # ---- reads ---------------------------------------------------------------------------

    @property
    def size_n(self) -> int:
        return len(self.products)

    def product(self, product_id: str) -> Product | None:
        ord_ = self.id_to_ord.get(product_id)
        return self.products[ord_] if ord_ is not None else None

    def hit_fields(self, ord_: int) -> dict[str, Any] | None:
        """The live product at `ord_` as a hit shows it, without a score (None: deleted). The
        same dictionary is handed to every caller: copy it to add to it."""
        fields = self._hit_fields.get(ord_)
        if fields is not None:
            return fields
        with self._lock:  # a change applied meanwhile (refresh, under this lock) is not cached stale
            product = self.products[ord_]
            if product is None:
                return None
            price = float(self.price[ord_])
            fields = {
                "id": product.id,
                "title": product.title,
                "brand": product.brand,
                "price": None if price != price else price,  # nan: no price
                "url": product.url,
                "image": product.image,
                "in_stock": product.in_stock,
                "available_sizes": product.available_sizes,
            }
            if len(self._hit_fields) >= HIT_FIELDS_KEPT:
                self._hit_fields.clear()  # the products shown most come back at once
            self._hit_fields[ord_] = fields
        return fields

    def counts(self) -> dict[str, int]:
        live = [p for p in self.products if p is not None]
        return {"products": len(live), "variants": sum(len(p.variants) for p in live)}

    def search_vectors(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        with self._lock:  # faiss indexes are not safe to search while vectors are added
            scores, ids = self.faiss.search(query.reshape(1, -1), k)
        return ids[0], scores[0]

    def cosines(self, ords: np.ndarray, query: np.ndarray) -> np.ndarray:
        """Each product's similarity to the query (normalised vectors: the dot product).

        One dot product per row, rounded alike whichever rows are asked together: a BLAS
        matrix-vector product rounds some rows differently by their position in the batch, so a
        product's score (and its order among equal products) would depend on the pool it is in.
        Also faster than a multi-threaded BLAS call on a busy machine."""
        return np.einsum("ij,j->i", self.vectors[ords], query)

    def search_vectors_among(self, query: np.ndarray, k: int, ords: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The k nearest among `ords` only (sorted ordinals): exact over a small subset (a matrix
        product, and perfect), the vector index with an id selector over a large one."""
        if len(ords) <= EXACT_AMONG_AT_MOST:
            scores = self.cosines(ords, query)
            top = np.argpartition(-scores, k - 1)[:k] if len(ords) > k else np.arange(len(ords))
            top = top[np.argsort(-scores[top], kind="stable")]
            return ords[top], scores[top]
        with self._lock:
            allowed = np.zeros(self.faiss.ntotal, dtype=bool)
            allowed[ords[ords < self.faiss.ntotal]] = True
            bits = np.packbits(allowed, bitorder="little")
            selector = faiss.IDSelectorBitmap(self.faiss.ntotal, faiss.swig_ptr(bits))
            if isinstance(self.faiss, faiss.IndexHNSW):
                params = faiss.SearchParametersHNSW(sel=selector, efSearch=max(self.faiss.hnsw.efSearch, k))
            else:
                params = faiss.SearchParameters(sel=selector)
            scores, ids = self.faiss.search(query.reshape(1, -1), k, params=params)
        return ids[0], scores[0]

    def close(self) -> None:
        self.store.close()

    def __repr__(self) -> str:
        return f"Snapshot({self.version_dir.name}, products={len(self.id_to_ord)})"


def faiss_threads(n: int = 1) -> None:
    """Single-threaded faiss and BLAS for query-time work.

    One query at a time is small work: threads cost more than they save and fight uvicorn's.
    For BLAS it is worse than that: numpy's OpenBLAS splits even the small (candidates x 384)
    cosine product over its 2 threads, and waking the second one costs ~3 ms a query on 2
    busy cores, against 0.1 ms single-threaded (same results: each row's dot product is
    computed the same way whichever thread does it).
    """
    faiss.omp_set_num_threads(n)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - a transitive dependency (scikit-learn) today
        return
    threadpool_limits(n, user_api="blas")
