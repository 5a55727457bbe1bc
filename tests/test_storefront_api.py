"""The storefront's HTTP side, through a real HTTP client on a real index.

1. The widget's two files are served and stay under 30 KB gzipped together.
2. An unknown query parameter (`page=2`, `color=red`) gets a 422 that names it.
3. The demo shop pages exist only when the demo shop is switched on.
4. Events sent by `navigator.sendBeacon` as text/plain JSON are read as JSON.
5. A cross-origin page may send the public search key (CORS preflight allows Authorization).
6. /docs and /redoc load nothing from outside the server.
7. The README's example files run as written: products, every event type, synonyms; after the
   example events, `/visitors/v1/recent` is not empty.
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from search.api.app import create_app
from search.service import SearchService
from search.settings import Settings

ROOT = Path(__file__).parent.parent
EXAMPLES = ROOT / "examples"


@pytest.fixture
def client(mutable_service: SearchService, mutable_index_dir: Path) -> Iterator[TestClient]:
    settings = Settings(index_dir=mutable_index_dir, server={"demo_shop": True})
    with TestClient(create_app(settings, service=mutable_service)) as client:
        yield client


def test_widget_files_are_served_and_weigh_under_30_kb_gzipped(client) -> None:
    js = client.get("/widget/vitrine.js")
    css = client.get("/widget/vitrine.css")
    assert js.status_code == css.status_code == 200
    assert "javascript" in js.headers["content-type"] and "text/css" in css.headers["content-type"]
    size = len(gzip.compress(js.content + css.content, compresslevel=9))
    assert size < 30 * 1024, f"widget is {size} bytes gzipped"


@pytest.mark.parametrize(
    ("path", "unknown"),
    [("/search?q=dress&page=2", "page"), ("/search?q=dress&color=red", "color"), ("/suggest?q=dr&size=M", "size"),
     ("/visitors/v1/recent?count=3", "count"), ("/products/p000001/similar?colour=Red", "colour")],
)
def test_an_unknown_query_parameter_gets_a_422_that_names_it(client, path: str, unknown: str) -> None:
    response = client.get(path)
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    (error,) = response.json()["errors"]
    assert error["loc"] == ["query", unknown]
    assert f"unknown query parameter '{unknown}'" in error["msg"] and "limit" in error["msg"]


def test_paging_with_limit_and_offset_and_known_parameters_still_work(client) -> None:
    first = client.get("/search", params={"q": "shirt", "limit": 5, "offset": 0, "utm_source": "newsletter"})
    second = client.get("/search", params={"q": "shirt", "limit": 5, "offset": 5})
    assert first.status_code == second.status_code == 200
    assert not {h["id"] for h in first.json()["hits"]} & {h["id"] for h in second.json()["hits"]}
    assert "paged with limit and offset" in client.get("/search?q=shirt&page=2").json()["errors"][0]["msg"]


def test_the_demo_shop_pages_exist_only_when_the_demo_shop_is_on(mutable_service, mutable_index_dir, client) -> None:
    product = client.get("/search", params={"q": "dress", "limit": 1}).json()["hits"][0]["id"]
    for path in ("/", "/?q=shirt", f"/shop/products/{product}", "/shop/cart", f"/shop/img/{product}.svg"):
        assert client.get(path).status_code == 200, path
    assert client.get("/shop/products/no-such-product").status_code == 404
    with TestClient(create_app(Settings(index_dir=mutable_index_dir), service=mutable_service)) as api_only:
        assert api_only.get("/").status_code == 404
        assert api_only.get("/widget/vitrine.js").status_code == 200  # the widget is always served


def test_events_sent_as_text_plain_by_send_beacon_are_read_as_json(client, mutable_service) -> None:
    body = {"events": [{"type": "view", "visitor_id": "beacon-visitor", "product_id": "p000003"}]}
    response = client.post("/events", content=json.dumps(body), headers={"content-type": "text/plain;charset=UTF-8"})
    assert response.status_code == 202 and response.json()["accepted"] == 1
    assert [e.product_id for e in mutable_service.visitors.events.of_visitor("beacon-visitor")] == ["p000003"]


def test_a_page_of_another_origin_may_send_the_public_search_key(mutable_service, mutable_index_dir) -> None:
    settings = Settings(index_dir=mutable_index_dir, server={"cors_origins": ["https://shop.example"]})
    with TestClient(create_app(settings, service=mutable_service)) as client:
        preflight = client.options("/search", headers={
            "Origin": "https://shop.example", "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        })
        assert preflight.status_code == 200
        assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
        elsewhere = client.options("/search", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"})
        assert elsewhere.status_code == 400


def test_api_docs_load_nothing_from_outside_the_server(client) -> None:
    for page in ("/docs", "/redoc"):
        html = client.get(page).text
        assert not re.findall(r"""(?:src|href)=["']https?://""", html), page
        for asset in re.findall(r"""(?:src|href)=["'](/[^"']+)""", html):
            assert client.get(asset).status_code == 200, asset
    bundle = client.get("/docs-assets/redoc.standalone.js").text
    assert "cdn.redoc.ly" not in bundle


def test_the_readme_example_files_run_as_written(client) -> None:
    readme = (ROOT / "README.md").read_text()
    for name in ("products.json", "events.json", "synonyms.txt"):
        assert f"@examples/{name}" in readme, name

    products = json.loads((EXAMPLES / "products.json").read_text())
    response = client.put("/catalog/products", json=products)
    assert response.status_code == 200 and response.json()["added"] == len(products["products"])
    assert client.get("/search", params={"q": "yellow raincoat", "limit": 3}).json()["hits"][0]["id"] == "ex-raincoat-1"

    events = json.loads((EXAMPLES / "events.json").read_text())
    assert {e["type"] for e in events["events"]} == {"search", "view", "click", "add_to_cart", "purchase"}
    response = client.post("/events", json=events)
    assert response.status_code == 202
    assert response.json()["accepted"] == len(events["events"]) and response.json()["rejected"] == []
    recent = client.get("/visitors/v1/recent").json()["products"]
    assert [p["id"] for p in recent] == ["p000042"]

    response = client.post("/synonyms/import", content=(EXAMPLES / "synonyms.txt").read_bytes())
    assert response.status_code == 200 and response.json()["imported"] == 2
