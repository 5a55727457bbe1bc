"""Every matching product, every count exact, on a catalog larger than any candidate pool.

The catalog has 20,000 products: 1,500 generated designs, each sold as several products that
differ in id, price, stock per size and creation date (so 1,500 passages are embedded, once).
Expected figures are computed from the catalog itself, independently of the engine: the
words a product contains come from the index's analyzer over its text fields.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from indexer.build import build_index
from indexer.catalog import Product
from indexer.embedding import Embedder
from indexer.lexical import effective_price, query_analyzer
from indexer.sample import generate_catalog
from indexer.text import lexical_fields
from search.engine import SearchEngine
from search.merchandising.plan import MerchPlan
from search.merchandising.rules import Pin, Rule
from search.models import Filters, Mode, SearchRequest, Sort
from search.service import SearchService
from search.settings import Settings
from search.stages.exact import MAX_WINDOW

DESIGNS = 1_500
PRODUCTS = 20_000
QUERIES = ("dress", "black", "shirt", "leather boots", "cotton")


def _catalog() -> list[Product]:
    designs = generate_catalog(DESIGNS, seed=23)
    rng = random.Random(29)
    products = []
    for i in range(PRODUCTS):
        product = designs[i % DESIGNS].model_copy(deep=True)
        product.id = f"p{i:05d}"
        if product.price is not None:
            product.price = round(product.price * rng.uniform(0.6, 1.4), 2)
        for variant in product.variants:
            variant.sku = f"{variant.sku}-{i}"
            variant.stock = rng.choice((0, 0, 1, 4, 9))
            if variant.price is not None:
                variant.price = round(variant.price * rng.uniform(0.6, 1.4), 2)
        if product.created_at is not None:
            product.created_at -= timedelta(days=rng.randint(0, 900), minutes=rng.randint(0, 1440))
        products.append(product)
    return products


@pytest.fixture(scope="module")
def catalog() -> list[Product]:
    return _catalog()


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory, catalog: list[Product], embedder: Embedder) -> Iterator[SearchEngine]:
    path: Path = tmp_path_factory.mktemp("exact-index")
    build_index(catalog, path, embedder=embedder, progress=False)
    engine = SearchEngine(path, Settings(index_dir=path), embedder=embedder)
    yield engine
    engine.close()


def _stems(text: str) -> set[str]:
    return {token for token in query_analyzer().analyze(text)}


@pytest.fixture(scope="module")
def stems(catalog: list[Product]) -> dict[str, set[str]]:
    return {p.id: set().union(*(_stems(text) for text in lexical_fields(p).values())) for p in catalog}


def _passes(product: Product, filters: Filters) -> bool:
    def one_of(values: list[str], wanted: list[str]) -> bool:
        return not wanted or bool({v.strip().lower() for v in values} & {w.strip().lower() for w in wanted})

    price = effective_price(product)
    return (
        one_of([product.brand] if product.brand else [], filters.brand)
        and one_of(product.categories, filters.category)
        and one_of(product.colours, filters.colour)
        and one_of(product.available_sizes, filters.size)
        and (filters.price_min is None or (price is not None and price >= filters.price_min))
        and (filters.price_max is None or (price is not None and price <= filters.price_max))
    )


def _expected(catalog: list[Product], stems: dict[str, set[str]], q: str, filters: Filters) -> list[Product]:
    words = [_stems(word) for word in q.split()]
    return [p for p in catalog if all(w <= stems[p.id] for w in words) and _passes(p, filters)]


def _filter_sets(catalog: list[Product]) -> list[Filters]:
    brand = max({p.brand for p in catalog if p.brand}, key=lambda b: sum(p.brand == b for p in catalog))
    return [
        Filters(),
        Filters(brand=[brand]),
        Filters(colour=["Red", "Navy"]),
        Filters(size=["M"]),
        Filters(price_min=20, price_max=60),
        Filters(category=["Dresses", "Boots"]),
        Filters(colour=["Black"], size=["L", "40"], price_max=120),
    ]


def _search(engine: SearchEngine, **kwargs) -> object:
    return engine.search(SearchRequest(prefix=False, **kwargs))


def test_total_counts_every_product_with_the_words_and_filters(big: SearchEngine, catalog, stems) -> None:
    checked = 0
    for q in QUERIES:
        for filters in _filter_sets(catalog):
            expected = _expected(catalog, stems, q, filters)
            result = _search(big, q=q, filters=filters, mode=Mode.bm25, limit=5)
            if len(expected) < big.settings.ranking.relax_below:
                continue  # a relaxed query: some of the words are enough
            assert result.total == len(expected), (q, filters)
            checked += 1
    assert checked >= 25
    # The catalog is larger than the pool: the count is not the pool's.
    many = _search(big, q="black", mode=Mode.bm25, limit=1)
    assert many.total > big.settings.ranking.lexical_candidates + big.settings.ranking.semantic_candidates


def test_a_pool_holding_every_match_is_counted_without_the_index(big: SearchEngine, catalog, stems, embedder: Embedder) -> None:
    """Counting reads the pool when it holds every match passing the filters (an uncapped
    unfiltered pool, or a pool drawn with the filters whose every-word search found them all),
    the index otherwise; both give the catalog's own counts."""
    fresh = SearchEngine(big.index_dir, big.settings, embedder=embedder)  # nothing counted yet
    where: dict[str, int] = {}
    try:
        for q in QUERIES + ("merino", "skirt", "hoodie"):  # the last three match fewer than a pool
            for filters in _filter_sets(catalog):
                expected = _expected(catalog, stems, q, filters)
                if len(expected) < fresh.settings.ranking.relax_below:
                    continue  # a relaxed query: some of the words are enough
                result = fresh.search(SearchRequest(q=q, filters=filters, mode=Mode.bm25, limit=5, prefix=False, explain=True))
                counted_in = result.debug.get("counted_in", "cache")
                where[counted_in] = where.get(counted_in, 0) + 1
                assert result.total == len(expected), (q, filters, counted_in)
                if not filters.colour:
                    colours: dict[str, int] = {}
                    for p in expected:
                        for colour in set(p.colours):
                            colours[colour] = colours.get(colour, 0) + 1
                    assert result.facets["colour"] == colours, (q, filters, counted_in)
    finally:
        fresh.close()
    assert min(where.get("pool", 0), where.get("filtered pool", 0), where.get("index", 0)) >= 5, where


