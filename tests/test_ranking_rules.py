"""Ranking rules beyond fusion, on small real indexes of hand-written products: word proximity
in the title, words a shopper ran together, and words that name a product (title) against
words a product only mentions (description, attributes)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from indexer.build import build_index
from indexer.catalog import Product
from indexer.embedding import Embedder
from search.engine import SearchEngine
from search.models import Mode, SearchRequest
from search.query import Alternative, QueryTerm
from search.settings import RankingSettings, Settings
from search.vocabulary import Vocabulary

TITLES = [
    "Black Running Shoes",
    "Black Paisley Ankle Boots",
    "Paisley Silk Scarf",
    "Ceramic Coffee Cup",
    "Stoneware Coffee Cup and Saucer",
    "Mr. Coffee 12-Cup Programmable Coffee Maker",
    "Drip Coffee Maker, 10-Cup Glass Carafe",
    "Harley-Davidson Leather Riding Jacket",
    "Harley-Davidson Logo T-Shirt",
    "Davidson Wool Scarf",
    "Leather Riding Gloves",
    "Tea Cup Set",
    "Espresso Machine",
]


@pytest.fixture(scope="module")
def small_index(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Path:
    products = [Product(id=f"p{i}", title=title, price=10.0 + i) for i, title in enumerate(TITLES)]
    path = tmp_path_factory.mktemp("rules")
    build_index(products, path, embedder=embedder, progress=False)
    return path


@contextmanager
def _engine(index_dir: Path, embedder: Embedder, **ranking) -> Iterator[SearchEngine]:
    settings = Settings(index_dir=index_dir, ranking=RankingSettings(**ranking))
    settings.analytics.search_log = False
    engine = SearchEngine(index_dir, settings, embedder=embedder)
    try:
        yield engine
    finally:
        engine.close()


def _titles(engine: SearchEngine, q: str, **kwargs) -> list[str]:
    return [h.title for h in engine.search(SearchRequest(q=q, prefix=False, limit=10, **kwargs)).hits]


@pytest.mark.parametrize("mode", [Mode.hybrid, Mode.bm25])
def test_titles_saying_the_query_words_together_rank_above_ones_that_only_contain_them(small_index, embedder, mode) -> None:
    with _engine(small_index, embedder) as engine:
        titles = _titles(engine, "coffee cup", mode=mode)
        cups = {"Ceramic Coffee Cup", "Stoneware Coffee Cup and Saucer"}
        assert set(titles[:2]) == cups, titles
        result = engine.search(SearchRequest(q="coffee cup", prefix=False, explain=True, mode=mode))
        for hit in result.hits:
            said_together = hit.title in cups
            assert (hit.explain["proximity"].contribution > 0) == said_together, hit.title
            assert hit.explain["proximity"].details["title_pairs"] == (1.0 if said_together else 0.0)
            assert sum(e.contribution for e in hit.explain.values()) == pytest.approx(hit.score)


def test_proximity_weight_zero_leaves_ranking_to_fusion(small_index, embedder) -> None:
    with _engine(small_index, embedder, proximity_weight=0.0) as engine:
        result = engine.search(SearchRequest(q="coffee cup", prefix=False, explain=True))
        assert all("proximity" not in hit.explain for hit in result.hits)


def test_proximity_never_lifts_a_product_missing_a_query_word(small_index, embedder) -> None:
    with _engine(small_index, embedder) as engine:
        result = engine.search(SearchRequest(q="tea cup saucer", prefix=False, explain=True))
        for hit in result.hits:
            if hit.title == "Tea Cup Set":  # says "tea cup" but has no saucer
                assert hit.explain["proximity"].contribution == 0


def test_products_containing_more_of_the_query_words_rank_higher(small_index, embedder) -> None:
    with _engine(small_index, embedder) as engine:
        result = engine.search(SearchRequest(q="paisley black running shoes", prefix=False, explain=True))
        shares = {h.title: h.explain["words"].details["share"] for h in result.hits}
        assert shares["Black Running Shoes"] == 0.75 and shares["Black Paisley Ankle Boots"] == 0.5
        assert shares["Paisley Silk Scarf"] == 0.25
        titles = [h.title for h in result.hits]
        assert titles.index("Black Running Shoes") < titles.index("Black Paisley Ankle Boots") < titles.index("Paisley Silk Scarf")
        for hit in result.hits:
            assert hit.explain["words"].contribution == pytest.approx(hit.explain["words"].details["share"])
            assert sum(e.contribution for e in hit.explain.values()) == pytest.approx(hit.score)
        # A typo still counts as the word it corrects.
        typo = engine.search(SearchRequest(q="paisley scraf", prefix=False, explain=True))
        assert typo.hits[0].title == "Paisley Silk Scarf" and typo.hits[0].explain["words"].details["share"] == 1.0


# No query word names a category here ("scarf" is in titles of four categories), so the query
# understanding lifts nothing: only the words decide, as on the demo shop's "something warm for
# winter walks", whose trail running shoes say "winter" in their season and "walking" in their
# description.
MENTIONS = [
    ("Chunky Knit Scarf", ["Women", "Knitwear"], "Autumn", "Soft and chunky, in a loose rib."),
    ("Canvas Sneakers", ["Shoes", "Sneakers"], "Winter", "A cosy lining for cold mornings."),
    ("Silk Square Scarf", ["Women", "Accessories"], "Summer", "A printed silk square."),
    ("Cashmere Scarf", ["Gifts"], "Autumn", "Fine and light."),
    ("Striped Wool Scarf", ["Men", "Accessories"], "Autumn", "Bold stripes."),
    ("Stoneware Coffee Mug", ["Home", "Kitchen"], "All", "Holds 350 ml."),
    ("Linen Summer Dress", ["Women", "Dresses"], "Summer", "Breezy linen for hot days."),
    ("Brass Table Lamp", ["Home", "Lighting"], "All", "A soft light for reading."),
    ("Leather Belt", ["Men", "Accessories"], "All", "Full-grain leather."),
    ("Cotton Tote Bag", ["Women", "Bags"], "Summer", "Roomy and washable."),
    ("Road Running Shoes", ["Shoes", "Sports Shoes"], "Spring", "Light and springy."),
]


@pytest.fixture(scope="module")
def mentions_index(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Path:
    products = [
        Product(id=f"m{i}", title=title, categories=categories, attributes={"season": season}, description=description, price=20.0 + i)
        for i, (title, categories, season, description) in enumerate(MENTIONS)
    ]
    path = tmp_path_factory.mktemp("mentions")
    build_index(products, path, embedder=embedder, progress=False)
    return path


def test_words_a_product_only_mentions_count_less_than_a_word_naming_it(mentions_index, embedder) -> None:
    # "cosy" (description) and "winter" (season) are two of three words, "scarf" (title) one:
    # counted alike, the sneakers' two mentions beat every scarf.
    with _engine(mentions_index, embedder) as engine:
        result = engine.search(SearchRequest(q="cosy winter scarf", prefix=False, explain=True))
        assert result.relaxed  # no product has all three words
        titles = [h.title for h in result.hits]
        assert titles[0].endswith("Scarf"), titles
        words = {h.title: h.explain["words"] for h in result.hits}
        sneakers = words["Canvas Sneakers"]
        assert sneakers.details["share"] == pytest.approx(2 / 3)
        assert sneakers.details["in_attributes"] == pytest.approx(1 / 3)
        assert sneakers.details["in_description"] == pytest.approx(1 / 3)
        weights = engine.settings.ranking.word_field_weights
        assert sneakers.details["credit"] == pytest.approx((weights["attributes"] + weights["description"]) / 3)
        for title, scarf in words.items():
            if title.endswith("Scarf"):
                assert scarf.details["share"] == pytest.approx(1 / 3)
                assert scarf.details["in_title+brand+categories"] == pytest.approx(1 / 3)
                assert scarf.contribution > sneakers.contribution, title
    # Counted alike (every field whole), as before field weights: the mentions win.
    whole = dict.fromkeys(("title", "brand", "categories", "attributes", "description"), 1.0)
    with _engine(mentions_index, embedder, word_field_weights=whole) as engine:
        assert _titles(engine, "cosy winter scarf")[0] == "Canvas Sneakers"


def test_words_weight_zero_leaves_ranking_to_fusion(small_index, embedder) -> None:
    with _engine(small_index, embedder, words_weight=0.0) as engine:
        result = engine.search(SearchRequest(q="paisley black running shoes", prefix=False, explain=True))
        assert result.hits and all("words" not in hit.explain for hit in result.hits)


def test_words_run_together_are_split_into_catalog_words(small_index, embedder) -> None:
    with _engine(small_index, embedder) as engine:
        result = engine.search(SearchRequest(q="harleydavidson jacket", prefix=False, mode=Mode.bm25))
        assert result.hits and result.hits[0].title == "Harley-Davidson Leather Riding Jacket"
        assert result.corrected_query == "harley davidson jacket"
        # Both parts must be found together: the scarf has only "Davidson".
        alone = _titles(engine, "harleydavidson", mode=Mode.bm25)
        assert set(alone) == {"Harley-Davidson Leather Riding Jacket", "Harley-Davidson Logo T-Shirt"}


def test_vocabulary_splits_only_into_words_seen_often_enough() -> None:
    vocabulary = Vocabulary()
    vocabulary.counts.update({"harley": 3, "davidson": 3, "harle": 9, "ydavidson": 2, "har": 1, "rain": 5, "coat": 5})
    assert vocabulary.splits("harleydavidson") == [("harley", "davidson"), ("harle", "ydavidson")]
    assert vocabulary.splits("harleydavidsonx") == []
    assert vocabulary.splits("raincoats") == []  # "coats" was never seen
    assert vocabulary.splits("harleydavidson", min_count=4) == []


def test_words_are_split_only_where_the_catalog_says_the_parts_side_by_side(small_index, embedder) -> None:
    # "cup" and "coffee" are both frequent words here, but only "coffee cup" is ever said;
    # "Leather Riding" gloves and jacket, never "riding leather".
    with _engine(small_index, embedder) as engine:
        def alternatives(q: str) -> list[str]:
            result = engine.search(SearchRequest(q=q, prefix=False, explain=True, mode=Mode.bm25))
            return [a[0] for t in result.debug["terms"] for a in t["alternatives"] if a[1] == "split"]

        assert alternatives("coffeecup") == ["coffee cup"]
        assert alternatives("cupcoffee") == []
        assert alternatives("leatherriding") == ["leather riding"]
        assert alternatives("ridingleather") == []


def test_a_split_counts_as_a_correction_in_the_plan() -> None:
    term = QueryTerm("harleydavidson", [Alternative("harleydavidson", "harleydavidson", 1.0, "exact"),
                                        Alternative("harley davidson", "harley", 1.0, "split", ("davidson",))])
    assert term.correction == "harley davidson"


# Nothing here is called warm, wintry or for walks: the words are only mentioned (a season,
# a description), by shoes made for running and for town. What a shopper asking for something
# warm for winter walks wants is found by meaning alone.
ONLY_MENTIONED = [
    ("Trail Running Shoes", ["Shoes", "Sports Shoes"], "Winter", "Grippy soles for long walks and trail runs."),
    ("Canvas Sneakers", ["Shoes", "Sneakers"], "Winter", "Easy walks about town."),
    ("Insulated Hiking Boots", ["Shoes", "Boots"], "Autumn", "Waterproof leather with a thermal lining."),
    ("Fleece-Lined Parka", ["Women", "Coats"], "Autumn", "A quilted hood and a thermal lining."),
    ("Chunky Wool Jumper", ["Men", "Knitwear"], "Autumn", "Thick wool in a loose rib."),
    ("Linen Summer Dress", ["Women", "Dresses"], "Summer", "Breezy linen for hot days."),
    ("Stoneware Coffee Mug", ["Home", "Kitchen"], "All", "Holds 350 ml."),
    ("Brass Table Lamp", ["Home", "Lighting"], "All", "A soft light for reading."),
    ("Cotton Tote Bag", ["Women", "Bags"], "Summer", "Roomy and washable."),
    ("Silk Square Scarf", ["Women", "Accessories"], "Summer", "A printed silk square."),
]


@pytest.fixture(scope="module")
def only_mentioned_index(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Path:
    products = [
        Product(id=f"o{i}", title=title, categories=categories, attributes={"season": season}, description=description, price=30.0 + i)
        for i, (title, categories, season, description) in enumerate(ONLY_MENTIONED)
    ]
    path = tmp_path_factory.mktemp("only-mentioned")
    build_index(products, path, embedder=embedder, progress=False)
    return path


def test_words_no_product_names_are_left_to_meaning(only_mentioned_index, embedder) -> None:
    warm = {"Insulated Hiking Boots", "Fleece-Lined Parka", "Chunky Wool Jumper"}
    with _engine(only_mentioned_index, embedder) as engine:
        result = engine.search(SearchRequest(q="something warm for winter walks", prefix=False, explain=True))
        titles = [h.title for h in result.hits]
        assert titles[0] in warm, titles
        assert result.debug["fusion"]["semantic_weight"] == 1.0
        assert "none has any of them in its title" in result.debug["fusion"]["reason"]
        assert all(h.explain["lexical"].contribution == 0 and h.explain["words"].contribution == 0 for h in result.hits)
        # A word a product names keeps the words in charge: "boots" is in a title.
        named = engine.search(SearchRequest(q="winter walks boots", prefix=False, explain=True))
        assert "reason" not in named.debug.get("fusion", {})
    # With the rule off, the mentions lead, as they did before it.
    with _engine(only_mentioned_index, embedder, unnamed_semantic_weight=0.0) as engine:
        assert _titles(engine, "something warm for winter walks")[0] not in warm
