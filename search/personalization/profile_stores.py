"""Where visitor profiles live: one interface, an embedded SQLite store and a shared Redis one.

A profile is one JSON value per visitor, changed only by read-modify-write under the store's
own atomicity (a SQLite write transaction; a Redis WATCH/MULTI transaction retried on
conflict), so several service processes can fold events into the same profile.
Reads on the query path are one primary-key lookup.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

import structlog

from search.database import Database
from search.errors import Unavailable
from search.sql import PostgresRunner, Runner, SqliteRunner

log = structlog.get_logger("vitrine.profiles")

Profile = dict[str, Any]
Updater = Callable[[Profile | None], Profile]


class ProfileStore(Protocol):
    def get(self, visitor_id: str) -> Profile | None: ...

    def update(self, changes: dict[str, Updater]) -> None:
        """Apply each visitor's updater to their current profile (None if new), atomically per visitor."""

    def delete(self, visitor_id: str) -> bool: ...

    def purge(self, not_seen_since: float) -> int:
        """Delete profiles whose last activity is older than the given time; returns how many."""

    def checkpoint(self) -> None:
        """Make deletions final on disk (erasure)."""

    def ping(self) -> None:
        """Raises when the store cannot be reached (readiness)."""

    def close(self) -> None: ...


class SqlProfileStore:
    """Profiles as rows of one table, on either store (`search/sql.py`). Read-modify-write in
    one transaction: SQLite's BEGIN IMMEDIATE serialises writers; PostgreSQL locks each
    visitor's row (created empty first, so two replicas adding the same new visitor take turns),
    in sorted order so two batches never wait on each other."""

    def __init__(self, runner: Runner) -> None:
        self._sql = runner

    def get(self, visitor_id: str) -> Profile | None:
        rows = self._sql.query("SELECT data FROM profiles WHERE visitor_id = ?", (visitor_id,))
        return json.loads(rows[0][0]) if rows else None

    def update(self, changes: dict[str, Updater]) -> None:
        if not changes:
            return
        postgres = self._sql.dialect == "postgres"
        with self._sql.transaction() as tx:
            for visitor_id in sorted(changes):
                if postgres:
                    tx.execute("INSERT INTO profiles(visitor_id, data, last_seen) VALUES (?, 'null', 0) "
                               "ON CONFLICT DO NOTHING", (visitor_id,))
                row = tx.execute(
                    "SELECT data FROM profiles WHERE visitor_id = ?" + (" FOR UPDATE" if postgres else ""), (visitor_id,)
                ).fetchone()
                profile = changes[visitor_id](json.loads(row[0]) if row else None)
                tx.execute(
                    "INSERT INTO profiles(visitor_id, data, last_seen) VALUES (?, ?, ?) "
                    "ON CONFLICT(visitor_id) DO UPDATE SET data = excluded.data, last_seen = excluded.last_seen",
                    (visitor_id, json.dumps(profile, separators=(",", ":")), profile.get("last_seen", time.time())),
                )

    def delete(self, visitor_id: str) -> bool:
        return self._sql.execute("DELETE FROM profiles WHERE visitor_id = ?", (visitor_id,)) > 0

    def checkpoint(self) -> None:
        self._sql.checkpoint()

    def purge(self, not_seen_since: float) -> int:
        return self._sql.execute("DELETE FROM profiles WHERE last_seen < ?", (not_seen_since,))

    def ping(self) -> None:
        self._sql.ping()

    def close(self) -> None:
        self._sql.close()


class SQLiteProfileStore(SqlProfileStore):
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA secure_delete=ON")  # an erased profile is overwritten, not unlinked
        db.execute(
            "CREATE TABLE IF NOT EXISTS profiles (visitor_id TEXT PRIMARY KEY, data TEXT NOT NULL, last_seen REAL NOT NULL)"
        )
        db.execute("CREATE INDEX IF NOT EXISTS profiles_last_seen ON profiles(last_seen)")
        super().__init__(SqliteRunner(db))


