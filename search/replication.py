"""Replicas in step: the catalog change feed shared through PostgreSQL.

Each replica (a service process with its own copy of the index directory, as on its own
machine) applies a stock, price, product or delete change it accepts to its own index through
`CatalogUpdater`, then appends it to `catalog_feed` (seq, origin, kind, payload). Every replica's
watcher calls `ReplicatedCatalog.catch_up()` a few times a second: it applies, in feed order,
the entries after its position through the same updater, and remembers the position in the
index version (`versions/<v>/feed_position`).

Why this is correct:
  - Ordered: appends take an advisory lock, so seq order is commit order and a reader never
    skips an entry that commits late with a lower seq.
  - Idempotent: every change sets values (a product's content, a stock, a price, deleted), so
    applying an entry twice (a crash between applying and saving the position) changes nothing.
  - Convergent: a replica applies its own entries again too, in feed order, so two replicas
    that change the same product at once both end on the feed's last word, and processes that
    share one index directory (`--workers`) need no bookkeeping between them. The price is one
    cheap second write per accepted change on the replica that accepted it (an unchanged text
    is never embedded again).
  - New index versions: a version built with the database configured records the feed's head
    at build time (`write_position`, by `vitrine index build`); a replica opening it replays the entries after it.
    A version without a recorded point replays the whole feed.

Without a database, `ReplicatedCatalog` only forwards to the updater (one machine).
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from indexer.catalog import Product
from indexer.updates import CatalogUpdater, StockSummary, UpsertSummary
from search.database import Database
from search.errors import Unavailable, VitrineError

log = structlog.get_logger("vitrine.replication")

FEED_POSITION_FILE = "feed_position"
_APPEND_LOCK = "vitrine.catalog_feed"


@dataclass(frozen=True)
class FeedEntry:
    seq: int
    origin: str
    kind: str  # "upsert" | "delete" | "stock" | "price"
    payload: dict[str, Any]


class CatalogFeed:
    """The `catalog_feed` table: appended by whichever replica accepts a change, read by all."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def append(self, origin: str, kind: str, payload: dict[str, Any]) -> int:
        with self.database.connection() as conn:
            # One appender at a time: seq order is commit order, so readers never skip a seq.
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (_APPEND_LOCK,))
            row = conn.execute(
                "INSERT INTO catalog_feed(origin, kind, payload, ts) VALUES (%s, %s, %s, %s) RETURNING seq",
                (origin, kind, json.dumps(payload, separators=(",", ":")), time.time()),
            ).fetchone()
        assert row is not None  # INSERT ... RETURNING returns the row
        return int(row[0])

    def since(self, seq: int, limit: int = 200) -> list[FeedEntry]:
        with self.database.connection() as conn:
            rows = conn.execute(
                "SELECT seq, origin, kind, payload FROM catalog_feed WHERE seq > %s ORDER BY seq LIMIT %s", (seq, limit)
            ).fetchall()
        return [FeedEntry(int(s), o, k, json.loads(p)) for s, o, k, p in rows]

    def head(self) -> int:
        with self.database.connection() as conn:
            row = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM catalog_feed").fetchone()
        return int(row[0]) if row else 0

    def ping(self) -> None:
        self.database.ping()


def read_position(version_dir: Path) -> int:
    try:
        return int((version_dir / FEED_POSITION_FILE).read_text().strip() or 0)
    except FileNotFoundError:
        return 0


def write_position(version_dir: Path, seq: int) -> None:
    """Atomically: a crash leaves the old position (and entries are safe to apply again)."""
    tmp = version_dir / f".{FEED_POSITION_FILE}.{os.getpid()}"
    tmp.write_text(f"{seq}\n")
    os.replace(tmp, version_dir / FEED_POSITION_FILE)


def new_origin() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _encode_products(products: Sequence[Product]) -> dict[str, Any]:
    return {"products": [p.model_dump(mode="json", exclude_none=True) for p in products]}


