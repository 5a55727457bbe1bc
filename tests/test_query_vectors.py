"""Query vectors: the direct ONNX Runtime encoder and the cache of head queries' vectors.

1. The direct encoder (indexer.embedding.OnnxQueryEncoder) over the passages' own graph
   (query_graph "exported") gives the vectors sentence-transformers gives for the same text and
   backend (fp32 and int8), short and long queries alike (truncated at the same word piece).
2. Vectors are unit length, float32, of the model's dimension.
3. By default queries run through the fused graph, whose vectors agree with the passages'
   graph's: to float rounding in fp32, within int8 quantization's reach with onnx-int8
   (tolerances, never exact int8 values), long queries included.
4. A model the optimiser cannot fuse, or a fused graph that disagrees with the fp32 vectors,
   leaves the exported graph in use, and the verdict is kept so that it is not made again.
5. The torch backend keeps the sentence-transformers path (no ONNX graph to run).
6. Texts encoded ahead (`SearchEngine.encode_queries`) are searched without waiting for the
   encoder, and rank exactly as when encoded on the request.
7. A service starting over an existing search log encodes its most searched queries first.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from indexer import embedding
from indexer.config import IndexConfig
from indexer.embedding import Embedder, OnnxQueryEncoder, _export_dir, fused_query_graph
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
    embedder = Embedder(IndexConfig(backend=backend, query_graph="exported"))
    encoder = embedder.query_encoder
    assert encoder is not None
    assert not encoder.graph.name.startswith("query_fused")
    for text in QUERIES:
        direct = embedder.encode_query(text)
        reference = embedder.model.encode([text], normalize_embeddings=True, convert_to_numpy=True)[0]
        assert direct.dtype == np.float32
        assert direct.shape == (embedder.dimension,)
        assert abs(float(np.linalg.norm(direct)) - 1.0) < 1e-5
        np.testing.assert_allclose(direct, reference, atol=1e-5)


@pytest.mark.parametrize(("backend", "mean_at_least", "each_at_least"), [("onnx-int8", 0.98, 0.95), ("onnx", 0.9999, 0.9999)])
def test_fused_query_graph_agrees_with_the_passages_graph(backend: str, mean_at_least: float, each_at_least: float) -> None:
    # Two int8 approximations of one fp32 model differ from each other about as much as each
    # from fp32 (mean cosine 0.992 over the latency mix's queries), hence the int8 bounds.
    fused = Embedder(IndexConfig(backend=backend))
    assert fused.query_encoder is not None
    assert fused.query_encoder.graph.name.startswith("query_fused")
    passages = Embedder(IndexConfig(backend=backend, query_graph="exported"))
    cosines = []
    for text in QUERIES:
        vector = fused.encode_query(text)
        assert vector.dtype == np.float32
        assert vector.shape == (fused.dimension,)
        assert abs(float(np.linalg.norm(vector)) - 1.0) < 1e-5
        cosines.append(float(vector @ passages.encode_query(text)))
    assert min(cosines) >= each_at_least
    assert float(np.mean(cosines)) >= mean_at_least


def _export_copy(tmp_path: Path, **config_changes: object) -> Path:
    """The fp32 export, linked file by file into tmp_path, with changes to its config.json."""
    source = _export_dir(IndexConfig(backend="onnx"))
    Embedder(IndexConfig(backend="onnx")).model  # noqa: B018 - exports the model if this machine has not yet
    copy = tmp_path / "export"
    for path in source.rglob("*"):
        if path.is_file() and not path.name.startswith("query_fused"):
            target = copy / path.relative_to(source)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(path)
    config = json.loads((source / "config.json").read_text())
    (copy / "config.json").unlink()
    (copy / "config.json").write_text(json.dumps({**config, **config_changes}))
    return copy


def test_a_model_the_optimiser_cannot_fuse_keeps_the_exported_graph(tmp_path: Path) -> None:
    exported = _export_copy(tmp_path, model_type="not-a-transformer-the-optimiser-knows")
    assert fused_query_graph(exported, int8=False, max_tokens=64) is None
    assert (exported / "onnx" / "query_fused.rejected").is_file()
    encoder = OnnxQueryEncoder.open(exported, IndexConfig(backend="onnx"))
    assert encoder is not None
    assert encoder.graph.name == "model.onnx"


def test_a_fused_graph_that_disagrees_is_not_used_nor_made_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    exported = _export_copy(tmp_path)
    monkeypatch.setattr(embedding, "FUSED_AGREEMENT_MARGIN", -1.0)  # no graph can agree better than identically
    assert fused_query_graph(exported, int8=False, max_tokens=64) is None
    verdict = json.loads((exported / "onnx" / "query_fused.rejected").read_text())
    assert set(verdict) == {"fused", "passages"}
    assert not list((exported / "onnx").glob("*query_fused*.onnx"))
    monkeypatch.setattr(embedding, "_fuse", lambda *args: pytest.fail("made again"))
    assert fused_query_graph(exported, int8=False, max_tokens=64) is None


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
