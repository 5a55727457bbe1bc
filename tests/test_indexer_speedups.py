"""Build speed-ups that must not change what is built.

Properties checked:
  1. passages encoded by worker processes get the same vectors as in process (within 1e-5),
     and a build encoded by workers keeps the embedding cache's semantics;
  2. small jobs stay in process (a worker takes seconds to start);
  3. a rebuild whose vectors all equal the published version's shares its vector file instead
     of rebuilding it, and the shared file outlives the pruning of the version it came from;
  4. any changed vector, other vector index parameters, or an unreadable published file
     rebuild the vector index.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from indexer import format as fmt
from indexer.build import build_index
from indexer.config import IndexConfig
from indexer.embedding import Embedder, available_cores
from indexer.sample import generate_catalog
from indexer.text import passage
from indexer.vectors import load_vector_index
from search.engine import SearchEngine
from search.models import SearchRequest
from search.settings import Settings

# Small enough for a quick test, large enough that each worker gets several chunks.
PARALLEL = IndexConfig(encode_workers=2, parallel_encode_min=100, encode_batch_size=16)


def _vector_file(index_dir: Path) -> Path:
    return fmt.current_version_dir(index_dir) / fmt.VECTORS_FILE


def _nearest(vector_file: Path, embedder: Embedder, text: str) -> int:
    _, ids = load_vector_index(vector_file).search(embedder.encode([text]), 1)
    return int(ids[0][0])


def _assert_serves(index_dir: Path, embedder: Embedder) -> None:
    engine = SearchEngine(index_dir, Settings(index_dir=index_dir), embedder=embedder)
    try:
        assert engine.search(SearchRequest(q="belt", limit=5)).hits
    finally:
        engine.close()


@pytest.fixture(scope="module")
def parallel_embedder(embedder: Embedder) -> Embedder:
    parallel = Embedder(PARALLEL)
    parallel._model = embedder.model  # same model in process; workers load their own
    return parallel


def test_workers_encode_the_same_vectors_as_one_process(embedder, parallel_embedder) -> None:
    passages = [passage(p) for p in generate_catalog(400, seed=21)]
    in_process = Embedder(PARALLEL.model_copy(update={"encode_workers": 1}))
    in_process._model = embedder.model
    assert parallel_embedder.workers_for(len(passages)) == 2 and in_process.workers_for(len(passages)) == 1

    reported: list[int] = []
    by_workers = parallel_embedder.encode(passages, reported.append)
    here = in_process.encode(passages)
    assert sum(reported) == len(passages)
    assert by_workers.shape == here.shape == (400, 384)
    np.testing.assert_allclose(by_workers, here, rtol=0, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(by_workers, axis=1), 1.0, atol=1e-5)


def test_small_jobs_stay_in_process() -> None:
    auto = Embedder(IndexConfig(encode_workers=0, parallel_encode_min=2000))
    assert auto.workers_for(1999) == 1
    cores = available_cores()
    assert auto.workers_for(100_000) == (min(cores, 50) if cores > 1 else 1)  # one per core
    assert Embedder(IndexConfig(encode_workers=4, parallel_encode_min=2000)).workers_for(5000) == 3
    assert Embedder(IndexConfig(encode_workers=1)).workers_for(100_000) == 1


def test_build_encoded_by_workers_keeps_cache_semantics(tmp_path, parallel_embedder) -> None:
    products = generate_catalog(250, seed=22)
    first = build_index(products, tmp_path, PARALLEL, embedder=parallel_embedder, progress=False).manifest
    assert first.embedded == 250
    second = build_index(products, tmp_path, PARALLEL, embedder=parallel_embedder, progress=False).manifest
    assert second.embedded == 0 and second.embedding_cache_hits == 250
    assert _nearest(_vector_file(tmp_path), parallel_embedder, passage(products[3])) == 3
    _assert_serves(tmp_path, parallel_embedder)


@pytest.mark.parametrize("threshold", [10_000, 10], ids=["flat", "hnsw"])
def test_unchanged_vectors_share_the_published_vector_file(tmp_path, embedder, threshold) -> None:
    config = IndexConfig(hnsw_threshold=threshold, keep_versions=1)
    products = generate_catalog(80, seed=23)
    build_index(products, tmp_path, config, embedder=embedder, progress=False)
    before = _vector_file(tmp_path)
    saved = load_vector_index(before).reconstruct_n(0, 80)

    build_index(products, tmp_path, config, embedder=embedder, progress=False)
    after = _vector_file(tmp_path)
    assert after != before and not before.exists(), "the previous version was pruned"
    assert os.stat(after).st_nlink == 1, "the shared file survives its first version"
    np.testing.assert_array_equal(load_vector_index(after).reconstruct_n(0, 80), saved)

    assert _nearest(after, embedder, passage(products[5])) == 5
    _assert_serves(tmp_path, embedder)


def test_shared_vector_file_is_the_same_file(tmp_path, embedder) -> None:
    products = generate_catalog(50, seed=24)
    build_index(products, tmp_path, embedder=embedder, progress=False)
    first = _vector_file(tmp_path)
    build_index(products, tmp_path, embedder=embedder, progress=False)
    assert os.path.samefile(first, _vector_file(tmp_path))


def test_changed_vectors_or_parameters_rebuild_the_vector_index(tmp_path, embedder) -> None:
    config = IndexConfig(hnsw_threshold=10)
    products = generate_catalog(60, seed=25)
    build_index(products, tmp_path, config, embedder=embedder, progress=False)
    first = _vector_file(tmp_path)

    changed = [p.model_copy(deep=True) for p in products]
    changed[9].title = "Entirely Different Waterproof Hiking Boots"
    build_index(changed, tmp_path, config, embedder=embedder, progress=False)
    second = _vector_file(tmp_path)
    assert not os.path.samefile(first, second)
    title_vector = embedder.encode([passage(changed[9])])[0]
    assert float(load_vector_index(second).reconstruct(9) @ title_vector) > 0.999

    wider = config.model_copy(update={"hnsw_m": 24})
    manifest = build_index(changed, tmp_path, wider, embedder=embedder, progress=False).manifest
    assert not os.path.samefile(second, _vector_file(tmp_path))
    assert manifest.vector_index.params["m"] == 24


def test_unreadable_published_vector_file_is_rebuilt_not_shared(tmp_path, embedder) -> None:
    products = generate_catalog(30, seed=26)
    build_index(products, tmp_path, embedder=embedder, progress=False)
    damaged = _vector_file(tmp_path)
    damaged.write_bytes(b"not a faiss index")
    build_index(products, tmp_path, embedder=embedder, progress=False)
    rebuilt = _vector_file(tmp_path)
    assert not os.path.samefile(damaged, rebuilt)
    assert load_vector_index(rebuilt).ntotal == 30
