"""Hostile and oversized input, through a real ASGI client: one error format, no 500.

Properties checked:
  1. every error is application/problem+json with a string `detail`; validation errors list
     each field in `errors`; the OpenAPI schema documents problems on every operation;
  2. each input that used to answer 500 (issue 12) now answers 4xx: lone surrogates, NaN,
     ±Infinity and overflowing numbers, since/until out of range, ids above 2^63-1,
     `"stock": false`, stock 2^63; an Infinity order value cannot break the reports;
  3. bodies over the limit get 413 before being parsed, chunked or not;
  4. batches, query length, page size and offset have limits;
  5. CSV exports defuse cells a spreadsheet would run as formulas;
  6. the access log names routes, never visitor ids or keys.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from indexer.embedding import Embedder
from search.analytics.reports import safe_cell
from search.api.app import create_app
from search.models import SearchRequest
from search.service import SearchService
from search.settings import Settings

KEY = "limits-admin-key"
ADMIN = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, index_dir: Path, embedder: Embedder) -> Iterator[tuple[SearchService, TestClient]]:
    import shutil

    target = tmp_path_factory.mktemp("limits") / "index"
    shutil.copytree(index_dir, target, ignore=shutil.ignore_patterns("state"))
    settings = Settings(index_dir=target, server={"admin_key": KEY}, limits={"max_body_bytes": 64 * 1024})
    engine = SearchService.open(target, settings, embedder=embedder)
    with TestClient(create_app(settings, service=engine), headers=ADMIN) as client:
        yield engine, client
    engine.close()


@pytest.fixture(scope="module")
def client(live) -> TestClient:
    return live[1]


def _problem(response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status and isinstance(body["detail"], str) and body["detail"]
    assert "Traceback" not in response.text
    return body


def _raw_json(client: TestClient, method: str, url: str, text: str):
    return client.request(method, url, content=text.encode(), headers={"content-type": "application/json"})


# ---- former 500s (one regression test per case in issue 12) ----------------------------------


@pytest.mark.parametrize(
    "body",
    [
        '{"q": "\\ud800"}',
        '{"q": "dress \\udfff"}',
        '{"q": "dress", "price_max": NaN}',
        '{"q": "dress", "price_min": -Infinity}',
        '{"q": "dress", "price_max": Infinity}',
        '{"q": "dress", "price_max": 1e400}',
        '{"q": "dress", "limit": NaN}',
        '{"q": "dress", "filters": {"price_max": NaN}}',
    ],
)
def test_post_search_with_unholdable_json_gives_422(client, body) -> None:
    problem = _problem(_raw_json(client, "POST", "/search", body), 422)
    assert problem["errors"][0]["loc"] == ["body"]


def test_a_valid_surrogate_pair_is_text_not_an_error(client) -> None:
    assert _raw_json(client, "POST", "/search", '{"q": "dress \\ud83d\\ude00"}').status_code == 200


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e400"])
def test_get_search_with_non_finite_price_gives_422(client, value) -> None:
    problem = _problem(client.get("/search", params={"q": "dress", "price_max": value}), 422)
    assert problem["errors"][0]["loc"] == ["query", "price_max"]


@pytest.mark.parametrize(
    "event",
    [
        '{"type": "view", "visitor_id": "v", "product_id": "P1", "ts": NaN}',
        '{"type": "purchase", "visitor_id": "v", "product_id": "P1", "value": Infinity}',
    ],
)
def test_events_with_non_finite_numbers_give_422_and_store_nothing(live, event) -> None:
    engine, client = live
    before = engine.visitors.events.count()
    _problem(_raw_json(client, "POST", "/events", f'{{"events": [{event}]}}'), 422)
    assert engine.visitors.events.count() == before


def test_huge_order_values_are_refused_and_reports_keep_working(live, sample_products) -> None:
    engine, client = live
    product = sample_products[0].id
    response = client.post("/events", json={"events": [{"type": "purchase", "visitor_id": "v-inf", "product_id": product, "value": 1e300}]})
    problem = _problem(response, 422)
    assert "value" in problem["detail"]
    assert client.get("/reports/conversion").status_code == 200


@pytest.mark.parametrize(
    ("url", "params"),
    [
        ("/reports/top", {"since": "nan"}),
        ("/reports/conversion", {"since": "99999999999d"}),
        ("/reports/top", {"until": "1e300"}),
        ("/reports/top", {"since": "-inf"}),
        ("/admin", {"since": "nan"}),
        ("/admin", {"since": "99999999999d"}),
    ],
)
def test_reports_with_impossible_periods_give_422(client, url, params) -> None:
    problem = _problem(client.get(url, params=params), 422)
    assert "1970" in problem["detail"] or "not a time" in problem["detail"]


def test_synonym_ids_above_int64_give_422_and_the_largest_gives_404(client) -> None:
    _problem(client.get(f"/synonyms/{2**63}"), 422)
    _problem(client.post(f"/synonyms/{2**64}/approve"), 422)
    _problem(client.get(f"/synonyms/{2**63 - 1}"), 404)


@pytest.mark.parametrize("stock", [False, True, 2**63, -1, "3", 1.5])
def test_stock_must_be_a_count_in_a_sane_range(client, stock) -> None:
    problem = _problem(client.patch("/catalog/stock", json=[{"sku": "any", "stock": stock}]), 422)
    assert problem["errors"][0]["loc"] == ["body", 0, "stock"]


def test_product_with_infinite_price_is_refused(client) -> None:
    response = _raw_json(client, "PUT", "/catalog/products", '[{"id": "inf-1", "title": "Inf", "price": Infinity}]')
    _problem(response, 422)
    too_big = client.put("/catalog/products", json=[{"id": "big-1", "title": "Big", "variants": [{"sku": "b", "stock": 2**63}]}])
    _problem(too_big, 422)


def test_non_ascii_admin_key_gives_401(client) -> None:
    response = client.get("/reports/top", headers={"Authorization": b"Bearer \xc3\xa9\xff"})
    _problem(response, 401)


# ---- sizes ---------------------------------------------------------------------------------


def test_body_over_the_limit_is_refused_with_413_before_parsing(client) -> None:
    # Not even JSON: a 413 (not a 422) shows the body was never parsed.
    problem = _problem(client.post("/events", content=b"x" * (65 * 1024), headers={"content-type": "application/json"}), 413)
    assert "larger than 65536 bytes" in problem["detail"]


def test_chunked_body_over_the_limit_is_refused_with_413(client) -> None:
    def chunks():
        for _ in range(100):
            yield b" " * 1024

    response = client.post("/events", content=chunks(), headers={"content-type": "application/json"})
    _problem(response, 413)


def test_event_batch_over_the_limit_gives_413(client) -> None:
    events = [{"type": "search", "visitor_id": "v", "query": "q"}] * 1001
    _problem(client.post("/events", json={"events": events}), 413)


def test_stock_and_price_batches_over_the_limit_give_413(live) -> None:
    engine, _ = live
    settings = Settings(index_dir=engine.settings.index_dir, server={"admin_key": KEY})
    with TestClient(create_app(settings, service=engine), headers=ADMIN) as big:
        items = [{"sku": f"s{i}", "stock": 1} for i in range(10_001)]
        _problem(big.patch("/catalog/stock", json=items), 413)
        prices = [{"sku": f"s{i}", "price": 1.0} for i in range(10_001)]
        _problem(big.patch("/catalog/prices", json=prices), 413)
        products = [{"id": f"p{i}", "title": "t"} for i in range(10_001)]
        _problem(big.put("/catalog/products", json=products), 413)


@pytest.mark.parametrize(
    ("url", "params", "field"),
    [
        ("/search", {"q": "x" * 1001}, "q"),
        ("/suggest", {"q": "x" * 201}, "q"),
        ("/search", {"limit": 101}, "limit"),
        ("/search", {"offset": 10_001}, "offset"),
        ("/reports/top", {"limit": 10_001}, "limit"),
        ("/visitors/v/recent", {"limit": 101}, "limit"),
        ("/products/x/similar", {"limit": 0}, "limit"),
    ],
)
def test_query_length_page_size_and_offset_are_bounded(client, url, params, field) -> None:
    problem = _problem(client.get(url, params=params), 422)
    assert problem["errors"][0]["loc"][-1] == field and field in problem["detail"]


# ---- the format and its documentation ------------------------------------------------------


def test_not_found_and_unknown_routes_are_problems(client) -> None:
    assert "nope" in _problem(client.get("/products/nope"), 404)["detail"]
    _problem(client.get("/no/such/route"), 404)
    _problem(client.put("/search"), 405)


def test_malformed_json_names_where(client) -> None:
    problem = _problem(_raw_json(client, "POST", "/search", '{"q": '), 422)
    assert problem["errors"][0]["type"] == "json_invalid"


def test_openapi_documents_problems_on_every_operation(client) -> None:
    schema = client.get("/openapi.json").json()
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            for status in ("401", "413", "422", "429", "500", "503"):
                content = operation["responses"][status]["content"]
                assert content == {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}, (path, method)


# ---- CSV and logs --------------------------------------------------------------------------


@pytest.mark.parametrize("cell", ["=cmd|' /c calc'!A1", "+1+1", "-2+3", "@SUM(A1)", "\tx", "\rx"])
def test_csv_cells_that_start_a_formula_are_defused(cell) -> None:
    assert safe_cell(cell) == "'" + cell
    assert safe_cell(-3.5) == -3.5 and safe_cell("red dress") == "red dress"


def test_report_csv_export_defuses_a_shoppers_formula(live) -> None:
    engine, client = live
    engine.search(SearchRequest(q="=cmd|' /c calc'!A1 zzqv", visitor_id="csv-v"))
    engine.search_log.flush()
    text = client.get("/reports/zero-results", params={"format": "csv"}).text
    assert "'=cmd|" in text and "\n=cmd" not in text and ",=cmd" not in text


def test_access_log_holds_routes_not_visitor_ids_or_keys(client, capsys) -> None:
    visitor = "visitor-secret-4711"
    client.get(f"/visitors/{visitor}/recent")
    client.delete(f"/visitors/{visitor}")
    client.get("/search", params={"q": "dress", "visitor_id": visitor})
    err = capsys.readouterr().err
    assert "/visitors/{visitor_id}" in err
    assert visitor not in err and KEY not in err


def test_problem_bodies_are_valid_json_even_for_hostile_input(client) -> None:
    response = client.get("/products/" + "%ED%A0%80")
    assert response.status_code in (404, 422)
    json.loads(response.content)
