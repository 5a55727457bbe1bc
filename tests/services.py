"""The real servers the store suites run against, and a cuttable TCP proxy for outage tests.

PostgreSQL comes from VITRINE_TEST_DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/test)
and Redis from VITRINE_TEST_REDIS_URL (default redis://127.0.0.1:6379/0). Each test gets its own
PostgreSQL schema (`options=-csearch_path=...`) and Redis key prefix, dropped afterwards, so
several people and runs can share one server. Without a reachable server the test is skipped
with a reason starting `SERVICE_SKIP`; under CI (`CI` or VITRINE_REQUIRE_SERVICES set) the
conftest turns that skip into a failure.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import uuid
from urllib.parse import urlencode, urlsplit, urlunsplit

import pytest

# Also the tests' way to start a server and wait for it (shared with the benchmarks).
from benchmarks.servers import free_port as free_port
from benchmarks.servers import wait_healthy as wait_healthy

SERVICE_SKIP = "service unavailable"


def postgres_url() -> str:
    return os.environ.get("VITRINE_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")


def redis_url() -> str:
    return os.environ.get("VITRINE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def services_required() -> bool:
    return bool(os.environ.get("CI")) or os.environ.get("VITRINE_REQUIRE_SERVICES") == "1"


def unavailable(what: str, error: BaseException) -> None:
    message = f"{SERVICE_SKIP}: {what}: {error}"
    if services_required():
        pytest.fail(message)
    pytest.skip(message)


def with_schema(url: str, schema: str) -> str:
    parts = urlsplit(url)
    query = "&".join(q for q in (parts.query, urlencode({"options": f"-csearch_path={schema}"})) if q)
    return urlunsplit(parts._replace(query=query))


def new_schema() -> str:
    return f"vitrine_test_{uuid.uuid4().hex[:12]}"


def drop_schema(url: str, schema: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def check_postgres(url: str) -> None:
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=2) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as error:
        unavailable(f"PostgreSQL at {url}", error)


def with_host_port(url: str, host: str, port: int) -> str:
    """The same URL pointing at another address (a proxy in front of the server)."""
    parts = urlsplit(url)
    userinfo = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
    return urlunsplit(parts._replace(netloc=f"{userinfo}{host}:{port}"))


class TcpProxy:
    """Forwards 127.0.0.1:<port> to a server; `cut()` drops every connection and refuses new
    ones (the server "goes down" for whoever talks through the proxy), `restore()` lets them
    in again. The shared server itself is never touched."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port = self._listener.getsockname()[1]
        self._up = threading.Event()
        self._up.set()
        self._closed = False
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True, name="test-proxy").start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if not self._up.is_set():
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets |= {client, upstream}
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        self._up.clear()
        with self._lock:
            sockets, self._sockets = self._sockets, set()
        for s in sockets:
            try:
                s.shutdown(socket.SHUT_RDWR)
                s.close()
            except OSError:
                pass

    def restore(self) -> None:
        self._up.set()

    def close(self) -> None:
        self._closed = True
        self.cut()
        self._listener.close()
