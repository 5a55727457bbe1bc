"""Replicas in step through PostgreSQL: two services, each on its own copy of the index.

1. A stock, price, product or delete change accepted by one replica is applied by the other
   when it follows the feed, through the same updater path, once (the position is remembered).
2. Two replicas changing the same product at once end with the same value: the feed's last word.
3. A new index version replays only the feed entries after its build point.
4. An approved synonym and a visitor's events on one replica shape the other's answers.
5. A change accepted while the database is down is applied locally, kept, and reaches the
   other replica once the database is back.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from indexer import format as fmt
from indexer.catalog import Product
from indexer.embedding import Embedder
from search.errors import Unavailable
from search.models import SearchRequest
from search.replication import read_position, write_position
from search.service import SearchService
from search.settings import Settings
from synonyms.synonym_store import Kind
from tests.services import TcpProxy, with_host_port


@pytest.fixture
def replicas(index_dir: Path, tmp_path: Path, pg_url: str, embedder: Embedder) -> Iterator[Callable[..., SearchService]]:
    """Opens replicas: each its own copy of the index directory, all on one database schema."""
    opened: list[SearchService] = []

    def open_replica(name: str, url: str = pg_url) -> SearchService:
        target = tmp_path / name
        shutil.copytree(index_dir, target, ignore=shutil.ignore_patterns("state"))
        settings = Settings(index_dir=target, database_url=url)
        service = SearchService.open(target, settings, embedder=embedder)
        opened.append(service)
        return service

    yield open_replica
    for service in opened:
        service.close()


def _variant(product: Product) -> str:
    return product.variants[0].sku


def _retry(call: Callable[[], object], seconds: float = 15.0) -> None:
    """What the watcher does: try again a few times a second until the store answers."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            call()
            return
        except Unavailable:
            assert time.monotonic() < deadline, "the database did not come back"
            time.sleep(0.25)


def test_changes_accepted_by_one_replica_are_applied_by_the_other(replicas, sample_products) -> None:
    a, b = replicas("a"), replicas("b")
    stocked, priced, doomed = sample_products[0], sample_products[1], sample_products[2]
    a.catalog.set_stock([(_variant(stocked), 0)])
    a.catalog.set_prices([(priced.id, 123.45)], by="id")
    a.catalog.delete([doomed.id])
    new = Product.model_validate({"id": "replica-kimono", "title": "Jade silk kimono robe", "price": 80.0,
                                  "variants": [{"sku": "replica-kimono-M", "size": "M", "stock": 2}]})
    a.catalog.upsert([new])
    assert b.catch_up() == 4
    assert b.get_product(stocked.id).variants[0].stock == 0
    assert b.get_product(priced.id).price == 123.45
    assert b.get_product(doomed.id) is None
    assert "replica-kimono" in [h.id for h in b.search(SearchRequest(q="jade kimono"), record=False).hits]
    # The replica that accepted them applies them again in feed order (same values), once.
    assert a.catch_up() == 4 and a.get_product(stocked.id).variants[0].stock == 0
    assert a.catch_up() == 0 and b.catch_up() == 0  # the position is remembered
    assert read_position(fmt.current_version_dir(b.engine.index_dir)) == 4


def test_two_replicas_changing_one_price_end_on_the_feeds_last_word(replicas, sample_products) -> None:
    a, b = replicas("a"), replicas("b")
    product = sample_products[3]
    a.catalog.set_prices([(product.id, 10.0)], by="id")
    b.catalog.set_prices([(product.id, 20.0)], by="id")  # later in the feed
    a.catch_up()
    b.catch_up()
    assert a.get_product(product.id).price == b.get_product(product.id).price == 20.0


def test_a_new_index_version_replays_the_feed_after_its_build_point(replicas, sample_products) -> None:
    a, b = replicas("a"), replicas("b")
    first, second = sample_products[4], sample_products[5]
    a.catalog.set_prices([(first.id, 11.0)], by="id")
    a.catalog.set_prices([(second.id, 22.0)], by="id")
    # b's copy stands for a version built after the first change: its build point is seq 1.
    write_position(fmt.current_version_dir(b.engine.index_dir), 1)
    assert b.catch_up() == 1
    assert b.get_product(first.id).price == first.price  # before the build point: not replayed
    assert b.get_product(second.id).price == 22.0


def test_synonyms_and_events_on_one_replica_shape_the_others_answers(replicas, sample_products) -> None:
    a, b = replicas("a"), replicas("b")
    a.synonyms.create(Kind.one_way, ["zorbling"], ["dress"], "maria")
    assert b.reload_synonyms()
    assert b.search(SearchRequest(q="zorbling"), record=False).total > 0
    product = sample_products[6]
    events = [{"type": "click", "visitor_id": "shared-visitor", "product_id": product.id} for _ in range(3)]
    assert a.visitors.ingest(events).accepted == 3
    affinities = b.visitors.affinities("shared-visitor")
    assert affinities.returning or affinities.of("brand")
    assert [e.product_id for e in b.visitors.events.of_visitor("shared-visitor")] == [product.id] * 3


def test_a_change_accepted_while_the_database_is_down_reaches_the_other_replica_later(
    replicas, sample_products, pg_url: str
) -> None:
    target = urlsplit(pg_url)
    proxy = TcpProxy(target.hostname or "127.0.0.1", target.port or 5432)
    try:
        a = replicas("a", with_host_port(pg_url, "127.0.0.1", proxy.port))
        b = replicas("b")
        product = sample_products[7]
        proxy.cut()
        a.catalog.set_prices([(product.id, 33.0)], by="id")  # accepted: applied here, kept for the feed
        a.refresh()
        assert a.get_product(product.id).price == 33.0 and a.catalog.waiting == 1
        assert b.catch_up() == 0
        proxy.restore()
        _retry(a.catch_up)  # the watcher's job: sends what waited, once the database answers
        assert a.catalog.waiting == 0
        assert b.catch_up() == 1
        assert b.get_product(product.id).price == 33.0
    finally:
        proxy.close()


def test_the_command_line_shares_its_catalog_changes_too(replicas, sample_products, pg_url: str, monkeypatch) -> None:
    from search.cli import main

    a, b = replicas("a"), replicas("b")
    product = sample_products[8]
    monkeypatch.setenv("VITRINE_DATABASE_URL", pg_url)
    sku = _variant(product)
    assert main(["index", "stock", f"{sku}=0", "--index-dir", str(a.engine.index_dir)]) == 0
    assert b.catch_up() == 1
    assert b.get_product(product.id).variants[0].stock == 0


def test_erasing_a_visitor_on_one_replica_erases_them_for_all(replicas, sample_products) -> None:
    a, b = replicas("a"), replicas("b")
    product = sample_products[9]
    a.visitors.ingest([{"type": "view", "visitor_id": "gone", "product_id": product.id, "session_id": "s-gone"}])
    a.search(SearchRequest(q="dress", visitor_id="gone", session_id="s-gone"))
    a.search_log.flush()
    erased = b.erase_visitor("gone")
    assert (erased["profiles"], erased["events"], erased["searches"]) == (1, 1, 1)
    assert a.visitors.profiles.get("gone") is None and a.visitors.events.of_visitor("gone") == []