def test_each_facet_count_is_the_total_of_selecting_it(big: SearchEngine) -> None:
    for q, base in (("dress", Filters()), ("shirt", Filters(size=["M"])), ("black", Filters(price_max=80))):
        result = _search(big, q=q, filters=base, limit=1)
        for facet in ("brand", "colour", "size", "category"):
            values = list(result.facets[facet].items())
            for value, n in values[:3] + values[-2:]:
                selected = base.model_copy(update={facet: [*getattr(base, facet), value] if facet != "size" else [value]})
                assert _search(big, q=q, filters=selected, limit=1).total == n, (q, facet, value)
        for label, n in list(result.facets["price"].items())[:3]:
            low, _, high = label.rstrip("+").partition("-")
            bounds = {"price_min": float(low)} | ({"price_max": float(high) - 0.001} if high else {})
            assert _search(big, q=q, filters=base.model_copy(update=bounds), limit=1).total == n, (q, label)


def test_facets_count_every_matching_product_not_a_pool(big: SearchEngine, catalog, stems) -> None:
    result = _search(big, q="black", mode=Mode.bm25, limit=1)
    expected = _expected(catalog, stems, "black", Filters())
    brands: dict[str, int] = {}
    for p in expected:
        if p.brand:
            brands[p.brand] = brands.get(p.brand, 0) + 1
    assert result.facets["brand"] == brands
    assert sum(brands.values()) > big.settings.ranking.lexical_candidates


def test_sorting_by_price_returns_the_cheapest_of_all_matches(big: SearchEngine, catalog, stems) -> None:
    # The last two match fewer products than a pool holds: the pool's own order is the answer.
    cases = (("dress", Filters()), ("black", Filters(size=["M"])), ("cotton", Filters(price_min=30)), ("merino", Filters()), ("skirt", Filters(size=["M"])))
    for q, filters in cases:
        expected = sorted(effective_price(p) for p in _expected(catalog, stems, q, filters) if effective_price(p) is not None)
        cheapest = _search(big, q=q, filters=filters, mode=Mode.bm25, sort=Sort.price_asc, limit=30)
        assert [h.price for h in cheapest.hits] == expected[:30], q
        dearest = _search(big, q=q, filters=filters, mode=Mode.bm25, sort=Sort.price_desc, limit=30)
        assert [h.price for h in dearest.hits] == expected[::-1][:30], q


def test_newest_first_is_the_newest_of_all_matches(big: SearchEngine, catalog, stems) -> None:
    matches = _expected(catalog, stems, "shirt", Filters())
    newest = sorted((p.created_at for p in matches if p.created_at), reverse=True)[:20]
    result = _search(big, q="shirt", mode=Mode.bm25, sort=Sort.newest, limit=20)
    by_id = {p.id: p for p in catalog}
    assert [by_id[h.id].created_at for h in result.hits] == newest


