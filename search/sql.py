"""One way for a store to run SQL on SQLite or PostgreSQL: the stores write their statements
once (with `?` placeholders, in the SQL both dialects share) and run them through a `Runner`.

Where the dialects differ (inserting while ignoring duplicates, getting a new row's id,
JSON functions) a store says so in the one statement that differs, never by copying the others.

  - `SqliteRunner`: one connection (autocommit, WAL) guarded by a lock; `transaction()` is
    BEGIN IMMEDIATE, so writers from several processes take turns.
  - `PostgresRunner`: a connection from the pool per call; `transaction()` is one connection's
    transaction (committed when the block ends, rolled back if it raises).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

from search.database import Database


class Cursor(Protocol):
    """What a statement run inside a transaction returns."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class Tx(Protocol):
    def execute(self, sql: str, args: Sequence[Any] = ()) -> Cursor: ...

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...


class Runner(Protocol):
    dialect: str  # "sqlite" | "postgres"

    def query(self, sql: str, args: Sequence[Any] = ()) -> list[tuple]: ...

    def execute(self, sql: str, args: Sequence[Any] = ()) -> int:
        """Run one statement in its own transaction; returns the rows it changed."""

    def transaction(self, serialize: str | None = None) -> Any:
        """A context manager yielding a `Tx`: everything in the block commits together.
        `serialize` names a lock that writers of every process take in turn (SQLite's BEGIN
        IMMEDIATE already does; PostgreSQL takes an advisory lock on the name)."""

    def checkpoint(self) -> None:
        """Make deletions final on disk (erasure)."""

    def ping(self) -> None: ...

    def close(self) -> None: ...


def pg(sql: str) -> str:
    """`?` placeholders to psycopg's `%s` (the stores' SQL has no literal `?` or `%`)."""
    return sql.replace("?", "%s")


class SqliteRunner:
    dialect = "sqlite"

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self.lock = threading.Lock()

    def query(self, sql: str, args: Sequence[Any] = ()) -> list[tuple]:
        with self.lock:
            return self.db.execute(sql, tuple(args)).fetchall()

    def execute(self, sql: str, args: Sequence[Any] = ()) -> int:
        with self.lock:
            return self.db.execute(sql, tuple(args)).rowcount

    @contextmanager
    def transaction(self, serialize: str | None = None) -> Iterator[sqlite3.Connection]:
        with self.lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
                self.db.execute("COMMIT")
            except BaseException:
                # SQLite rolls back by itself on some errors (a full disk): a second ROLLBACK
                # would raise and hide the real error.
                if self.db.in_transaction:
                    self.db.execute("ROLLBACK")
                raise

    def checkpoint(self) -> None:
        """Copy the WAL into the database file and empty it: deleted rows leave no old page
        copies behind (erasure)."""
        with self.lock:
            self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def ping(self) -> None:
        with self.lock:
            self.db.execute("SELECT 1").fetchone()

    def close(self) -> None:
        with self.lock:
            self.db.close()


class _PgTx:
    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def execute(self, sql: str, args: Sequence[Any] = ()) -> Any:
        return self.conn.execute(pg(sql), tuple(args))

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        with self.conn.cursor() as cursor:
            cursor.executemany(pg(sql), [tuple(r) for r in rows])


class PostgresRunner:
    dialect = "postgres"

    def __init__(self, database: Database) -> None:
        self.database = database

    def query(self, sql: str, args: Sequence[Any] = ()) -> list[tuple]:
        with self.database.connection() as conn:
            return conn.execute(pg(sql), tuple(args)).fetchall()

    def execute(self, sql: str, args: Sequence[Any] = ()) -> int:
        with self.database.connection() as conn:
            return conn.execute(pg(sql), tuple(args)).rowcount

    @contextmanager
    def transaction(self, serialize: str | None = None) -> Iterator[_PgTx]:
        with self.database.connection() as conn, conn.transaction():
            if serialize:
                conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (serialize,))
            yield _PgTx(conn)

    def checkpoint(self) -> None:
        """PostgreSQL reclaims deleted rows itself (VACUUM); nothing to do per store."""

    def ping(self) -> None:
        self.database.ping()

    def close(self) -> None:
        """The pool belongs to the service, which closes it after every store."""
