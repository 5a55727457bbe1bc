"""Query vectors: the direct ONNX Runtime encoder and the cache of head queries' vectors.

1. The direct encoder (indexer.embedding.OnnxQueryEncoder) gives the vectors sentence-transformers gives for the same text and backend (fp32 and
   int8), short and long queries alike (truncated at the same word piece).
2. Vectors are unit length, float32, of the model's dimension.
3. The torch backend keeps the sentence-transformers path (no ONNX graph to run).
4. Texts encoded ahead (`SearchEngine.encode_queries`) are searched without waiting for the
   encoder, and rank exactly as when encoded on the request.
5. A service starting over an existing search log encodes its most searched queries first.
"""

from __future__ import annotations

import numpy as np
import pytest

from indexer.config import IndexConfig
from indexer.embedding import Embedder
from search.engine import SearchEngine
from search.models import SearchRequest
from search.service import SearchService
from search.settings import Settings

QUERIES = [
    "red dress",
    "Nike running shoes size 42",
    "t-shirt",
    "ÉTÉ linen trousers, beige & slim fit!",
    "x",
    " ".join(["waterproof hiking boots with a very long description"] * 20),  # past the token cap
]


@pytest.mark.parametrize("backend", ["onnx-int8", "onnx"])
def test_direct_encoder_gives_the_sentence_transformers_vectors(backend: str) -> None:
    embedder = Embedder(IndexConfig(backend=backend))
    encoder = embedder.query_encoder
    assert encoder is not None
    for text in QUERIES:
        direct = embedder.encode_query(text)
        reference = embedder.model.encode([text], normalize_embeddings=True, convert_to_numpy=True)[0]
        assert direct.dtype == np.float32
        assert direct.shape == (embedder.dimension,)
        assert abs(float(np.linalg.norm(direct)) - 1.0) < 1e-5
        np.testing.assert_allclose(direct, reference, atol=1e-5)


def test_torch_backend_keeps_the_sentence_transformers_path() -> None:
    assert Embedder(IndexConfig(backend="torch")).query_encoder is None


def test_queries_encoded_ahead_are_searched_from_the_cache(index_dir, embedder) -> None:
    ahead = SearchEngine(index_dir, Settings(index_dir=index_dir), embedder=embedder)
    cold = SearchEngine(index_dir, Settings(index_dir=index_dir), embedder=embedder)
    try:
        assert ahead.encode_queries(["red dress", "red dress", "leather boots"]) == 2
        warm = ahead.search(SearchRequest(q="red dress", explain=True))
        fresh = cold.search(SearchRequest(q="red dress", explain=True))
        assert warm.debug["query_vector"] == "cached"
        assert fresh.debug["query_vector"] == "encoding"
        assert [h.id for h in warm.hits] == [h.id for h in fresh.hits]
        assert ahead.search(SearchRequest(q="wool scarf", explain=True)).debug["query_vector"] == "encoding"
    finally:
        ahead.close()
        cold.close()


def test_a_restarted_service_encodes_its_most_searched_queries(index_dir, embedder, tmp_path) -> None:
    settings = Settings(index_dir=index_dir, data_dir=tmp_path, warm_queries=1)
    first = SearchService(settings, engine=SearchEngine(index_dir, settings, embedder=embedder))
    for q in ("blue jeans", "blue jeans", "sun hat"):
        first.search(SearchRequest(q=q))
    first.search_log.flush()
    first.close()
    second = SearchService(settings, engine=SearchEngine(index_dir, settings, embedder=embedder))
    try:
        second.warm_up()
        assert second.search(SearchRequest(q="blue jeans", explain=True)).debug["query_vector"] == "cached"
        assert second.search(SearchRequest(q="sun hat", explain=True)).debug["query_vector"] == "encoding"
    finally:
        second.close()
