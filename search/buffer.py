"""A bounded local buffer for writes the shared database cannot take right now.

When PostgreSQL (or Redis) is down, accepted events and search-log rows wait here — a small
SQLite file in the state directory (`synchronous=FULL`), so an acknowledged write survives a
restart of the process too — and are written to the store, oldest first, when it returns. The
buffer is bounded (`max_items`): past it `put` raises `Unavailable`, and the caller refuses the
write (503) rather than acknowledge something it may lose.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog

from search.errors import Unavailable

log = structlog.get_logger("vitrine.buffer")

BUFFER_FILE = "pending.db"


class LocalBuffer:
    def __init__(self, path: str | Path, max_items: int = 100_000) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.max_items = max_items
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS pending (id INTEGER PRIMARY KEY, kind TEXT NOT NULL, items INTEGER NOT NULL, "
            "body TEXT NOT NULL)"
        )
        self._lock = threading.Lock()
        # Only one drain at a time writes a kind's entries, in order.
        self._draining = threading.Lock()

    def put(self, kind: str, body: Any, items: int = 1) -> None:
        """Keep `body` (JSON-able; `items` rows or events) until `drain` writes it."""
        with self._lock:
            waiting = self._db.execute("SELECT COALESCE(SUM(items), 0) FROM pending").fetchone()[0]
            if waiting + items > self.max_items:
                raise Unavailable(
                    f"the store is down and the local buffer is full ({waiting} waiting, at most {self.max_items}): "
                    "try again later"
                )
            self._db.execute("INSERT INTO pending(kind, items, body) VALUES (?, ?, ?)", (kind, items, json.dumps(body)))

    def waiting(self, kind: str | None = None) -> int:
        with self._lock:
            if kind is None:
                return int(self._db.execute("SELECT COALESCE(SUM(items), 0) FROM pending").fetchone()[0])
            return int(self._db.execute("SELECT COALESCE(SUM(items), 0) FROM pending WHERE kind = ?", (kind,)).fetchone()[0])

    def drain(self, kind: str, write: Callable[[Any], None], limit: int = 100) -> int:
        """Write waiting entries of `kind`, oldest first, each removed once `write` returned;
        stops at the first failure (the store is still down) and leaves the rest. Returns how
        many items were written."""
        written = 0
        with self._draining:
            while True:
                with self._lock:
                    rows = self._db.execute(
                        "SELECT id, items, body FROM pending WHERE kind = ? ORDER BY id LIMIT ?", (kind, limit)
                    ).fetchall()
                if not rows:
                    return written
                for id_, items, body in rows:
                    write(json.loads(body))  # raises while the store is down: the entry stays
                    with self._lock:
                        self._db.execute("DELETE FROM pending WHERE id = ?", (id_,))
                    written += items
                log.info("buffered writes delivered", kind=kind, items=written)

    def close(self) -> None:
        with self._lock:
            self._db.close()