def test_price_ties_are_ordered_by_relevance(big: SearchEngine) -> None:
    result = _search(big, q="black leather", sort=Sort.price_asc, limit=100, explain=True)
    relevance = {h.id: i for i, h in enumerate(_search(big, q="black leather", limit=100, offset=0).hits)}
    for a, b in zip(result.hits, result.hits[1:], strict=False):
        assert a.price is not None and b.price is not None and a.price <= b.price
        if a.price == b.price and a.id in relevance and b.id in relevance:
            assert relevance[a.id] < relevance[b.id]


@pytest.mark.parametrize("sort", [Sort.relevance, Sort.price_asc, Sort.newest])
def test_paging_reaches_the_last_product_and_ends_at_total(big: SearchEngine, sort: Sort) -> None:
    filters = Filters(colour=["Black", "White"])
    first = _search(big, q="cotton", filters=filters, sort=sort, limit=100)
    total = first.total
    assert big.settings.ranking.lexical_candidates < total <= MAX_WINDOW
    seen: list[str] = []
    for offset in range(0, total + 100, 100):
        page = _search(big, q="cotton", filters=filters, sort=sort, limit=100, offset=offset)
        assert page.total == total
        seen += [h.id for h in page.hits]
    assert len(seen) == total and len(set(seen)) == total
    last = _search(big, q="cotton", filters=filters, sort=sort, limit=7, offset=total - 3)
    assert len(last.hits) == 3


@pytest.mark.parametrize("sort", [Sort.relevance, Sort.price_asc])
def test_paging_a_result_set_the_pool_holds_ends_at_total(big: SearchEngine, sort: Sort) -> None:
    first = _search(big, q="merino", sort=sort, limit=100)
    assert 0 < first.total < big.settings.ranking.lexical_candidates
    seen = [h.id for offset in range(0, first.total + 100, 100) for h in _search(big, q="merino", sort=sort, limit=100, offset=offset).hits]
    assert len(seen) == len(set(seen)) == first.total
    assert len(_search(big, q="merino", sort=sort, limit=7, offset=first.total - 3).hits) == 3


def test_paging_in_price_order_visits_prices_in_order(big: SearchEngine) -> None:
    prices: list[float] = []
    total = _search(big, q="dress", sort=Sort.price_asc, limit=1).total
    for offset in range(0, total, 100):
        prices += [h.price for h in _search(big, q="dress", sort=Sort.price_asc, limit=100, offset=offset).hits if h.price is not None]
    assert prices == sorted(prices) and len(prices) == total


def test_filtered_results_are_the_unfiltered_results_that_pass(big: SearchEngine) -> None:
    """Hybrid: a filter narrows the result set (words plus admitted neighbours), never widens it."""
    everything: set[str] = set()
    unfiltered = _search(big, q="red dress", limit=1)
    for offset in range(0, unfiltered.total, 100):
        everything |= {h.id for h in _search(big, q="red dress", limit=100, offset=offset).hits}
    assert len(everything) == unfiltered.total
    filtered = _search(big, q="red dress", filters=Filters(size=["S"]), limit=100)
    ids: set[str] = set()
    for offset in range(0, filtered.total, 100):
        ids |= {h.id for h in _search(big, q="red dress", filters=Filters(size=["S"]), limit=100, offset=offset).hits}
    assert ids <= everything and len(ids) == filtered.total
    assert filtered.total == sum(n for v, n in unfiltered.facets["size"].items() if v == "S")


def test_the_ranked_pool_is_drawn_from_qualifying_products(big: SearchEngine) -> None:
    """With a filter, the best matches that qualify are ranked, not the leftovers of a pool
    drawn from the whole catalog: page one is the filtered relevance order's head."""
    brand = _search(big, q="black", limit=1).facets["brand"]
    rare = list(brand)[-1]
    result = _search(big, q="black", filters=Filters(brand=[rare]), limit=20, explain=True)
    assert result.total == brand[rare]
    assert all(h.brand == rare for h in result.hits)
    assert all(h.score > 0 for h in result.hits), "page one comes from the ranked pool"


def test_a_stock_change_moves_the_product_out_of_the_size_filter_count(mutable_service: SearchService) -> None:
    size = Filters(size=["M"])
    before = mutable_service.search(SearchRequest(q="dress", filters=size, mode=Mode.bm25, limit=100), record=False)
    assert before.hits
    product = mutable_service.engine.get_product(before.hits[0].id)
    assert product is not None
    skus = [v.sku for v in product.variants if v.size == "M" and v.stock > 0]
    mutable_service.updater.set_stock([(sku, 0) for sku in skus])
    mutable_service.refresh()
    after = mutable_service.search(SearchRequest(q="dress", filters=size, mode=Mode.bm25, limit=100), record=False)
    assert after.total == before.total - 1
    assert product.id not in {h.id for h in after.hits}
    unfiltered = mutable_service.search(SearchRequest(q="dress", mode=Mode.bm25, limit=1), record=False)
    assert unfiltered.facets["size"]["M"] == after.total


