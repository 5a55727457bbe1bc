"""A store that cannot write (full disk) gives 503 with Retry-After and leaves nothing half-written.

The failure is real, not mocked: SQLite's `max_page_count`, set on the service's own
connection, makes the database file full at its current size, exactly as a full disk does
(`database or disk is full`).

Properties checked:
  1. profiles full: POST /events → 503 + Retry-After, the events are not kept either;
  2. events full: POST /events → 503, nothing stored anywhere;
  3. after the disk frees up, the same batch (with event ids) is stored once, and sending it
     again counts nothing twice;
  4. catalog store full: PUT /catalog/products → 503, the product does not half-exist.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from indexer.embedding import Embedder
from search.api.app import create_app
from search.service import SearchService
from search.settings import Settings

UNLIMITED = 1_073_741_823


@pytest.fixture
def live(mutable_index_dir: Path, embedder: Embedder) -> Iterator[tuple[SearchService, TestClient]]:
    settings = Settings(index_dir=mutable_index_dir)
    engine = SearchService.open(mutable_index_dir, settings, embedder=embedder)
    with TestClient(create_app(settings, service=engine), raise_server_exceptions=False) as client:
        yield engine, client
    engine.close()


def _full(db: sqlite3.Connection) -> None:
    (pages,) = db.execute("PRAGMA page_count").fetchone()
    db.execute(f"PRAGMA max_page_count = {max(pages, 1)}")


def _batch(sample_products, visitors: int = 300) -> list[dict]:
    return [
        {"type": "view", "visitor_id": f"full-v{i}", "product_id": sample_products[i % 50].id, "event_id": f"e{i}"}
        for i in range(visitors)
    ]


def _assert_503(response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert int(response.headers["retry-after"]) >= 1
    assert "Traceback" not in response.text


def test_full_profile_store_gives_503_and_keeps_no_event_then_a_retry_counts_once(live, sample_products) -> None:
    engine, client = live
    events_before = engine.visitors.events.count()
    profiles_db = engine.visitors.profiles._sql.db
    _full(profiles_db)
    batch = _batch(sample_products)
    _assert_503(client.post("/events", json={"events": batch}))
    assert engine.visitors.events.count() == events_before
    assert engine.visitors.profiles.get("full-v0") is None
    # The disk frees up; the client sends the same batch again, then once more (a timeout).
    profiles_db.execute(f"PRAGMA max_page_count = {UNLIMITED}")
    first = client.post("/events", json={"events": batch})
    assert first.status_code == 202 and first.json()["accepted"] == len(batch)
    again = client.post("/events", json={"events": batch})
    assert again.status_code == 202 and (again.json()["accepted"], again.json()["duplicates"]) == (0, len(batch))
    assert engine.visitors.events.count() == events_before + len(batch)
    assert [p for p, _ in engine.visitors.recent("full-v0")] == [sample_products[0].id]


def test_full_event_store_gives_503_and_stores_nothing(live, sample_products) -> None:
    engine, client = live
    events_before = engine.visitors.events.count()
    _full(engine.visitors.events._sql.db)
    _assert_503(client.post("/events", json={"events": _batch(sample_products, 1000)}))
    assert engine.visitors.events.count() == events_before
    assert engine.visitors.profiles.get("full-v0") is None


def test_full_catalog_store_gives_503_and_the_product_does_not_half_exist(live) -> None:
    engine, client = live
    seq = engine.engine.snapshot.store.last_seq()
    _full(engine.updater.store._db)
    products = [{"id": f"full-p{i}", "title": f"Disk full test product {i} " + "lorem ipsum " * 50} for i in range(200)]
    _assert_503(client.put("/catalog/products", json=products))
    engine.updater.store._db.execute(f"PRAGMA max_page_count = {UNLIMITED}")
    assert engine.engine.snapshot.store.last_seq() == seq
    assert client.get("/products/full-p0").status_code == 404
    # And the same request succeeds once there is room.
    assert client.put("/catalog/products", json=products[:2]).status_code == 200
    assert client.get("/products/full-p0").status_code == 200