class PostgresProfileStore(SqlProfileStore):
    """Profiles in the shared database (the table comes from its migrations)."""

    def __init__(self, database: Database) -> None:
        super().__init__(PostgresRunner(database))


class RedisProfileStore:
    """Profiles as Redis strings `<prefix>profile:<visitor_id>`, expiring after the retention
    period of inactivity (Redis does the purging)."""

    def __init__(self, url: str, retention_seconds: float, prefix: str = "vitrine:") -> None:
        import redis

        self._redis = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self._retention = int(retention_seconds)
        self.prefix = prefix
        self._url = url
        # After a failure, calls fail at once for a moment instead of each waiting for the
        # socket timeout: searches keep answering without personalization meanwhile.
        self._down_until = 0.0

    def _key(self, visitor_id: str) -> str:
        return f"{self.prefix}profile:{visitor_id}"

    @contextmanager
    def _reachable(self) -> Iterator[None]:
        """Redis errors (connection refused, timeouts) as `Unavailable`, like every store's."""
        import redis

        if time.monotonic() < self._down_until:
            raise Unavailable(f"Redis at {self._url} is down; retrying shortly", retry_after=1.0)
        try:
            yield
        except (redis.ConnectionError, redis.TimeoutError) as error:
            self._down_until = time.monotonic() + 1.0
            raise Unavailable(f"Redis at {self._url} cannot be reached: {error}") from error

    def get(self, visitor_id: str) -> Profile | None:
        with self._reachable():
            raw = self._redis.get(self._key(visitor_id))
        return json.loads(raw) if raw else None

    def update(self, changes: dict[str, Updater]) -> None:
        with self._reachable():
            self._update(changes)

    def _update(self, changes: dict[str, Updater]) -> None:
        import redis

        for visitor_id, updater in changes.items():
            key = self._key(visitor_id)
            for _attempt in range(50):
                with self._redis.pipeline() as pipe:
                    try:
                        pipe.watch(key)
                        raw = pipe.get(key)
                        profile = updater(json.loads(raw) if raw else None)
                        pipe.multi()
                        pipe.set(key, json.dumps(profile, separators=(",", ":")), ex=self._retention)
                        pipe.execute()
                        break
                    except redis.WatchError:  # another process changed it: read again
                        continue
            else:
                raise RuntimeError(f"profile of {visitor_id!r} kept changing under 50 attempts to update it")

    def delete(self, visitor_id: str) -> bool:
        with self._reachable():
            return bool(self._redis.delete(self._key(visitor_id)))

    def purge(self, not_seen_since: float) -> int:
        return 0  # keys expire on their own after the retention period

    def checkpoint(self) -> None:
        return None  # Redis deletes at once; persistence files are Redis's own business

    def ping(self) -> None:
        with self._reachable():
            self._redis.ping()

    def close(self) -> None:
        self._redis.close()


def open_profile_store(
    spec: str, state_dir: Path, retention_seconds: float, database: Database | None = None
) -> ProfileStore:
    """`spec` is personalization.profile_store: "database" (PostgreSQL when the service has one,
    else the SQLite file), "sqlite", "sqlite:///PATH" or a redis:// URL."""
    if spec.startswith(("redis://", "rediss://", "unix://")):
        return RedisProfileStore(spec, retention_seconds)
    if spec == "database" and database is not None:
        return PostgresProfileStore(database)
    if spec in ("database", "sqlite"):
        return SQLiteProfileStore(state_dir / "profiles.db")
    if spec.startswith("sqlite:///"):
        return SQLiteProfileStore(spec.removeprefix("sqlite:///"))
    raise ValueError(
        "personalization.profile_store must be 'database', 'sqlite', 'sqlite:///PATH' or a redis:// URL, "
        f"not {spec!r}"
    )
