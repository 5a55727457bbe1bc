"""The behaviour API: events (ours and UBI), segments, opt-out, recent, similar, erasure,
and profiles shared by several service processes through the real Redis server."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from indexer.catalog import Product
from indexer.embedding import Embedder
from search.api.app import create_app
from search.models import SearchRequest
from search.service import SearchService
from search.settings import Settings

IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148"


@pytest.fixture(scope="module")
def client(service: SearchService, index_dir) -> Iterator[TestClient]:
    app = create_app(Settings(index_dir=index_dir, server={"admin_key": "secret"}), service=service)
    with TestClient(app) as client:
        yield client


def _visitor() -> str:
    return f"v-{uuid.uuid4().hex}"


def _red_m(products: list[Product]) -> list[Product]:
    return [p for p in products if "Red" in p.colours and any(v.size == "M" for v in p.variants)][:4]


def _purchases(products: list[Product], visitor: str) -> list[dict]:
    return [
        {"type": "purchase", "visitor_id": visitor, "session_id": "s1", "product_id": p.id,
         "variant_sku": next(v.sku for v in p.variants if v.size == "M"), "value": 50}
        for p in products
    ]


def test_events_batch_keeps_valid_events_and_rejects_each_bad_one_with_a_reason(client, sample_products) -> None:
    visitor = _visitor()
    product = sample_products[0]
    events = [
        {"type": "view", "visitor_id": visitor, "product_id": product.id},
        {"type": "teleport", "visitor_id": visitor, "product_id": product.id},
        {"type": "click", "visitor_id": visitor},
        {"type": "view", "visitor_id": visitor, "product_id": product.id, "ts": time.time() + 86400},
        "not an object",
        {"type": "click", "visitor_id": visitor, "product_id": "no-such-product", "position": 3},
    ]
    response = client.post("/events", json={"events": events})
    assert response.status_code == 202
    body = response.json()
    assert body["accepted"] == 2
    reasons = {r["index"]: r["reason"] for r in body["rejected"]}
    assert set(reasons) == {1, 2, 3, 4}
    assert "type" in reasons[1]
    assert "needs product_id" in reasons[2]
    assert "future" in reasons[3]
    assert body["unknown_products"] == ["no-such-product"]


def test_events_batch_limits_are_explained(client) -> None:
    too_many = [{"type": "search", "visitor_id": "v", "query": "x"}] * 1001
    response = client.post("/events", json={"events": too_many})
    assert response.status_code == 413 and "at most 1000" in response.json()["detail"]
    response = client.post("/events", json={"events": "nope"})
    assert response.status_code == 422
    response = client.post("/events", json={"events": [{"type": "view"}]})
    assert response.status_code == 422
    assert response.json()["rejected"][0]["index"] == 0


def test_ubi_events_are_understood(client, service, sample_products) -> None:
    visitor = _visitor()
    product = sample_products[1]
    ubi = {
        "application": "shop", "action_name": "product_view", "client_id": visitor, "query_id": "q-1",
        "timestamp": "2026-11-22T10:00:00Z", "message_type": "INFO",
        "event_attributes": {"object": {"object_id": product.id, "object_id_field": "id"}, "position": {"ordinal": 2}},
    }
    response = client.post("/events", json={"events": [ubi]})
    assert response.status_code == 202 and response.json()["accepted"] == 1
    logged = service.visitors.events.of_visitor(visitor)
    assert [(e.type, e.product_id, e.search_id, e.position) for e in logged] == [("view", product.id, "q-1", 2)]


def test_personalization_through_the_api_and_its_opt_out_header(client, sample_products) -> None:
    visitor = _visitor()
    assert client.post("/events", json={"events": _purchases(_red_m(sample_products), visitor)}).status_code == 202
    params = {"q": "dress", "visitor_id": visitor, "session_id": "s1", "explain": "true", "limit": 20}
    personalized = client.get("/search", params=params).json()
    assert personalized["debug"]["personalized"] is True
    assert any(h["explain"]["personalize"]["contribution"] > 0 for h in personalized["hits"])
    opted_out = client.get("/search", params=params, headers={"X-Personalize": "off"}).json()
    assert opted_out["debug"]["personalized"] is False
    anonymous = client.get("/search", params={"q": "dress", "limit": 20}).json()
    assert [h["id"] for h in opted_out["hits"]] == [h["id"] for h in anonymous["hits"]]
    body = client.post("/search", json={"q": "dress", "visitor_id": visitor, "personalize": False, "explain": True}).json()
    assert body["debug"]["personalized"] is False


@pytest.mark.parametrize(
    ("params", "headers", "expected"),
    [
        ({}, {}, {"traffic_source": "direct", "visitor": "new", "device": "desktop"}),
        ({"utm_medium": "cpc"}, {"User-Agent": IPHONE}, {"traffic_source": "paid", "visitor": "new", "device": "mobile"}),
        ({"referrer": "https://www.google.com/search?q=dress"}, {}, {"traffic_source": "organic", "visitor": "new", "device": "desktop"}),
        ({"referrer": "https://l.instagram.com/x"}, {}, {"traffic_source": "social", "visitor": "new", "device": "desktop"}),
        ({"traffic_source": "email", "device": "tablet"}, {}, {"traffic_source": "email", "visitor": "new", "device": "tablet"}),
    ],
)
def test_segment_is_computed_from_the_visit_context(client, params, headers, expected) -> None:
    response = client.get("/search", params={"q": "dress", "explain": "true", **params}, headers=headers)
    assert response.json()["debug"]["segment"] == expected


def test_a_visitor_with_an_earlier_visit_is_returning(client, sample_products) -> None:
    visitor = _visitor()
    product = sample_products[2]
    day_ago = time.time() - 86400
    client.post("/events", json={"events": [{"type": "view", "visitor_id": visitor, "session_id": "a", "product_id": product.id, "ts": day_ago}]})
    first = client.get("/search", params={"q": "dress", "visitor_id": visitor, "session_id": "a", "explain": "true"}).json()
    assert first["debug"]["segment"]["visitor"] == "new"  # still in their first visit
    later = client.get("/search", params={"q": "dress", "visitor_id": visitor, "session_id": "b", "explain": "true"}).json()
    assert later["debug"]["segment"]["visitor"] == "returning"


def test_recently_viewed_lists_the_latest_views_first(client, sample_products) -> None:
    visitor = _visitor()
    now = time.time()
    viewed = sample_products[10:14]
    events = [{"type": "view", "visitor_id": visitor, "product_id": p.id, "ts": now - 100 + i} for i, p in enumerate(viewed)]
    events.append({"type": "view", "visitor_id": visitor, "product_id": viewed[0].id, "ts": now})  # seen again
    client.post("/events", json={"events": events})
    recent = client.get(f"/visitors/{visitor}/recent").json()["products"]
    assert [p["id"] for p in recent] == [viewed[0].id, viewed[3].id, viewed[2].id, viewed[1].id]
    assert client.get(f"/visitors/{_visitor()}/recent").json()["products"] == []


def test_similar_products_endpoint(client, sample_products) -> None:
    visitor = _visitor()
    client.post("/events", json={"events": _purchases(_red_m(sample_products), visitor)})
    product = next(p for p in sample_products if "Dresses" in p.categories)
    body = client.get(f"/products/{product.id}/similar", params={"visitor_id": visitor, "limit": 5}).json()
    assert len(body["products"]) == 5
    for hit in body["products"]:
        offered = {v.size for v in engine_product(client, hit["id"]).variants}
        assert hit["in_stock"] and ("M" in hit["available_sizes"] or "M" not in offered)
    sized = client.get(f"/products/{product.id}/similar", params={"size": "XS", "limit": 5}).json()["products"]
    assert all("XS" in p["available_sizes"] for p in sized)
    assert client.get("/products/nope/similar").status_code == 404


def engine_product(client: TestClient, product_id: str) -> Product:
    return Product.model_validate(client.get(f"/products/{product_id}").json())


def test_erasure_removes_profile_and_events_and_needs_the_admin_key(client, service, sample_products) -> None:
    visitor, other = _visitor(), _visitor()
    client.post("/events", json={"events": _purchases(_red_m(sample_products), visitor) + _purchases(_red_m(sample_products), other)})
    client.post("/events", json={"events": [{"type": "view", "visitor_id": visitor, "product_id": sample_products[0].id}]})
    assert service.visitors.profiles.get(visitor) is not None
    assert client.delete(f"/visitors/{visitor}").status_code == 401
    response = client.delete(f"/visitors/{visitor}", headers={"X-Admin-Key": "secret"})
    assert response.status_code == 200
    erased = response.json()["erased"]
    assert (erased["profiles"], erased["events"]) == (1, 5)
    assert service.visitors.profiles.get(visitor) is None
    assert service.visitors.events.of_visitor(visitor) == []
    assert client.get(f"/visitors/{visitor}/recent").json()["products"] == []
    result = service.search(SearchRequest(q="dress", visitor_id=visitor, explain=True))
    assert result.debug["personalized"] is False
    # Nobody else is touched.
    assert service.visitors.profiles.get(other) is not None
    assert len(service.visitors.events.of_visitor(other)) == 4


def test_retention_purges_old_events_and_profiles(tmp_path: Path, index_dir: Path, embedder: Embedder, sample_products) -> None:
    settings = Settings(index_dir=index_dir, data_dir=tmp_path / "state", personalization={"retention_days": 30})
    service = SearchService.open(index_dir, settings, embedder=embedder)
    try:
        old, fresh = _visitor(), _visitor()
        now = time.time()
        product = sample_products[0].id
        result = service.visitors.ingest([
            {"type": "view", "visitor_id": old, "product_id": product, "ts": now - 20 * 86400},
            {"type": "view", "visitor_id": fresh, "product_id": product, "ts": now},
            {"type": "view", "visitor_id": fresh, "product_id": product, "ts": now - 40 * 86400},
        ])
        assert result.accepted == 2 and "retention" in result.rejected[0].reason
        purged = service.visitors.purge_expired(now=now + 15 * 86400)
        assert purged == {"profiles": 1, "events": 1}
        assert service.visitors.profiles.get(old) is None and service.visitors.profiles.get(fresh) is not None
    finally:
        service.close()


def test_no_ip_address_or_user_agent_is_stored(client, service, sample_products) -> None:
    visitor = _visitor()
    client.post(
        "/events",
        json={"events": [{"type": "view", "visitor_id": visitor, "product_id": sample_products[0].id,
                          "context": {"referrer": "https://mail.example.com/inbox?u=jane@example.com", "device": "mobile"}}]},
        headers={"User-Agent": IPHONE},
    )
    logged = service.visitors.events.of_visitor(visitor)
    assert logged[0].referrer_host == "mail.example.com"
    stored = repr(logged) + repr(service.visitors.profiles.get(visitor))
    for secret in ("jane@example.com", "iPhone", "testclient"):
        assert secret not in stored


def test_profiles_in_redis_are_shared_by_service_processes(index_dir: Path, embedder: Embedder, tmp_path: Path, sample_products) -> None:
    import redis

    url = os.environ.get("VITRINE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.RedisError as error:
        if os.environ.get("VITRINE_REQUIRE_SERVICES") == "1":
            pytest.fail(f"Redis at {url} is required here: {error}")
        pytest.skip(f"no Redis at {url}")
    services = [
        SearchService.open(index_dir, Settings(index_dir=index_dir, data_dir=tmp_path / f"state{i}",
                                         personalization={"profile_store": url}), embedder=embedder)
        for i in range(2)
    ]
    visitor = _visitor()
    try:
        services[0].visitors.ingest(_purchases(_red_m(sample_products), visitor))
        result = services[1].search(SearchRequest(q="dress", visitor_id=visitor, session_id="s1", explain=True))
        assert result.debug["personalized"] is True
        assert result.debug["preferred_sizes"] == ["m"]
        services[1].visitors.erase(visitor)
        assert services[0].visitors.profiles.get(visitor) is None
    finally:
        for service in services:
            service.close()
