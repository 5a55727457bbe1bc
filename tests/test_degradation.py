"""With PostgreSQL or Redis down, the service degrades instead of failing.

Outages are made with a TCP proxy between the service and the shared server (cut, then
restored); the servers themselves are never stopped (others use them).

1. PostgreSQL down: /search still answers (without personalization), /events is accepted
   (202) and waits in the local buffer with the search-log rows, `store_health` reports
   degraded; when the database returns, every accepted event and logged search is written and
   the visitor's profile holds the buffered events.
2. Redis (profiles) down: the same for events, with the event log on SQLite.
3. The buffer is bounded: past it a batch is refused with 503, never acknowledged and lost.
4. A replica started while PostgreSQL is down serves searches, and migrates and stores what
   waited once the database answers.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient

from indexer.embedding import Embedder
from search.api.app import create_app
from search.service import SearchService
from search.settings import Settings
from tests.services import TcpProxy, redis_url, unavailable, with_host_port


def _eventually(check: Callable[[], bool], seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "not within the deadline"
        time.sleep(0.2)


@pytest.fixture
def proxied(request: pytest.FixtureRequest) -> Iterator[Callable[[str], tuple[TcpProxy, str]]]:
    proxies: list[TcpProxy] = []

    def make(url: str) -> tuple[TcpProxy, str]:
        target = urlsplit(url)
        proxy = TcpProxy(target.hostname or "127.0.0.1", target.port or 0)
        proxies.append(proxy)
        return proxy, with_host_port(url, "127.0.0.1", proxy.port)

    yield make
    for proxy in proxies:
        proxy.close()


def _client(index_dir: Path, embedder: Embedder, **settings) -> tuple[SearchService, TestClient]:
    config = Settings(index_dir=index_dir, **settings)
    service = SearchService.open(index_dir, config, embedder=embedder)
    return service, TestClient(create_app(config, service=service))


def _clicks(visitor: str, product_id: str, n: int) -> list[dict]:
    return [{"type": "click", "visitor_id": visitor, "product_id": product_id} for _ in range(n)]


def test_with_postgresql_down_search_answers_and_writes_wait_until_it_returns(
    mutable_index_dir: Path, embedder: Embedder, pg_url: str, proxied, sample_products
) -> None:
    proxy, url = proxied(pg_url)
    service, client = _client(mutable_index_dir, embedder, database_url=url)
    product = sample_products[0]
    with client:
        assert client.post("/events", json={"events": _clicks("v-outage", product.id, 1)}).status_code == 202
        assert client.get("/search", params={"q": "dress", "visitor_id": "v-outage"}).status_code == 200
        service.search_log.flush()
        assert set(service.store_health().values()) == {"ok"}

        proxy.cut()
        answer = client.get("/search", params={"q": "dress", "visitor_id": "v-outage"})
        assert answer.status_code == 200 and answer.json()["total"] > 0
        accepted = client.post("/events", json={"events": _clicks("v-outage", product.id, 4)})
        assert accepted.status_code == 202 and accepted.json()["accepted"] == 4
        health = service.store_health()
        assert health["database"].startswith("degraded") and health["buffer"].startswith("degraded")
        assert service.visitors.buffered == 4
        _eventually(lambda: service.search_log.buffered >= 1)  # the writer thread put it aside

        proxy.restore()
        _eventually(lambda: _delivered(service))
        assert service.visitors.events.count() == 5
        assert len(service.visitors.events.of_visitor("v-outage")) == 5
        _eventually(lambda: service.search_log.buffered == 0)
        assert service.search_log.count() == 2
        profile = service.visitors.profiles.get("v-outage")
        assert profile is not None and profile["events"] == 5
        assert set(service.store_health().values()) == {"ok"}
    service.close()


def _delivered(service: SearchService) -> bool:
    try:
        service.deliver_buffered()
    except Exception:
        return False
    return service.visitors.buffered == 0


def test_with_redis_down_events_wait_for_the_profile_store(
    mutable_index_dir: Path, embedder: Embedder, proxied, sample_products
) -> None:
    import redis

    try:
        redis.Redis.from_url(redis_url(), socket_connect_timeout=1).ping()
    except redis.RedisError as error:
        unavailable(f"Redis at {redis_url()}", error)
    proxy, url = proxied(redis_url())
    visitor = f"v-redis-{time.time_ns()}"
    service, client = _client(mutable_index_dir, embedder, personalization={"profile_store": url})
    product = sample_products[1]
    with client:
        proxy.cut()
        assert client.get("/search", params={"q": "shirt", "visitor_id": visitor}).status_code == 200
        accepted = client.post("/events", json={"events": _clicks(visitor, product.id, 3)})
        assert accepted.status_code == 202 and accepted.json()["accepted"] == 3
        assert service.store_health()["profiles"].startswith("degraded")
        assert service.visitors.events.count() == 0  # taken back with the failed profile update
        proxy.restore()
        _eventually(lambda: _delivered(service))
        assert service.visitors.events.count() == 3
        assert service.visitors.profiles.get(visitor)["events"] == 3
        service.visitors.profiles.delete(visitor)
    service.close()


def test_a_full_buffer_refuses_the_batch_instead_of_losing_it(
    mutable_index_dir: Path, embedder: Embedder, pg_url: str, proxied, sample_products
) -> None:
    proxy, url = proxied(pg_url)
    service, client = _client(mutable_index_dir, embedder, database_url=url, analytics={"buffer_size": 100})
    product = sample_products[2]
    with client:
        proxy.cut()
        assert client.post("/events", json={"events": _clicks("v-full", product.id, 100)}).status_code == 202
        refused = client.post("/events", json={"events": _clicks("v-full", product.id, 1)})
        assert refused.status_code == 503
        assert service.visitors.buffered == 100
    service.close()


def test_a_replica_starts_while_postgresql_is_down_and_catches_up_when_it_returns(
    mutable_index_dir: Path, embedder: Embedder, pg_url: str, proxied, sample_products
) -> None:
    proxy, url = proxied(pg_url)
    proxy.cut()
    service, client = _client(mutable_index_dir, embedder, database_url=url)
    with client:
        assert client.get("/search", params={"q": "dress", "visitor_id": "v-early"}).status_code == 200
        events = _clicks("v-early", sample_products[3].id, 2)
        assert client.post("/events", json={"events": events}).status_code == 202
        assert service.store_health()["database"].startswith("degraded")
        proxy.restore()
        _eventually(lambda: _delivered(service))  # migrates on the first connection, then stores
        assert service.database is not None and service.database.version() >= 3
        assert len(service.visitors.events.of_visitor("v-early")) == 2
    service.close()
