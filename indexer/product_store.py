"""The product store of one index version: the source of truth for product data and live fields.

SQLite in WAL mode, so the query service reads while the indexer (or an admin request) writes.
Every write appends to a change log; readers poll it (`changes_since`) to apply stock, price
and catalog changes to their in-memory view within a fraction of a second, without a restart.

Ordinals: each product row has an ordinal that is also its faiss id and its tantivy `ord`.
A product whose embedded text changes gets a new ordinal (the old row stops being live), so
vectors never need to be rewritten in place.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from indexer.catalog import Product

_SCHEMA = """
CREATE TABLE IF NOT EXISTS products (
    ord INTEGER PRIMARY KEY,
    id TEXT NOT NULL,
    doc TEXT NOT NULL,
    passage_hash TEXT NOT NULL,
    live INTEGER NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX IF NOT EXISTS products_live_id ON products(id) WHERE live = 1;
CREATE TABLE IF NOT EXISTS skus (
    sku TEXT PRIMARY KEY,
    ord INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS vectors (
    ord INTEGER PRIMARY KEY,
    vector BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    ord INTEGER NOT NULL,
    kind TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class StoredProduct:
    ord: int
    product: Product
    passage_hash: str
    live: bool


@dataclass(frozen=True)
class Change:
    seq: int
    ord: int
    kind: str  # "upsert" | "delete" | "stock" | "price"


class ProductStore:
    def __init__(self, path: Path, readonly: bool = False) -> None:
        self.path = path
        uri = f"file:{path}?mode=ro" if readonly else f"file:{path}"
        self._db = sqlite3.connect(uri, uri=True, check_same_thread=False, timeout=30)
        if not readonly:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> ProductStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- bulk load at build time ---------------------------------------------------------

    def insert_all(self, products: Sequence[Product], passage_hashes: Sequence[str]) -> None:
        with self._db:
            self._db.executemany(
                "INSERT INTO products (ord, id, doc, passage_hash) VALUES (?, ?, ?, ?)",
                [(i, p.id, p.to_json(), h) for i, (p, h) in enumerate(zip(products, passage_hashes, strict=True))],
            )
            self._db.executemany(
                "INSERT OR REPLACE INTO skus (sku, ord) VALUES (?, ?)",
                [(v.sku, i) for i, p in enumerate(products) for v in p.variants],
            )

    # ---- reads ---------------------------------------------------------------------------

    def iter_rows(self, live_only: bool = False) -> Iterator[StoredProduct]:
        sql = "SELECT ord, doc, passage_hash, live FROM products"
        if live_only:
            sql += " WHERE live = 1"
        for ord_, doc, passage_hash, live in self._db.execute(sql + " ORDER BY ord"):
            yield StoredProduct(ord_, Product.model_validate_json(doc), passage_hash, bool(live))

    def rows(self, ords: Iterable[int]) -> list[StoredProduct]:
        ords = list(ords)
        out: list[StoredProduct] = []
        for start in range(0, len(ords), 900):
            batch = ords[start : start + 900]
            marks = ",".join("?" * len(batch))
            for ord_, doc, passage_hash, live in self._db.execute(
                f"SELECT ord, doc, passage_hash, live FROM products WHERE ord IN ({marks})", batch
            ):
                out.append(StoredProduct(ord_, Product.model_validate_json(doc), passage_hash, bool(live)))
        return out

    def live_row(self, product_id: str) -> StoredProduct | None:
        row = self._db.execute(
            "SELECT ord, doc, passage_hash, live FROM products WHERE id = ? AND live = 1",
            (product_id,),
        ).fetchone()
        if row is None:
            return None
        return StoredProduct(row[0], Product.model_validate_json(row[1]), row[2], True)

    def next_ord(self) -> int:
        (value,) = self._db.execute("SELECT COALESCE(MAX(ord), -1) + 1 FROM products").fetchone()
        return int(value)

    def vector_deltas(self, from_ord: int) -> tuple[list[int], np.ndarray | None]:
        rows = self._db.execute(
            "SELECT ord, vector FROM vectors WHERE ord >= ? ORDER BY ord", (from_ord,)
        ).fetchall()
        if not rows:
            return [], None
        return [r[0] for r in rows], np.stack([np.frombuffer(r[1], dtype=np.float32) for r in rows])

    def last_seq(self) -> int:
        (value,) = self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM changes").fetchone()
        return int(value)

    def changes_since(self, seq: int) -> list[Change]:
        return [
            Change(*row)
            for row in self._db.execute(
                "SELECT seq, ord, kind FROM changes WHERE seq > ? ORDER BY seq", (seq,)
            )
        ]

    def counts(self) -> tuple[int, int]:
        (products,) = self._db.execute("SELECT COUNT(*) FROM products WHERE live = 1").fetchone()
        (variants,) = self._db.execute(
            "SELECT COUNT(*) FROM skus JOIN products USING (ord) WHERE live = 1"
        ).fetchone()
        return int(products), int(variants)

    # ---- incremental writes (each call is one transaction) --------------------------------

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """`with store.transaction():` one write transaction; the change log commits with the data.

        BEGIN IMMEDIATE takes SQLite's write lock before the first read, so writers in other
        processes wait their turn (up to the busy timeout) instead of reading the same next
        ordinal and colliding on `products.ord`. Everything written inside commits or none of it."""
        if self._db.in_transaction:  # nested: the outer transaction decides
            yield self._db
            return
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            if self._db.in_transaction:  # SQLite may already have rolled back (disk full)
                self._db.rollback()
            raise
        self._db.commit()

    def add_product(self, ord_: int, product: Product, passage_hash: str, vector: np.ndarray | None) -> None:
        self._db.execute(
            "INSERT INTO products (ord, id, doc, passage_hash) VALUES (?, ?, ?, ?)",
            (ord_, product.id, product.to_json(), passage_hash),
        )
        if vector is not None:
            self._db.execute(
                "INSERT INTO vectors (ord, vector) VALUES (?, ?)",
                (ord_, np.asarray(vector, dtype=np.float32).tobytes()),
            )
        self._index_skus(ord_, product)
        self._log(ord_, "upsert")

    def replace_product(self, ord_: int, product: Product, kind: str = "upsert") -> None:
        """Rewrite a live row in place (same ordinal: the embedded text did not change)."""
        self._db.execute("UPDATE products SET doc = ? WHERE ord = ?", (product.to_json(), ord_))
        self._index_skus(ord_, product)
        self._log(ord_, kind)

    def retire(self, ord_: int) -> None:
        self._db.execute("UPDATE products SET live = 0 WHERE ord = ?", (ord_,))
        self._db.execute("DELETE FROM skus WHERE ord = ?", (ord_,))
        self._log(ord_, "delete")

    def ords_for_skus(self, skus: Sequence[str]) -> dict[str, int]:
        found: dict[str, int] = {}
        for start in range(0, len(skus), 900):
            batch = list(skus[start : start + 900])
            marks = ",".join("?" * len(batch))
            for sku, ord_ in self._db.execute(
                f"SELECT sku, ord FROM skus WHERE sku IN ({marks})", batch
            ):
                found[sku] = ord_
        return found

    def _index_skus(self, ord_: int, product: Product) -> None:
        self._db.execute("DELETE FROM skus WHERE ord = ?", (ord_,))
        self._db.executemany(
            "INSERT OR REPLACE INTO skus (sku, ord) VALUES (?, ?)",
            [(v.sku, ord_) for v in product.variants],
        )

    def _log(self, ord_: int, kind: str) -> None:
        self._db.execute("INSERT INTO changes (ord, kind) VALUES (?, ?)", (ord_, kind))
