"""The analytics database: the search log beside the event log, in one SQLite file.

Searches are recorded off the request path: `SearchLog.record` puts one tuple on a bounded
queue (microseconds), and a writer thread inserts whatever has queued, in one transaction,
every `flush_interval` (0.25 s by default). So a kill -9 loses at most the records of the last
interval, and a clean shutdown (`close`) writes everything. When the queue is full (the disk
cannot keep up) new records are dropped and counted rather than slowing searches down.

SQLite is the embedded default; with a database URL the same class writes to PostgreSQL
(`SearchLog.on_postgres`), shared by every replica.
"""

from __future__ import annotations

import json
import queue
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import structlog

from indexer.normalize import normalize
from search.buffer import LocalBuffer
from search.database import Database
from search.errors import Unavailable
from search.models import SearchRequest, SearchResult
from search.sql import PostgresRunner, Runner, SqliteRunner

log = structlog.get_logger("vitrine.searchlog")

ANALYTICS_FILE = "analytics.db"

_SEARCH_COLUMNS = (
    "search_id", "ts", "query", "normalized", "total", "corrected", "synonyms", "visitor_id", "session_id",
    "traffic_source", "visitor_kind", "device", "variant", "latency_ms", "relaxed",
    "matched", "filters", "rules", "experiment", "shown", "page_offset",
)
# Columns added after the first release: (name, SQL type and default). `connect` adds the
# missing ones to an existing file, so an old analytics database keeps its rows.
_ADDED_COLUMNS = (
    ("matched", "INTEGER"),  # products matching the words before filters (NULL: logged before)
    ("filters", "TEXT"),  # JSON of the filters the shopper set (NULL: none)
    ("rules", "TEXT NOT NULL DEFAULT '[]'"),  # JSON list of the merchandising rules that fired
    ("experiment", "TEXT"),  # the A/B test the search was answered in (with `variant`)
    # The page's product ids in order and the page's offset: impressions, from which the
    # position-corrected click-through of each product is learned (search/merchandising/profiles.py).
    ("shown", "TEXT NOT NULL DEFAULT '[]'"),
    ("page_offset", "INTEGER NOT NULL DEFAULT 0"),
)


@dataclass(frozen=True)
class LoggedSearch:
    search_id: str
    ts: float
    query: str
    normalized: str
    total: int
    corrected: str | None
    synonyms: str  # JSON list
    visitor_id: str | None
    session_id: str | None
    traffic_source: str | None
    visitor_kind: str | None
    device: str | None
    variant: str | None
    latency_ms: float
    relaxed: int
    matched: int | None = None
    filters: str | None = None  # JSON object of the filters set, None without filters
    rules: str = "[]"  # JSON list of rule ids
    experiment: str | None = None
    shown: str = "[]"  # JSON list of the product ids on the page
    page_offset: int = 0

    @property
    def filters_left_nothing(self) -> bool:
        """Zero results although products matched the words: the shopper's filters removed them."""
        return self.total == 0 and self.filters is not None and bool(self.matched)

    @property
    def segment(self) -> dict[str, str | None]:
        return {"traffic_source": self.traffic_source, "visitor": self.visitor_kind, "device": self.device}


