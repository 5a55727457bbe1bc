"""The shared PostgreSQL database: one connection pool per service, the schema's migrations.

SQLite files in the state directory stay the default (one machine, nothing to run). With
`VITRINE_DATABASE_URL=postgresql://…` every store — events, profiles, search log, synonyms and
their audit trail, merchandising, the catalog change feed — lives in PostgreSQL instead, so
several service processes on several machines share one state.

The schema is versioned here and only here: `MIGRATIONS` is an append-only list of
(version, description, SQL). `Database.open` applies the ones a database has not seen yet, in
order, each in its own transaction under an advisory lock, so replicas starting together
migrate once. Never edit a released migration; add the next one.

Tests and several shops may share one server: the URL's `options=-csearch_path=<schema>`
chooses the schema, which is created when missing.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import parse_qs, urlsplit

import psycopg
import structlog
from psycopg_pool import ConnectionPool

from search.errors import ConfigError, Unavailable

log = structlog.get_logger("vitrine.database")

# Any fixed number: replicas starting at once take turns to migrate.
_MIGRATION_LOCK = 0x76697472696E65

MIGRATIONS: list[tuple[int, str, str]] = [
    (1, "events, searches, profiles", """
        CREATE TABLE events (
            id BIGSERIAL PRIMARY KEY, ts DOUBLE PRECISION NOT NULL, type TEXT NOT NULL, visitor_id TEXT NOT NULL,
            session_id TEXT, product_id TEXT, variant_sku TEXT, search_id TEXT, position INTEGER,
            query TEXT, value DOUBLE PRECISION, traffic_source TEXT, device TEXT, referrer_host TEXT, event_id TEXT
        );
        CREATE INDEX events_visitor ON events(visitor_id, ts);
        CREATE INDEX events_search ON events(search_id);
        CREATE INDEX events_ts ON events(ts);
        CREATE UNIQUE INDEX events_event_id ON events(visitor_id, event_id) WHERE event_id IS NOT NULL;

        CREATE TABLE searches (
            search_id TEXT PRIMARY KEY, ts DOUBLE PRECISION NOT NULL, query TEXT NOT NULL, normalized TEXT NOT NULL,
            total INTEGER NOT NULL, corrected TEXT, synonyms TEXT NOT NULL DEFAULT '[]', visitor_id TEXT,
            session_id TEXT, traffic_source TEXT, visitor_kind TEXT, device TEXT, variant TEXT,
            latency_ms DOUBLE PRECISION NOT NULL, relaxed INTEGER NOT NULL DEFAULT 0, matched INTEGER, filters TEXT,
            rules TEXT NOT NULL DEFAULT '[]', experiment TEXT, shown TEXT NOT NULL DEFAULT '[]',
            page_offset INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX searches_ts ON searches(ts);
        CREATE INDEX searches_visitor ON searches(visitor_id, ts);
        CREATE INDEX searches_normalized ON searches(normalized);
        CREATE INDEX searches_session ON searches(session_id);

        CREATE TABLE profiles (visitor_id TEXT PRIMARY KEY, data TEXT NOT NULL, last_seen DOUBLE PRECISION NOT NULL);
        CREATE INDEX profiles_last_seen ON profiles(last_seen);
    """),
    (2, "synonyms with their audit trail; merchandising objects with theirs", """
        CREATE TABLE synonyms (
            id BIGSERIAL PRIMARY KEY, kind TEXT NOT NULL, terms TEXT NOT NULL, targets TEXT NOT NULL,
            status TEXT NOT NULL, source TEXT NOT NULL, confidence DOUBLE PRECISION NOT NULL DEFAULT 0,
            evidence TEXT NOT NULL DEFAULT '{}', impact TEXT NOT NULL DEFAULT '{}', created_at DOUBLE PRECISION NOT NULL,
            decided_by TEXT, decided_at DOUBLE PRECISION, note TEXT, key TEXT NOT NULL
        );
        CREATE INDEX synonyms_status ON synonyms(status);
        CREATE INDEX synonyms_key ON synonyms(key);
        CREATE TABLE synonym_audit (
            seq BIGSERIAL PRIMARY KEY, synonym_id BIGINT NOT NULL, ts DOUBLE PRECISION NOT NULL, actor TEXT NOT NULL,
            action TEXT NOT NULL, before TEXT, after TEXT, note TEXT
        );
        CREATE INDEX synonym_audit_synonym ON synonym_audit(synonym_id, seq);
        CREATE TABLE synonym_rejected_pairs (pair TEXT PRIMARY KEY, synonym_id BIGINT NOT NULL);

        CREATE TABLE merch_objects (
            kind TEXT NOT NULL, key TEXT NOT NULL, version INTEGER NOT NULL, body TEXT NOT NULL,
            deleted INTEGER NOT NULL DEFAULT 0, created BIGSERIAL, PRIMARY KEY (kind, key)
        );
        CREATE TABLE merch_audit (
            seq BIGSERIAL PRIMARY KEY, kind TEXT NOT NULL, key TEXT NOT NULL, ts DOUBLE PRECISION NOT NULL,
            actor TEXT NOT NULL, action TEXT NOT NULL, before TEXT, after TEXT
        );
        CREATE INDEX merch_audit_object ON merch_audit(kind, key, seq);
        CREATE TABLE merch_counters (kind TEXT PRIMARY KEY, next INTEGER NOT NULL);
    """),
    (3, "the catalog change feed shared by replicas", """
        CREATE TABLE catalog_feed (
            seq BIGSERIAL PRIMARY KEY, origin TEXT NOT NULL, kind TEXT NOT NULL, payload TEXT NOT NULL,
            ts DOUBLE PRECISION NOT NULL
        );
    """),
]


def is_postgres_url(url: str | None) -> bool:
    return bool(url) and str(url).startswith(("postgresql://", "postgres://"))


def schema_of(url: str) -> str | None:
    """The schema a URL's `options=-csearch_path=<schema>` selects (None: the server's default)."""
    for option in parse_qs(urlsplit(url).query).get("options", []):
        match = re.search(r"-c\s*search_path\s*=\s*([A-Za-z_][A-Za-z0-9_]*)", option)
        if match:
            return match.group(1)
    return None


def redact(url: str) -> str:
    """The URL without its password, for logs and error messages."""
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@", 1)
    return url


class Database:
    """A psycopg 3 connection pool on one PostgreSQL database, migrated on open.

    `connection()` lends a connection for one transaction: committed when the block ends,
    rolled back if it raises. Connection failures surface as `Unavailable` (503 at the HTTP
    edge) so callers can degrade instead of crashing.
    """

    def __init__(self, url: str, min_size: int = 1, max_size: int = 8, timeout: float = 3.0) -> None:
        if not is_postgres_url(url):
            raise ConfigError(f"database_url must be a postgresql:// URL, not {redact(url)!r}")
        self.url = url
        self.schema = schema_of(url)
        self._timeout = timeout
        # After a failure, calls fail at once for a moment instead of each waiting `timeout`
        # (searches keep answering without personalization while the server is down).
        self._down_until = 0.0
        self._last_error = ""
        self._migrated = False
        self._migrating = threading.Lock()
        self.pool = ConnectionPool(
            url, min_size=min_size, max_size=max_size, timeout=timeout, open=False,
            kwargs={"connect_timeout": max(1, int(timeout))}, name="vitrine",
            # A connection whose server went away is found out before it is lent again.
            check=ConnectionPool.check_connection,
        )

    @classmethod
    def open(cls, url: str, **kwargs: float) -> Database:
        """Open the pool and migrate. A server that is down now does not stop a service from
        starting: the migrations run on the first connection that succeeds."""
        database = cls(url, **kwargs)  # type: ignore[arg-type]
        try:
            database.pool.open(wait=False)
            database.migrate()
        except Unavailable as error:
            log.warning("database unreachable at start-up: migrating when it answers", error=str(error))
        except BaseException:
            database.close()
            raise
        return database

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection]:
        """A connection for one transaction, on a migrated schema."""
        if not self._migrated:
            self.migrate()
        with self._connect() as conn:
            yield conn

    @contextmanager
    def _connect(self) -> Iterator[psycopg.Connection]:
        if time.monotonic() < self._down_until:
            raise Unavailable(f"PostgreSQL at {redact(self.url)} is down ({self._last_error}); retrying shortly",
                              retry_after=1.0)
        try:
            with self.pool.connection(timeout=self._timeout) as conn:
                yield conn
        # PoolTimeout (a TimeoutError): no connection could be made in time.
        except (psycopg.OperationalError, psycopg.InterfaceError, TimeoutError) as error:
            self._last_error = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            self._down_until = time.monotonic() + 1.0
            raise Unavailable(f"PostgreSQL at {redact(self.url)} cannot be reached: {self._last_error}") from error
        self._down_until = 0.0

    @property
    def down(self) -> bool:
        """Whether the last attempt failed (and the next one waits a moment)."""
        return time.monotonic() < self._down_until

    def ping(self) -> None:
        """Raises `Unavailable` unless the server answers a trivial query."""
        with self.connection() as conn:
            conn.execute("SELECT 1")

    def migrate(self) -> list[int]:
        """Apply the migrations this database has not seen; returns their versions."""
        applied: list[int] = []
        with self._migrating:
            if self._migrated:
                return applied
            self._migrate(applied)
            self._migrated = True
        return applied

    def _migrate(self, applied: list[int]) -> None:
        with self._connect() as conn:
            if self.schema:
                conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                "version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
            )
        for version, description, sql in MIGRATIONS:
            with self._connect() as conn:
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
                if conn.execute("SELECT 1 FROM schema_migrations WHERE version = %s", (version,)).fetchone():
                    continue
                conn.execute(sql)
                conn.execute("INSERT INTO schema_migrations(version, description) VALUES (%s, %s)", (version, description))
                applied.append(version)
                log.info("database migrated", version=version, description=description)

    def version(self) -> int:
        with self.connection() as conn:
            row = conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations").fetchone()
        return int(row[0]) if row else 0

    def close(self) -> None:
        self.pool.close()
