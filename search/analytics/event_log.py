"""The event log: every accepted behaviour event, for attribution, reports and erasure.

SQLite by default (the analytics file in the state directory, beside the search log; WAL
mode so readers never wait for the writer). The methods are the interface a PostgreSQL backend implements.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from search.analytics.search_log import connect
from search.behaviour import Event

_COLUMNS = (
    "ts", "type", "visitor_id", "session_id", "product_id", "variant_sku", "search_id", "position",
    "query", "value", "traffic_source", "device", "referrer_host",
)


@dataclass(frozen=True)
class LoggedEvent:
    ts: float
    type: str
    visitor_id: str
    session_id: str | None
    product_id: str | None
    variant_sku: str | None
    search_id: str | None
    position: int | None
    query: str | None
    value: float | None
    traffic_source: str | None
    device: str | None
    referrer_host: str | None


class EventLog:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._db = connect(self.path)
        self._db.executescript(
            """
            CREATE TABLE IF NOT EXISTS events (
                id INTEGER PRIMARY KEY, ts REAL NOT NULL, type TEXT NOT NULL, visitor_id TEXT NOT NULL,
                session_id TEXT, product_id TEXT, variant_sku TEXT, search_id TEXT, position INTEGER,
                query TEXT, value REAL, traffic_source TEXT, device TEXT, referrer_host TEXT
            );
            CREATE INDEX IF NOT EXISTS events_visitor ON events(visitor_id, ts);
            CREATE INDEX IF NOT EXISTS events_search ON events(search_id);
            CREATE INDEX IF NOT EXISTS events_ts ON events(ts);
            """
        )
        # event_id (optional, from the client) makes a retried batch count once.
        if "event_id" not in {row[1] for row in self._db.execute("PRAGMA table_info(events)")}:
            self._db.execute("ALTER TABLE events ADD COLUMN event_id TEXT")
        self._db.execute(
            "CREATE UNIQUE INDEX IF NOT EXISTS events_event_id ON events(visitor_id, event_id) WHERE event_id IS NOT NULL"
        )
        self._lock = threading.Lock()

    def append(self, events: Sequence[tuple[Event, float]]) -> list[tuple[int, int]]:
        """Store the events in one transaction; returns (position in `events`, row id) of those
        stored: an event whose (visitor_id, event_id) is already stored is skipped."""
        rows = []
        for event, ts in events:
            context = event.context
            rows.append((
                ts, event.type.value, event.visitor_id, event.session_id, event.product_id, event.variant_sku,
                event.search_id, event.position, event.query, event.value,
                context.traffic_source.value if context and context.traffic_source else None,
                context.device.value if context and context.device else None,
                context.referrer if context else None, event.event_id,
            ))
        placeholders = ", ".join("?" for _ in range(len(_COLUMNS) + 1))
        sql = f"INSERT OR IGNORE INTO events ({', '.join(_COLUMNS)}, event_id) VALUES ({placeholders})"
        stored: list[tuple[int, int]] = []
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for position, row in enumerate(rows):
                    cursor = self._db.execute(sql, row)
                    if cursor.rowcount:
                        stored.append((position, int(cursor.lastrowid or 0)))
                self._db.execute("COMMIT")
            except BaseException:
                # SQLite rolls back by itself on some errors (a full disk): a second ROLLBACK
                # would raise and hide the real error.
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise
        return stored

    def remove(self, row_ids: Sequence[int]) -> int:
        """Undo an append whose profile updates failed (the batch counts not at all)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                removed = sum(
                    self._db.execute(f"DELETE FROM events WHERE id IN ({','.join('?' * len(chunk))})", chunk).rowcount
                    for chunk in (list(row_ids[i : i + 500]) for i in range(0, len(row_ids), 500))
                )
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise
        return removed

    def of_visitor(self, visitor_id: str) -> list[LoggedEvent]:
        with self._lock:
            rows = self._db.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM events WHERE visitor_id = ? ORDER BY ts", (visitor_id,)
            ).fetchall()
        return [LoggedEvent(*row) for row in rows]

    def between(self, since: float | None = None, until: float | None = None) -> Iterator[LoggedEvent]:
        with self._lock:
            rows = self._db.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM events WHERE ts >= ? AND ts < ? ORDER BY ts",
                (since if since is not None else float("-inf"), until if until is not None else float("inf")),
            ).fetchall()
        return (LoggedEvent(*row) for row in rows)

    def delete_visitor(self, visitor_id: str) -> int:
        with self._lock:
            return self._db.execute("DELETE FROM events WHERE visitor_id = ?", (visitor_id,)).rowcount

    def trace_of(self, visitor_id: str) -> tuple[set[str], set[str]]:
        """The session ids and query texts of a visitor's events (for erasure)."""
        with self._lock:
            rows = self._db.execute("SELECT session_id, query FROM events WHERE visitor_id = ?", (visitor_id,)).fetchall()
        return {s for s, _ in rows if s}, {q for _, q in rows if q}

    def checkpoint(self) -> None:
        """Copy the WAL into the database file and empty it: deleted rows leave no old page
        copies behind (erasure)."""
        with self._lock:
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def purge(self, before: float) -> int:
        with self._lock:
            return self._db.execute("DELETE FROM events WHERE ts < ?", (before,)).rowcount

    def count(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM events").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()
