"""Live catalog changes: stock, price, upserts and deletes reach search without a restart.

Properties checked:
  1. an admin stock update is visible in /search at once in the same process, and within a
     second in another engine on the same index (another service process);
  2. an upsert with unchanged text keeps its vector (no re-embedding); changed text re-embeds
     only that product and is searchable; a delete removes the product everywhere;
  3. an invalid batch is rejected whole: nothing already stored changes;
  4. admin endpoints require the admin key when one is set;
  5. a new index version published while requests are in flight loses none of them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from indexer.build import build_index
from indexer.sample import generate_catalog
from search.api.app import create_app
from search.engine import SearchEngine
from search.models import Filters, Mode, SearchRequest
from search.service import SearchService
from search.settings import ServerSettings, Settings


@pytest.fixture
def admin_client(mutable_service: SearchService, mutable_index_dir) -> Iterator[TestClient]:
    settings = Settings(index_dir=mutable_index_dir, server=ServerSettings(admin_key="s3cret"))
    with TestClient(create_app(settings, service=mutable_service)) as client:
        client.headers["X-Admin-Key"] = "s3cret"
        yield client


def _product_with_size(engine: SearchEngine, size: str):
    for product in engine.snapshot.products:
        if product is not None and size in product.available_sizes and len(product.available_sizes) > 1:
            return product
    raise AssertionError(f"no product available in {size}")


def _search_ids(client: TestClient, **params) -> list[str]:
    return [h["id"] for h in client.get("/search", params={"limit": 100, **params}).json()["hits"]]


def test_stock_update_is_visible_in_search_immediately(admin_client, mutable_engine) -> None:
    product = _product_with_size(mutable_engine, "M")
    sku = next(v.sku for v in product.variants if v.size == "M")
    assert product.id in _search_ids(admin_client, q=product.title, size="M")

    response = admin_client.patch("/catalog/stock", json=[{"sku": sku, "stock": 0}])
    assert response.json() == {"updated": 1, "unknown_skus": []}

    page = admin_client.get(f"/products/{product.id}").json()
    assert "M" not in page["available_sizes"]
    assert product.id not in _search_ids(admin_client, q=product.title, size="M")
    hit = next(h for h in admin_client.get("/search", params={"q": product.title}).json()["hits"] if h["id"] == product.id)
    assert "M" not in hit["available_sizes"]


def test_stock_update_reaches_another_process_within_a_second(admin_client, mutable_engine, mutable_index_dir, embedder) -> None:
    other = SearchService.open(mutable_index_dir, Settings(index_dir=mutable_index_dir), embedder=embedder)
    other.start_watching(interval=0.1)
    try:
        product = _product_with_size(mutable_engine, "L")
        sku = next(v.sku for v in product.variants if v.size == "L")
        admin_client.patch("/catalog/stock", json=[{"sku": sku, "stock": 0}])
        written = time.monotonic()
        while True:
            in_l = other.search(SearchRequest(q=product.title, filters=Filters(size=["L"]), limit=100))
            if product.id not in {h.id for h in in_l.hits}:
                break
            assert time.monotonic() - written < 1.0, "stock change not visible in the other engine within 1 s"
            time.sleep(0.02)
        assert "L" not in other.get_product(product.id).available_sizes
    finally:
        other.close()


def test_price_update_changes_price_filter_and_sort(admin_client, mutable_engine) -> None:
    product = next(p for p in mutable_engine.snapshot.products if p is not None and p.price and p.price < 500)
    response = admin_client.patch("/catalog/prices", json=[{"id": product.id, "price": 12345.0}])
    assert response.json()["updated"] == 1
    assert product.id in _search_ids(admin_client, q="", price_min=12000)
    top = admin_client.get("/search", params={"q": "", "sort": "price_desc", "limit": 1}).json()["hits"][0]
    assert top["id"] == product.id and top["price"] == 12345.0


def test_upsert_with_unchanged_text_is_not_re_embedded(admin_client, mutable_engine) -> None:
    product = next(p for p in mutable_engine.snapshot.products if p is not None)
    changed_stock = product.model_copy(deep=True)
    for variant in changed_stock.variants:
        variant.stock = 7
    response = admin_client.put("/catalog/products", json=[changed_stock.model_dump(mode="json")])
    assert response.json() == {"added": 0, "updated": 1, "embedded": 0}


def test_upsert_adds_a_searchable_product_and_delete_removes_it(admin_client) -> None:
    new = {
        "id": "zz-kimono",
        "title": "Zephyr Silk Kimono Robe - Jade",
        "brand": "Zephyr",
        "categories": ["Women", "Nightwear"],
        "price": 89.0,
        "variants": [{"sku": "zz-kimono-M", "size": "M", "colour": "Jade", "stock": 3}],
    }
    response = admin_client.put("/catalog/products", json={"products": [new]})
    assert response.json() == {"added": 1, "updated": 0, "embedded": 1}
    assert _search_ids(admin_client, q="silk kimono")[0] == "zz-kimono"
    assert "zz-kimono" in _search_ids(admin_client, q="", brand="Zephyr", size="M")

    renamed = dict(new, title="Zephyr Satin Kimono Robe - Jade")
    assert admin_client.put("/catalog/products", json=[renamed]).json()["embedded"] == 1
    assert _search_ids(admin_client, q="satin kimono")[0] == "zz-kimono"
    assert "zz-kimono" not in _search_ids(admin_client, q="silk", mode="bm25")

    assert admin_client.delete("/catalog/products/zz-kimono").status_code == 204
    assert "zz-kimono" not in _search_ids(admin_client, q="kimono")
    assert admin_client.get("/products/zz-kimono").status_code == 404
    assert admin_client.delete("/catalog/products/zz-kimono").status_code == 404


def test_invalid_stock_batch_writes_nothing(admin_client, mutable_engine) -> None:
    product = _product_with_size(mutable_engine, "S")
    sku = next(v.sku for v in product.variants if v.size == "S")
    before = mutable_engine.snapshot.seq
    response = admin_client.patch("/catalog/stock", json=[{"sku": sku, "stock": 0}, {"sku": "x", "stock": -3}])
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", 1, "stock"]
    assert "S" in admin_client.get(f"/products/{product.id}").json()["available_sizes"]
    assert mutable_engine.snapshot.store.last_seq() == before


def test_invalid_product_in_batch_names_the_item_and_field(admin_client) -> None:
    batch = [{"id": "ok-1", "title": "Fine Product"}, {"id": "bad-1", "title": "Bad", "price": "cheap"}]
    response = admin_client.put("/catalog/products", json=batch)
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"][:3] == ["body", 1, "price"]
    assert admin_client.get("/products/ok-1").status_code == 404


def test_unknown_skus_are_reported(admin_client) -> None:
    response = admin_client.patch("/catalog/stock", json=[{"sku": "no-such-sku", "stock": 1}])
    assert response.json() == {"updated": 0, "unknown_skus": ["no-such-sku"]}


def test_admin_endpoints_require_the_admin_key(admin_client) -> None:
    response = admin_client.patch("/catalog/stock", json=[], headers={"X-Admin-Key": "wrong"})
    assert response.status_code == 401
    assert "Authorization: Bearer" in response.json()["detail"]
    # Shopper endpoints stay open.
    assert admin_client.get("/search", params={"q": "hat"}, headers={"X-Admin-Key": ""}).status_code == 200


def test_index_swap_under_concurrent_requests_loses_none(mutable_service, mutable_engine, mutable_index_dir, embedder) -> None:
    settings = Settings(index_dir=mutable_index_dir)
    old_version = mutable_engine.snapshot.version_dir.name
    statuses: list[int] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    with TestClient(create_app(settings, service=mutable_service)) as client:
        def hammer(query: str) -> None:
            while not stop.is_set():
                try:
                    statuses.append(client.get("/search", params={"q": query, "limit": 5}).status_code)
                except BaseException as exc:  # noqa: BLE001 - any failure is a lost request
                    errors.append(exc)

        threads = [threading.Thread(target=hammer, args=(q,)) for q in ("dress", "boots", "linen", "red")]
        for thread in threads:
            thread.start()
        # A new catalog: 50 products from another seed, published while requests run.
        build_index(generate_catalog(50, seed=99), mutable_index_dir, embedder=embedder, progress=False)
        deadline = time.monotonic() + 10
        while mutable_engine.snapshot.version_dir.name == old_version and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        stop.set()
        for thread in threads:
            thread.join()

    assert not errors
    assert statuses and set(statuses) == {200}
    assert mutable_engine.snapshot.version_dir.name != old_version
    assert mutable_engine.search(SearchRequest(q="", limit=0, mode=Mode.bm25)).total == 50
