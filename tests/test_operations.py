"""Health, readiness and metrics of one service, through a real ASGI client on a real index.

Properties checked:
  1. /health and /ready need no key even when keys are set; /ready names the index version
     (the one /health reports), its age and every store, all "ok";
  2. Redis profiles on a port where nothing listens: /ready answers 200 "degraded" naming the
     profile store, searches still answer, vitrine_ready is 0; a data directory that cannot be
     opened (a file where the volume should be): 503 "unavailable" naming the store, /health
     still 200; the same service with a running Redis is "ok";
  3. /metrics needs the admin key or the metrics key; the metrics key opens nothing else;
  4. searches, zero-result searches and accepted events are counted; request latencies are
     labelled by route template, never by the path (no product id becomes a label), and
     made-up paths and methods share one label value each;
  5. the index version served and the search log queue are exported as gauges;
  6. a request log line of a search carries that search's search_id.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from fastapi.testclient import TestClient

from search.api.app import create_app
from search.logs import configure_logging
from search.service import SearchService
from search.settings import Settings
from tests.services import free_port

ADMIN = "ops-admin-key"
SEARCH = "ops-search-key"
METRICS = "ops-metrics-key"




@pytest.fixture(scope="module")
def client(service: SearchService, index_dir: Path) -> Iterator[TestClient]:
    settings = Settings(index_dir=index_dir, server={"admin_key": ADMIN, "search_key": SEARCH, "metrics_key": METRICS})
    with TestClient(create_app(settings, service=service)) as client:
        yield client


def _metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample of the exposition text (0 when absent)."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        sample_labels = dict(re.findall(r'(\w+)="([^"]*)"', line.split(" ")[0]))
        if all(sample_labels.get(k) == v for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def _scrape(client: TestClient) -> str:
    response = client.get("/metrics", headers={"Authorization": f"Bearer {METRICS}"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


def test_health_and_ready_need_no_key_and_ready_names_index_version_age_and_stores(client) -> None:
    health = client.get("/health")
    ready = client.get("/ready")
    assert health.status_code == 200 and ready.status_code == 200
    body = ready.json()
    assert body["status"] == "ok"
    assert body["index"]["version"] == health.json()["index_version"]
    assert body["index"]["age_seconds"] >= 0
    assert body["index"]["products"] == health.json()["products"]
    assert set(body["stores"]) >= {"search_log", "profiles", "events"}
    assert set(body["stores"].values()) == {"ok"}


def test_redis_down_makes_ready_degraded_naming_it_while_search_answers(mutable_index_dir, embedder) -> None:
    nothing_listens = f"redis://127.0.0.1:{free_port()}/0"
    settings = Settings(index_dir=mutable_index_dir, personalization={"profile_store": nothing_listens})
    service = SearchService(settings, embedder=embedder)
    try:
        with TestClient(create_app(settings, service=service)) as client:
            response = client.get("/ready")
            # Still fit for traffic: searches answer (without personalization).
            searched = client.get("/search", params={"q": "dress", "visitor_id": "ops-v9"})
            scraped = client.get("/metrics").text
    finally:
        service.close()
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    assert body["stores"]["profiles"].startswith("degraded")
    assert body["stores"]["search_log"] == "ok"
    assert searched.status_code == 200 and searched.json()["total"] > 0
    assert _metric(scraped, "vitrine_ready") == 0


def test_a_store_that_cannot_be_opened_makes_ready_unavailable_and_names_it(mutable_index_dir, tmp_path, embedder) -> None:
    not_a_directory = tmp_path / "state-volume"
    not_a_directory.write_text("a file where the data directory should be mounted")
    settings = Settings(index_dir=mutable_index_dir, data_dir=not_a_directory)
    service = SearchService(settings, embedder=embedder)
    try:
        with TestClient(create_app(settings, service=service)) as client:
            response = client.get("/ready")
            alive = client.get("/health")
    finally:
        service.close()
    assert alive.status_code == 200  # an orchestrator should not kill it: the volume is the problem
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["stores"]["search_log"].startswith("down:")


def test_the_same_service_with_a_running_redis_is_ready(mutable_index_dir, embedder) -> None:
    url = os.environ.get("VITRINE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    settings = Settings(index_dir=mutable_index_dir, personalization={"profile_store": url})
    service = SearchService(settings, embedder=embedder)
    try:
        with TestClient(create_app(settings, service=service)) as client:
            response = client.get("/ready")
    finally:
        service.close()
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "ok"
    assert response.json()["stores"]["profiles"] == "ok"


def test_metrics_need_the_admin_or_metrics_key_and_the_metrics_key_opens_nothing_else(client) -> None:
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": f"Bearer {SEARCH}"}).status_code == 403
    assert client.get("/metrics", headers={"Authorization": f"Bearer {ADMIN}"}).status_code == 200
    assert client.get("/metrics", headers={"Authorization": f"Bearer {METRICS}"}).status_code == 200
    # The scraper's key is no search key and no admin key.
    assert client.get("/search", params={"q": "dress"}, headers={"Authorization": f"Bearer {METRICS}"}).status_code == 401
    assert client.get("/reports/top", headers={"Authorization": f"Bearer {METRICS}"}).status_code == 401


def test_searches_zero_results_and_accepted_events_are_counted(client, sample_products) -> None:
    before = _scrape(client)
    headers = {"Authorization": f"Bearer {SEARCH}"}
    for q in ("dress", "linen shirt"):
        assert client.get("/search", params={"q": q}, headers=headers).json()["total"] > 0
    nothing = client.post("/search", json={"q": "qqqxzzv wwwkkjj"}, headers=headers).json()
    assert nothing["total"] == 0
    events = [{"type": "view", "visitor_id": "ops-v1", "product_id": p.id} for p in sample_products[:3]]
    events.append({"type": "view"})  # no visitor, no product: rejected
    accepted = client.post("/events", json={"events": events}, headers=headers)
    assert accepted.status_code == 202 and accepted.json()["accepted"] == 3
    after = _scrape(client)

    def delta(name: str) -> float:
        return _metric(after, name) - _metric(before, name)

    assert delta("vitrine_searches_total") == 3
    assert delta("vitrine_zero_result_searches_total") == 1
    assert delta("vitrine_events_accepted_total") == 3
    assert delta("vitrine_events_rejected_total") == 1


def test_request_latency_is_labelled_by_route_template_not_by_path(client, sample_products) -> None:
    product = sample_products[5].id
    assert client.get(f"/products/{product}", headers={"Authorization": f"Bearer {SEARCH}"}).status_code == 200
    assert client.get("/products/no-such-product", headers={"Authorization": f"Bearer {SEARCH}"}).status_code == 404
    for n in range(3):  # made-up paths and methods: each a new label value if taken as given
        client.get(f"/no-such-route-{n}", headers={"Authorization": f"Bearer {SEARCH}"})
        client.request(f"BREW{n}", "/search", headers={"Authorization": f"Bearer {SEARCH}"})
    text = _scrape(client)
    assert "no-such-route" not in text and "BREW" not in text
    assert _metric(text, "vitrine_http_requests_total", route="(unmatched)") >= 3
    assert _metric(text, "vitrine_http_requests_total", method="OTHER") >= 3
    template = "/products/{product_id}"
    assert _metric(text, "vitrine_http_request_duration_seconds_count", method="GET", route=template) >= 2
    assert _metric(text, "vitrine_http_requests_total", method="GET", route=template, status="404") >= 1
    assert product not in text and "no-such-product" not in text


def test_index_version_and_search_log_queue_are_exported(client) -> None:
    version = client.get("/health").json()["index_version"]
    deadline = time.monotonic() + 30
    text = _scrape(client)
    while _metric(text, "vitrine_index_version_info", version=version) != 1 and time.monotonic() < deadline:
        time.sleep(0.2)  # sampled every second by the app
        text = _scrape(client)
    assert _metric(text, "vitrine_index_version_info", version=version) == 1
    assert 0 < _metric(text, "vitrine_index_built_timestamp_seconds") <= time.time()
    assert "vitrine_search_log_queue_depth" in text


def test_a_search_request_log_line_carries_its_search_id(service, index_dir, capsys) -> None:
    configure_logging("info", "json")
    try:
        with TestClient(create_app(Settings(index_dir=index_dir), service=service)) as client:
            capsys.readouterr()
            search_id = client.get("/search", params={"q": "boots"}).json()["search_id"]
            lines = capsys.readouterr().err.splitlines()
    finally:
        configure_logging("info", "console")
        structlog.contextvars.clear_contextvars()
    request_lines = [line for line in lines if '"event": "request"' in line and '"path": "/search"' in line]
    assert len(request_lines) == 1
    assert f'"search_id": "{search_id}"' in request_lines[0]