class ReplicatedCatalog:
    """What the admin API writes catalog changes through (local index first, then the feed)."""

    def __init__(self, updater: Callable[[], CatalogUpdater], feed: CatalogFeed | None, origin: str | None = None) -> None:
        self._updater = updater
        self.feed = feed
        self.origin = origin or new_origin()
        self._lock = threading.RLock()
        # Accepted here while the feed could not be written: appended when it is back.
        self._unsent: list[tuple[str, dict[str, Any]]] = []
        self.last_delay: float | None = None

    # ---- local writes ------------------------------------------------------------------------

    def upsert(self, products: Sequence[Product]) -> UpsertSummary:
        with self._lock:
            summary = self._updater().upsert(products)
            self._share("upsert", _encode_products(products))
        return summary

    def delete(self, product_ids: Sequence[str]) -> list[str]:
        with self._lock:
            missing = self._updater().delete(product_ids)
            found = [p for p in product_ids if p not in set(missing)]
            if found:
                self._share("delete", {"ids": found})
        return missing

    def set_stock(self, items: Sequence[tuple[str, int]]) -> StockSummary:
        with self._lock:
            summary = self._updater().set_stock(items)
            self._share("stock", {"items": [list(item) for item in items]})
        return summary

    def set_prices(self, items: Sequence[tuple[str, float]], by: str = "sku") -> StockSummary:
        with self._lock:
            summary = self._updater().set_prices(items, by=by)
            self._share("price", {"items": [list(item) for item in items], "by": by})
        return summary

    def _share(self, kind: str, payload: dict[str, Any]) -> None:
        if self.feed is None:
            return
        self._unsent.append((kind, payload))
        try:
            self._send_unsent()
        except Unavailable as error:
            # Applied here and kept in order; the watcher appends it when the database is back.
            log.warning("catalog change kept until the database is back", kind=kind, waiting=len(self._unsent),
                        error=str(error))

    def _send_unsent(self) -> None:
        assert self.feed is not None
        while self._unsent:
            kind, payload = self._unsent[0]
            self.feed.append(self.origin, kind, {**payload, "sent_at": time.time()})
            self._unsent.pop(0)

    @property
    def waiting(self) -> int:
        """Changes accepted here that the feed has not received yet."""
        return len(self._unsent)

    # ---- applying everyone's changes ------------------------------------------------------

    def catch_up(self) -> int:
        """Apply the feed's entries after this index version's position, in order, own ones
        included; returns how many were applied."""
        if self.feed is None:
            return 0
        applied = 0
        with self._lock:
            if self._unsent:
                self._send_unsent()
            updater = self._updater()
            position = read_position(updater.version_dir)
            while True:
                entries = self.feed.since(position)
                if not entries:
                    break
                for entry in entries:
                    self._apply(updater, entry)
                    applied += 1
                    position = entry.seq
                write_position(updater.version_dir, position)
        return applied

    def _apply(self, updater: CatalogUpdater, entry: FeedEntry) -> None:
        payload = entry.payload
        try:
            if entry.kind == "upsert":
                updater.upsert([Product.model_validate(p) for p in payload["products"]])
            elif entry.kind == "delete":
                updater.delete(payload["ids"])
            elif entry.kind == "stock":
                updater.set_stock([(sku, int(stock)) for sku, stock in payload["items"]])
            elif entry.kind == "price":
                updater.set_prices([(key, float(price)) for key, price in payload["items"]], by=payload.get("by", "sku"))
            else:
                log.error("unknown catalog feed entry skipped", seq=entry.seq, kind=entry.kind)
                return
        except (VitrineError, ValueError, KeyError) as error:
            # The replica that accepted it applied it; a refusal here is a difference between
            # index versions, not a reason to stop following the feed.
            log.error("catalog feed entry refused", seq=entry.seq, kind=entry.kind, error=str(error))
            return
        if "sent_at" in payload:
            self.last_delay = max(0.0, time.time() - float(payload["sent_at"]))
        log.info("catalog change applied from the feed", seq=entry.seq, kind=entry.kind, origin=entry.origin)
