"""Personalization and stock in the ranking, on the real sample index.

The canonical case: a visitor who wears M and keeps choosing red searches something generic;
relevant products available in M come first and red ones rise, while a visitor without
history (or who opted out) gets exactly the unpersonalized order.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from indexer.catalog import Product
from indexer.embedding import Embedder
from search.models import SearchRequest
from search.service import SearchService
from search.settings import Settings

GENERIC_QUERIES = ["dress", "shirt", "jacket"]


def _visitor() -> str:
    return f"v-{uuid.uuid4().hex}"


def _red_m_history(service: SearchService, products: list[Product], visitor: str, session: str = "s1") -> None:
    """Three red items bought in M and a few red ones viewed (none of them dresses)."""
    red = [p for p in products if "Red" in p.colours and any(v.size == "M" for v in p.variants)]
    red = [p for p in red if "Dresses" not in p.categories]
    events = []
    for product in red[:3]:
        sku = next(v.sku for v in product.variants if v.size == "M")
        events.append({"type": "purchase", "visitor_id": visitor, "session_id": session, "product_id": product.id, "variant_sku": sku})
    for product in red[3:8]:
        events.append({"type": "view", "visitor_id": visitor, "session_id": session, "product_id": product.id})
    result = service.visitors.ingest(events)
    assert result.accepted == len(events) and not result.rejected


def _search(service: SearchService, q: str, **kw) -> list:
    return service.search(SearchRequest(q=q, limit=kw.pop("limit", 10), explain=True, **kw)).hits


def _fits_m(service: SearchService, hit) -> bool:
    product = service.get_product(hit.id)
    return "M" in product.available_sizes or not product.sizes


@pytest.mark.parametrize("query", GENERIC_QUERIES)
def test_m_red_visitor_sees_m_available_and_more_red_products_first(service, sample_products, query) -> None:
    visitor = _visitor()
    _red_m_history(service, sample_products, visitor)
    plain = _search(service, query)
    mine = _search(service, query, visitor_id=visitor, session_id="s1")
    assert all(_fits_m(service, hit) for hit in mine), "every top-10 hit is available in M"
    red = lambda hits: sum("red" in [c.lower() for c in service.get_product(h.id).colours] for h in hits)  # noqa: E731
    assert red(mine) >= red(plain)
    assert red(mine) > 0
    assert [h.id for h in mine] != [h.id for h in plain] or red(plain) == len(plain)


def test_visitor_without_history_and_opted_out_visitor_get_the_unpersonalized_order(service, sample_products) -> None:
    anonymous = [h.id for h in _search(service, "dress", limit=30)]
    stranger = [h.id for h in _search(service, "dress", limit=30, visitor_id=_visitor())]
    assert stranger == anonymous
    visitor = _visitor()
    _red_m_history(service, sample_products, visitor)
    opted_out = [h.id for h in _search(service, "dress", limit=30, visitor_id=visitor, personalize=False)]
    assert opted_out == anonymous


@pytest.mark.parametrize("query", [*GENERIC_QUERIES, "red linen", "blue dress zzzqx"])
def test_personalization_never_lifts_a_product_over_a_clearly_more_relevant_one(service, sample_products, query) -> None:
    visitor = _visitor()
    _red_m_history(service, sample_products, visitor)
    impact = service.settings.personalization.impact
    hits = _search(service, query, limit=100, visitor_id=visitor, session_id="s1")
    assert hits
    lift = lambda h: h.explain["personalize"].contribution  # noqa: E731

    def relevance(hit) -> float:
        # Everything the query earns on its own terms: every stage but personalization and
        # stock. Taken from the explanation as a whole, the property below holds exactly on
        # any CPU, whatever int8 rounding does to the semantic part of each score.
        return hit.score - lift(hit) - hit.explain["stock"].contribution

    for hit in hits:
        assert 0 <= lift(hit) <= impact + 1e-9
        if not hit.explain["personalize"].details["relevant"]:
            assert lift(hit) == 0, "only products matching the query on its own terms are lifted"
    for i, upper in enumerate(hits):
        for lower in hits[i + 1 :]:
            if upper.explain["stock"].contribution != lower.explain["stock"].contribution:
                continue  # stock (sold out, size) decides, not personalization
            # A product passes a more relevant one only by its own lift, at most `impact`.
            assert relevance(lower) - relevance(upper) <= lift(upper) + 1e-9, (upper.title, lower.title)


def test_relaxed_results_are_never_reordered_by_affinity(service, sample_products) -> None:
    visitor = _visitor()
    _red_m_history(service, sample_products, visitor)
    result = service.search(SearchRequest(q="dress zzzqx", limit=50, explain=True, visitor_id=visitor, session_id="s1"))
    assert result.relaxed
    assert all(h.explain["personalize"].contribution == 0 for h in result.hits)


def test_size_filter_keeps_only_products_with_that_size_in_stock_whatever_the_profile(service, sample_products) -> None:
    visitor = _visitor()
    _red_m_history(service, sample_products, visitor)
    hits = _search(service, "dress", limit=100, visitor_id=visitor, session_id="s1", filters={"size": ["L"]})
    assert hits
    assert all("L" in h.available_sizes for h in hits)
    expected = {p.id for p in sample_products if "L" in p.available_sizes and "dress" in p.title.lower().replace("-", " ").split()}
    assert expected <= {h.id for h in hits}


def test_sold_out_products_sink_below_everything_in_stock(service) -> None:
    for query in ("shirt", ""):  # a search and a category page (every page of it)
        flags: list[bool] = []
        while True:
            page = service.search(SearchRequest(q=query, limit=100, offset=len(flags))).hits
            flags += [h.in_stock for h in page]
            if len(page) < 100:
                break
        assert False in flags and True in flags, "the sample shop has sold-out products"
        assert flags == sorted(flags, reverse=True), "in stock first, sold out last"


def test_sold_out_products_can_be_hidden_by_setting(index_dir: Path, embedder: Embedder) -> None:
    settings = Settings(index_dir=index_dir, stock={"sold_out": "hide"})
    service = SearchService.open(index_dir, settings, embedder=embedder)
    try:
        result = service.search(SearchRequest(q="shirt", limit=100))
        assert result.hits and all(h.in_stock for h in result.hits)
    finally:
        service.close()


def test_impact_zero_turns_personalization_off(index_dir: Path, embedder: Embedder, sample_products) -> None:
    settings = Settings(index_dir=index_dir, personalization={"impact": 0.0}, stock={"size_boost": 0.0})
    service = SearchService.open(index_dir, settings, embedder=embedder)
    try:
        visitor = _visitor()
        _red_m_history(service, sample_products, visitor)
        mine = [h.id for h in _search(service, "dress", limit=30, visitor_id=visitor)]
        assert mine == [h.id for h in _search(service, "dress", limit=30)]
    finally:
        service.close()


def test_explain_shows_both_stages_and_the_visitor_segment(service, sample_products) -> None:
    visitor = _visitor()
    _red_m_history(service, sample_products, visitor)
    result = service.search(SearchRequest(q="dress", explain=True, visitor_id=visitor, session_id="s1"))
    hit = result.hits[0]
    assert {"lexical", "semantic", "personalize", "stock"} <= set(hit.explain)
    assert sum(s.contribution for s in hit.explain.values()) == pytest.approx(hit.score)
    assert result.debug["personalized"] is True
    assert result.debug["preferred_sizes"] == ["m"]
    assert result.debug["segment"] == {"traffic_source": "direct", "visitor": "new", "device": "desktop"}
    assert "red" in result.debug["affinities"]["colour"]


def test_similar_products_are_in_stock_in_the_visitors_size(service, sample_products) -> None:
    visitor = _visitor()
    _red_m_history(service, sample_products, visitor)
    dress = next(p for p in sample_products if "Dresses" in p.categories)
    similar = service.similar(dress.id, visitor_id=visitor, limit=10)
    assert len(similar) == 10
    assert dress.id not in {h.id for h in similar}
    for hit in similar:
        product = service.get_product(hit.id)
        assert product.in_stock
        assert "M" in product.available_sizes or not product.sizes
    # Closest first.
    assert [h.score for h in similar] == sorted((h.score for h in similar), reverse=True)