def test_vector_mode_searches_only_among_qualifying_products(big: SearchEngine, catalog: list[Product]) -> None:
    k = big.settings.ranking.semantic_candidates
    brands: dict[str, int] = {}
    for p in catalog:
        if p.brand:
            brands[p.brand] = brands.get(p.brand, 0) + 1
    rare = min(brands, key=lambda b: brands[b])
    # A small subset is searched exactly: every product of the brand is a neighbour.
    few = _search(big, q="summer dress", mode=Mode.vector, filters=Filters(brand=[rare]), limit=100)
    assert few.total == min(k, brands[rare]) and {h.brand for h in few.hits} == {rare}
    # A large one goes through the vector index with an id selector: k neighbours, all in stock.
    many = _search(big, q="summer dress", mode=Mode.vector, filters=Filters(in_stock=True), limit=100)
    assert sum(p.in_stock for p in catalog) > 10_000
    assert many.total == k and all(h.in_stock for h in many.hits)


def _keeping_every_candidate(request: SearchRequest) -> MerchPlan:
    """A merchandising rule pinning a product that does not exist: it changes nothing on the
    page, but the filtered pool keeps every candidate, not only the result set's members."""
    rule = Rule(
        id=1, version=1, created_at=0.0, updated_at=0.0, updated_by="test", name="pin an absent product",
        actions=[Pin(type="pin", product_id="absent", position=1)],
    )
    return MerchPlan(request=request, rules=[rule])


def _same_result(a: object, b: object) -> None:
    assert [(h.id, h.score) for h in a.hits] == [(h.id, h.score) for h in b.hits]
    assert (a.total, a.facets, a.relaxed, a.matched, a.corrected_query) == (b.total, b.facets, b.relaxed, b.matched, b.corrected_query)


def test_a_filtered_pool_of_members_gives_the_pages_of_the_full_pool(big: SearchEngine, catalog) -> None:
    """The short-cut (a filtered pool of the result set's members: words counted for members
    only, nothing searched when the filters were counted and no member qualifies) answers
    exactly what the pool of every candidate does, whichever of the two was asked first."""
    pools: dict[str, int] = {}
    empty_after_count = 0
    for i, q in enumerate(("red dress", "leather boots", "black cotton shirt", "blue jeans")):
        for j, filters in enumerate(_filter_sets(catalog)[1:] + [Filters(category=["Dresses"], size=["40"])]):
            full_first = (i + j) % 2 == 1  # then the filters are counted before the short-cut runs
            for sort, offset in ((Sort.relevance, 0), (Sort.relevance, 40), (Sort.price_asc, 0)):
                request = SearchRequest(q=q, filters=filters, sort=sort, offset=offset, limit=20, prefix=False, explain=True)
                if full_first:
                    full = big.search(request, merchandising=_keeping_every_candidate(request))
                    members = big.search(request)
                else:
                    members = big.search(request)
                    full = big.search(request, merchandising=_keeping_every_candidate(request))
                _same_result(members, full)
                if "filtered_pool" in members.debug:
                    pools[members.debug["filtered_pool"]] = pools.get(members.debug["filtered_pool"], 0) + 1
                    assert full.debug["filtered_pool"] == "candidates"
                    empty_after_count += full_first and members.total == 0
    assert pools.get("members", 0) >= 40, pools  # the short-cut was taken, and compared
    assert empty_after_count >= 2  # filters no member passes, counted first: nothing retrieved


def test_facet_counts_under_two_filters_count_every_match(big: SearchEngine, catalog, stems) -> None:
    """Each facet counts the matches passing the other filters, whichever filter sets were
    counted before (a facet's counts are taken from the filter set without its own filter)."""
    filters = Filters(colour=["Black"], size=["M"], price_max=150)
    for q in ("cotton", "shirt"):
        result = _search(big, q=q, filters=filters, mode=Mode.bm25, limit=1)
        for facet, key in (("colour", lambda p: p.colours), ("size", lambda p: p.available_sizes), ("brand", lambda p: [p.brand])):
            others = filters.model_copy(update={facet: []}) if facet != "brand" else filters
            expected: dict[str, int] = {}
            for p in _expected(catalog, stems, q, others):
                for value in {v for v in key(p) if v}:
                    expected[value] = expected.get(value, 0) + 1
            assert result.facets[facet] == expected, (q, facet)
        assert result.total == len(_expected(catalog, stems, q, filters))
