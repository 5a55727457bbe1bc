"""The HTTP API over a real index, through a real ASGI client.

Properties checked:
  1. GET /search and POST /search take the same fields and give the same answer;
  2. the response has the documented shape, with explain on demand;
  3. invalid parameters give 422 naming the field; unknown products 404;
  4. hostile query strings give 200, never 500;
  5. suggestions, product pages and health answer.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from search.api.app import create_app
from search.service import SearchService
from search.settings import Settings
from tests.test_search_engine import HOSTILE


@pytest.fixture(scope="module")
def client(service: SearchService, index_dir) -> Iterator[TestClient]:
    app = create_app(Settings(index_dir=index_dir), service=service)
    with TestClient(app) as client:
        yield client


def _ids(response) -> list[str]:
    return [h["id"] for h in response.json()["hits"]]


def test_search_response_has_the_documented_shape(client) -> None:
    response = client.get("/search", params={"q": "red dress", "limit": 5})
    assert response.status_code == 200
    body = response.json()
    assert set(body) >= {"search_id", "query", "corrected_query", "total", "hits", "facets", "took_ms"}
    assert body["query"] == "red dress"
    assert set(body["facets"]) == {"brand", "category", "colour", "size", "price"}
    hit = body["hits"][0]
    assert set(hit) >= {"id", "title", "brand", "price", "url", "image", "in_stock", "available_sizes", "score"}
    assert "explain" not in hit


def test_explain_true_returns_each_stage_contribution(client) -> None:
    body = client.get("/search", params={"q": "wool sweater", "explain": "true", "limit": 3}).json()
    for hit in body["hits"]:
        assert sum(s["contribution"] for s in hit["explain"].values()) == pytest.approx(hit["score"], abs=1e-9)


def test_post_search_equals_get_search(client) -> None:
    params = {"q": "leather boots", "colour": ["Black", "Brown"], "price_max": 200, "sort": "price_asc", "limit": 10}
    get = client.get("/search", params=params)
    post = client.post("/search", json=params)
    nested = client.post("/search", json={"q": "leather boots", "filters": {"colour": ["Black", "Brown"], "price_max": 200}, "sort": "price_asc", "limit": 10})
    assert get.status_code == post.status_code == nested.status_code == 200
    assert _ids(get) == _ids(post) == _ids(nested)
    assert get.json()["total"] == post.json()["total"]


def test_repeated_filter_parameters_are_alternatives(client) -> None:
    one = client.get("/search", params={"q": "", "brand": "Corvo", "limit": 0}).json()["total"]
    other = client.get("/search", params={"q": "", "brand": "Linnea", "limit": 0}).json()["total"]
    both = client.get("/search", params=[("q", ""), ("brand", "Corvo"), ("brand", "Linnea"), ("limit", "0")]).json()["total"]
    assert both == one + other


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 101}, "limit"),
        ({"limit": -1}, "limit"),
        ({"offset": -5}, "offset"),
        ({"sort": "bogus"}, "sort"),
        ({"mode": "magic"}, "mode"),
        ({"price_min": "cheap"}, "price_min"),
        ({"price_min": 50, "price_max": 10}, "price_min"),
        ({"in_stock": "perhaps"}, "in_stock"),
        ({"q": "x" * 1001}, "q"),
    ],
)
def test_invalid_parameter_gives_422_naming_the_field(client, params, field) -> None:
    response = client.get("/search", params=params)
    assert response.status_code == 422
    problem = response.json()
    assert response.headers["content-type"] == "application/problem+json"
    assert any(field in [str(part) for part in error["loc"]] for error in problem["errors"]), problem
    assert field in problem["detail"]


def test_unknown_post_field_is_rejected(client) -> None:
    response = client.post("/search", json={"q": "dress", "colur": "Red"})
    assert response.status_code == 422
    assert "colur" in response.text


@pytest.mark.parametrize("query", HOSTILE)
def test_hostile_query_gives_200(client, query) -> None:
    response = client.get("/search", params={"q": query[:1000]})
    assert response.status_code == 200


def test_unknown_product_gives_404(client) -> None:
    response = client.get("/products/does-not-exist")
    assert response.status_code == 404
    assert "does-not-exist" in response.json()["detail"]


def test_product_page_has_catalog_fields_and_stock_state(client, sample_products) -> None:
    product = sample_products[0]
    body = client.get(f"/products/{product.id}").json()
    assert body["title"] == product.title
    assert body["available_sizes"] == product.available_sizes
    assert body["in_stock"] == product.in_stock


def test_health_reports_index_version_and_counts(client, sample_products) -> None:
    body = client.get("/health").json()
    assert body["status"] == "ok"
    assert body["products"] == len(sample_products)
    assert body["variants"] == sum(len(p.variants) for p in sample_products)
    assert body["index_version"]


def test_suggest_completes_brands_words_and_titles(client) -> None:
    body = client.get("/suggest", params={"q": "nord"}).json()
    kinds = {s["kind"] for s in body["suggestions"]}
    assert "brand" in kinds
    assert all("nord" in s["text"].lower() for s in body["suggestions"] if s["kind"] == "brand")
    assert client.get("/suggest", params={"q": ""}).json()["suggestions"] == []


def test_openapi_documents_the_search_endpoint(client) -> None:
    spec = client.get("/openapi.json").json()
    assert "/search" in spec["paths"] and "/suggest" in spec["paths"]
    assert client.get("/docs").status_code == 200
    # The response's fields are documented (not a bare object), explain and debug optional.
    for method in ("get", "post"):
        operation = spec["paths"]["/search"][method]
        ref = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
        result = spec["components"]["schemas"][ref.rsplit("/", 1)[-1]]
        assert {"search_id", "total", "hits", "facets"} <= set(result["required"])
        assert "debug" in result["properties"] and "debug" not in result["required"]
        headers = [p["name"] for p in operation["parameters"] if p["in"] == "header"]
        assert headers == ["x-personalize"]
    hit = spec["components"]["schemas"]["Hit"]
    assert "explain" in hit["properties"] and "explain" not in hit["required"]


def test_the_user_agent_reaches_the_search_log(client, service: SearchService) -> None:
    # Read from the request by the search routes (not a declared header parameter).
    mobile = {"User-Agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148"}
    ids = [
        client.get("/search", params={"q": "hat"}, headers=mobile).json()["search_id"],
        client.post("/search", json={"q": "hat"}, headers=mobile).json()["search_id"],
    ]
    service.search_log.flush()
    devices = {row.search_id: row.device for row in service.search_log.between()}
    assert [devices[i] for i in ids] == ["mobile", "mobile"]


def test_cors_allows_storefront_origins(client) -> None:
    response = client.get("/search", params={"q": "hat"}, headers={"Origin": "https://shop.example"})
    assert response.headers.get("access-control-allow-origin") in ("*", "https://shop.example")
