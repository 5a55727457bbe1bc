"""The event log: every accepted behaviour event, for attribution, reports and erasure.

One class on either store (`search/sql.py`): SQLite by default (the analytics file in the state
directory, beside the search log; WAL mode so readers never wait for the writer), or the shared
PostgreSQL database (`EventLog.on_postgres`), where every replica's events meet.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from search.analytics.search_log import connect
from search.behaviour import Event
from search.database import Database
from search.sql import PostgresRunner, Runner, SqliteRunner

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
        self.path: Path | None = Path(path)
        db = connect(self.path)
        db.executescript(
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
        if "event_id" not in {row[1] for row in db.execute("PRAGMA table_info(events)")}:
            db.execute("ALTER TABLE events ADD COLUMN event_id TEXT")
        db.execute(
            "CREATE UNIQUE INDEX IF NOT EXISTS events_event_id ON events(visitor_id, event_id) WHERE event_id IS NOT NULL"
        )
        self._sql: Runner = SqliteRunner(db)

    @classmethod
    def on_postgres(cls, database: Database) -> EventLog:
        """The event log in the shared database (its table comes from the migrations)."""
        log = cls.__new__(cls)
        log.path = None
        log._sql = PostgresRunner(database)
        return log

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
        # A duplicate (visitor_id, event_id) is skipped (SQLite >= 3.35 and PostgreSQL alike).
        sql = (f"INSERT INTO events ({', '.join(_COLUMNS)}, event_id) VALUES ({placeholders}) "
               "ON CONFLICT DO NOTHING RETURNING id")
        stored: list[tuple[int, int]] = []
        with self._sql.transaction() as tx:
            for position, row in enumerate(rows):
                found = tx.execute(sql, row).fetchall()  # to the end: SQLite finishes the statement
                if found:
                    stored.append((position, int(found[0][0])))
        return stored

    def remove(self, row_ids: Sequence[int]) -> int:
        """Undo an append whose profile updates failed (the batch counts not at all)."""
        with self._sql.transaction() as tx:
            return sum(
                tx.execute(f"DELETE FROM events WHERE id IN ({','.join('?' * len(chunk))})", chunk).rowcount
                for chunk in (list(row_ids[i : i + 500]) for i in range(0, len(row_ids), 500))
            )

    def of_visitor(self, visitor_id: str) -> list[LoggedEvent]:
        rows = self._sql.query(f"SELECT {', '.join(_COLUMNS)} FROM events WHERE visitor_id = ? ORDER BY ts, id", (visitor_id,))
        return [LoggedEvent(*row) for row in rows]

    def between(self, since: float | None = None, until: float | None = None) -> Iterator[LoggedEvent]:
        rows = self._sql.query(
            f"SELECT {', '.join(_COLUMNS)} FROM events WHERE ts >= ? AND ts < ? ORDER BY ts, id",
            (since if since is not None else float("-inf"), until if until is not None else float("inf")),
        )
        return (LoggedEvent(*row) for row in rows)

    def delete_visitor(self, visitor_id: str) -> int:
        return self._sql.execute("DELETE FROM events WHERE visitor_id = ?", (visitor_id,))

    def trace_of(self, visitor_id: str) -> tuple[set[str], set[str]]:
        """The session ids and query texts of a visitor's events (for erasure)."""
        rows = self._sql.query("SELECT session_id, query FROM events WHERE visitor_id = ?", (visitor_id,))
        return {s for s, _ in rows if s}, {q for _, q in rows if q}

    def checkpoint(self) -> None:
        """Make deletions final on disk (erasure): SQLite's WAL is copied back and emptied."""
        self._sql.checkpoint()

    def purge(self, before: float) -> int:
        return self._sql.execute("DELETE FROM events WHERE ts < ?", (before,))

    def count(self) -> int:
        return self._sql.query("SELECT COUNT(*) FROM events")[0][0]

    def ping(self) -> None:
        """Raises when the store cannot be reached (readiness)."""
        self._sql.ping()

    def close(self) -> None:
        self._sql.close()