def connect(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    # Deleted rows (erasure, retention) are overwritten with zeros, not just unlinked.
    db.execute("PRAGMA secure_delete=ON")
    db.executescript(
        """
        CREATE TABLE IF NOT EXISTS searches (
            search_id TEXT PRIMARY KEY, ts REAL NOT NULL, query TEXT NOT NULL, normalized TEXT NOT NULL,
            total INTEGER NOT NULL, corrected TEXT, synonyms TEXT NOT NULL DEFAULT '[]', visitor_id TEXT,
            session_id TEXT, traffic_source TEXT, visitor_kind TEXT, device TEXT, variant TEXT,
            latency_ms REAL NOT NULL, relaxed INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX IF NOT EXISTS searches_ts ON searches(ts);
        CREATE INDEX IF NOT EXISTS searches_visitor ON searches(visitor_id, ts);
        CREATE INDEX IF NOT EXISTS searches_normalized ON searches(normalized);
        """
    )
    have = {row[1] for row in db.execute("PRAGMA table_info(searches)")}
    for name, kind in _ADDED_COLUMNS:
        if name not in have:
            try:
                db.execute(f"ALTER TABLE searches ADD COLUMN {name} {kind}")
            except sqlite3.OperationalError as error:  # another process added it meanwhile
                if "duplicate column" not in str(error):
                    raise
    return db


def search_row(request: SearchRequest, result: SearchResult, ts: float) -> tuple:
    traffic, kind, device = (result.segment or "//").split("/")
    return (
        result.search_id, ts, request.q, normalize(request.q), result.total, result.corrected_query,
        json.dumps(result.applied_synonyms), request.visitor_id, request.session_id,
        traffic or None, kind or None, device or None, result.variant, result.took_ms, int(result.relaxed),
        result.matched,
        None if request.filters.is_empty() else request.filters.model_dump_json(exclude_defaults=True),
        json.dumps(result.rules), result.experiment, json.dumps([hit.id for hit in result.hits]), request.offset,
    )


class SearchLog:
    """The search log on either store (`search/sql.py`): SQLite by default, the shared
    PostgreSQL database with `SearchLog.on_postgres`. Same queue and writer thread on both."""

    def __init__(self, path: str | Path, flush_interval: float = 0.25, max_queue: int = 100_000) -> None:
        self.path: Path | None = Path(path)
        self._start(SqliteRunner(connect(self.path)), flush_interval, max_queue)

    @classmethod
    def on_postgres(
        cls, database: Database, flush_interval: float = 0.25, max_queue: int = 100_000, buffer: LocalBuffer | None = None
    ) -> SearchLog:
        """The shared log. With a `buffer`, rows the database cannot take (it is down) wait
        there, on local disk, and are written first when it is back."""
        log_ = cls.__new__(cls)
        log_.path = None
        log_._start(PostgresRunner(database), flush_interval, max_queue, buffer)
        return log_

    def _start(self, runner: Runner, flush_interval: float, max_queue: int, buffer: LocalBuffer | None = None) -> None:
        self._sql: Runner = runner
        self._buffer = buffer
        self._queue: queue.Queue[tuple | None] = queue.Queue(maxsize=max_queue)
        self._flush_interval = flush_interval
        self.dropped = 0
        self.written = 0
        self._writer = threading.Thread(target=self._write_loop, name="vitrine-searchlog", daemon=True)
        self._writer.start()

    # ---- the request path ----------------------------------------------------------------

    @property
    def queue_depth(self) -> int:
        """Records waiting for the writer (approximate, as any queue size read from outside)."""
        return self._queue.qsize()

    def record(self, request: SearchRequest, result: SearchResult) -> None:
        try:
            self._queue.put_nowait(search_row(request, result, time.time()))
        except queue.Full:
            self.dropped += 1
            if self.dropped % 1000 == 1:
                log.warning("search log queue full: records dropped", dropped=self.dropped)

    # ---- the writer thread ---------------------------------------------------------------

    def _write_loop(self) -> None:
        while True:
            try:
                # With a buffer, wake up now and then to deliver what waited out an outage.
                first = self._queue.get(timeout=1.0 if self._buffer is not None else None)
            except queue.Empty:
                self._deliver_buffered()
                continue
            batch: list[tuple] = []
            stop = first is None
            if first is not None:
                batch.append(first)
                # Gather what arrives within one interval: one transaction per interval. The
                # writer sleeps through the interval and then takes what came, rather than
                # waiting on the queue: a waiting writer is woken by every record, and each
                # wake-up takes the GIL from the request thread that just recorded (~1 ms a
                # search on a busy 2-core machine).
                time.sleep(self._flush_interval)
                while len(batch) < 5000:
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if item is None:
                        stop = True
                        self._queue.task_done()  # the sentinel
                        break
                    batch.append(item)
            if batch:
                self._insert(batch)
            for _ in range(len(batch) + (1 if first is None else 0)):
                self._queue.task_done()
            if stop:
                return

    def _write(self, rows: list[tuple] | list[list]) -> None:
        placeholders = ", ".join("?" for _ in _SEARCH_COLUMNS)
        sql = f"INSERT INTO searches ({', '.join(_SEARCH_COLUMNS)}) VALUES ({placeholders}) ON CONFLICT DO NOTHING"
        with self._sql.transaction() as tx:
            tx.executemany(sql, rows)
        self.written += len(rows)

    def _deliver_buffered(self) -> bool:
        """Write rows that waited in the buffer; True when none is left."""
        if self._buffer is None:
            return True
        try:
            self._buffer.drain("searches", self._write)
            return True
        except Unavailable:
            return False

    @property
    def buffered(self) -> int:
        """Rows waiting in the local buffer for the database to return."""
        return self._buffer.waiting("searches") if self._buffer is not None else 0

    def _insert(self, rows: list[tuple]) -> None:
        if self._buffer is not None:
            # Older rows waiting out an outage go first; while any wait, new ones queue behind them.
            if self._deliver_buffered():
                try:
                    self._write(rows)
                    return
                except Unavailable:
                    pass
            try:
                self._buffer.put("searches", rows, items=len(rows))
            except Unavailable:
                self.dropped += len(rows)
                log.error("search log buffer full: records dropped", rows=len(rows), dropped=self.dropped)
            return
        for attempt in range(5):
            try:
                self._write(rows)
                return
            except (sqlite3.OperationalError, Unavailable):
                log.warning("search log write failed, retrying", attempt=attempt + 1, rows=len(rows))
                time.sleep(0.2 * (attempt + 1))
        log.error("search log records lost after retries", rows=len(rows))

    def flush(self) -> None:
        """Return once everything recorded so far is written (reports, tests, shutdown)."""
        self._queue.join()

    def close(self) -> None:
        if self._writer.is_alive():
            self._queue.put(None)
            self._writer.join(timeout=30)
        self._sql.close()

    def ping(self) -> None:
        """Raises when the store cannot be reached (readiness)."""
        self._sql.ping()

    # ---- reads ---------------------------------------------------------------------------

    def between(self, since: float | None = None, until: float | None = None) -> Iterator[LoggedSearch]:
        rows = self._sql.query(
            f"SELECT {', '.join(_SEARCH_COLUMNS)} FROM searches WHERE ts >= ? AND ts < ? ORDER BY ts",
            (since if since is not None else float("-inf"), until if until is not None else float("inf")),
        )
        return (LoggedSearch(*row) for row in rows)

    def delete_visitor(self, visitor_id: str) -> int:
        return self._sql.execute("DELETE FROM searches WHERE visitor_id = ?", (visitor_id,))

    def purge(self, before: float) -> int:
        return self._sql.execute("DELETE FROM searches WHERE ts < ?", (before,))

    def trace_of(self, visitor_id: str) -> tuple[set[str], set[str]]:
        """The session ids and query texts of a visitor's searches (for erasure)."""
        rows = self._sql.query("SELECT session_id, query FROM searches WHERE visitor_id = ?", (visitor_id,))
        return {s for s, _ in rows if s}, {q for _, q in rows if q}

    def delete_sessions(self, session_ids: set[str], visitor_id: str) -> tuple[int, set[str]]:
        """Delete the searches of these sessions sent without a visitor id (or with this one);
        returns how many and their query texts."""
        if not session_ids:
            return 0, set()
        ids = sorted(session_ids)
        marks = ",".join("?" * len(ids))
        where = f"session_id IN ({marks}) AND (visitor_id IS NULL OR visitor_id = ?)"
        with self._sql.transaction() as tx:
            queries = {q for (q,) in tx.execute(f"SELECT query FROM searches WHERE {where}", (*ids, visitor_id)).fetchall()}
            deleted = tx.execute(f"DELETE FROM searches WHERE {where}", (*ids, visitor_id)).rowcount
        return deleted, queries

    def searched_by_others(self, queries: set[str]) -> set[str]:
        """Which of these query texts remain in the log (searched by someone else)."""
        found: set[str] = set()
        items = sorted(queries)
        for start in range(0, len(items), 500):
            chunk = items[start : start + 500]
            found |= {q for (q,) in self._sql.query(
                f"SELECT DISTINCT query FROM searches WHERE query IN ({','.join('?' * len(chunk))})", chunk
            )}
        return found

    def top_queries(self, since: float, limit: int) -> list[str]:
        """The most searched query texts since `since`, most searched first."""
        rows = self._sql.query(
            "SELECT query FROM searches WHERE ts >= ? AND query <> '' GROUP BY query ORDER BY COUNT(*) DESC, query LIMIT ?",
            (since, limit),
        )
        return [q for (q,) in rows]

    def checkpoint(self) -> None:
        """Make deletions final on disk (erasure): SQLite's WAL is copied back and emptied."""
        self._sql.checkpoint()

    def count(self) -> int:
        return self._sql.query("SELECT COUNT(*) FROM searches")[0][0]
