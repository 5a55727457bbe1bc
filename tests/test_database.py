"""The PostgreSQL database: migrations applied once, in order, on a schema of its own.

1. Opening a fresh schema applies every migration and records each version.
2. Opening it again (a second replica starting) applies nothing.
3. `ping` answers while the server is up and raises `Unavailable` when it cannot be reached.
4. The settings take `VITRINE_DATABASE_URL` and refuse anything but a postgresql:// URL.
"""

from __future__ import annotations

import time

import pytest

from search.database import MIGRATIONS, Database
from search.errors import Unavailable
from search.settings import Settings
from tests.services import TcpProxy, with_host_port


def test_a_fresh_schema_gets_every_migration_once(pg_url: str) -> None:
    first = Database.open(pg_url)
    try:
        assert first.version() == MIGRATIONS[-1][0]
        with first.connection() as conn:
            versions = [v for (v,) in conn.execute("SELECT version FROM schema_migrations ORDER BY version")]
        assert versions == [m[0] for m in MIGRATIONS]
    finally:
        first.close()
    second = Database(pg_url)
    second.pool.open()
    try:
        assert second.migrate() == []  # a second replica starting finds nothing to do
    finally:
        second.close()


def test_ping_raises_unavailable_when_the_server_cannot_be_reached(pg_url: str) -> None:
    from urllib.parse import urlsplit

    target = urlsplit(pg_url)
    proxy = TcpProxy(target.hostname or "127.0.0.1", target.port or 5432)
    database = Database.open(with_host_port(pg_url, "127.0.0.1", proxy.port), timeout=2)
    try:
        database.ping()
        proxy.cut()
        with pytest.raises(Unavailable):
            database.ping()
        proxy.restore()
        _answers_within(database, seconds=10)
    finally:
        database.close()
        proxy.close()


def _answers_within(database: Database, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            database.ping()
            return
        except Unavailable:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_settings_read_the_database_url_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VITRINE_DATABASE_URL", "postgresql://shop@db.internal:5432/vitrine")
    assert Settings().database_url == "postgresql://shop@db.internal:5432/vitrine"
    monkeypatch.setenv("VITRINE_DATABASE_URL", "mysql://shop@db/vitrine")
    with pytest.raises(ValueError, match="postgresql://"):
        Settings()
    monkeypatch.delenv("VITRINE_DATABASE_URL")
    assert Settings().database_url is None
