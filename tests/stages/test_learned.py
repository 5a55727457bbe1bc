"""Learned fusion (search/stages/learned.py), on the real sample index with the shipped model.

Properties checked:
  1. The shipped model loads and matches the features the stage computes.
  2. It only re-orders: the result set (members, total) is the same as with convex fusion.
  3. Explain shows the model's score and its adjustment; scores still sum the contributions.
  4. Turned off, or with a missing model file, search answers with convex fusion alone.
  5. bm25 and vector modes are untouched by it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from search.engine import SearchEngine
from search.models import Mode, SearchRequest
from search.settings import Settings
from search.stages.learned import FEATURES, MODEL_FILE, load_model


@pytest.fixture(scope="module")
def learned_engine(index_dir: Path, embedder) -> SearchEngine:
    settings = Settings(index_dir=index_dir)
    settings.ranking.learned_fusion = True
    engine = SearchEngine(index_dir, settings, embedder=embedder)
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def convex_engine(index_dir: Path, embedder) -> SearchEngine:
    settings = Settings(index_dir=index_dir)
    settings.ranking.learned_fusion = False
    engine = SearchEngine(index_dir, settings, embedder=embedder)
    yield engine
    engine.close()


def test_shipped_model_loads_with_the_stage_features():
    model = load_model(None)
    assert model is not None, f"no usable model at {MODEL_FILE}"
    assert tuple(model.booster.feature_name()) == FEATURES


def test_learned_fusion_reorders_the_same_result_set(learned_engine: SearchEngine, convex_engine: SearchEngine):
    for q in ("black leather boots", "summer dress for women", "blue cotton shirt"):
        learned = learned_engine.search(SearchRequest(q=q, limit=100, prefix=False))
        convex = convex_engine.search(SearchRequest(q=q, limit=100, prefix=False))
        assert learned.total == convex.total
        assert {h.id for h in learned.hits} == {h.id for h in convex.hits}


def test_explain_shows_model_score_and_contributions_sum_to_the_score(learned_engine: SearchEngine):
    result = learned_engine.search(SearchRequest(q="black leather boots", explain=True, prefix=False))
    assert result.hits
    top = result.hits[0]
    assert "learned" in top.explain
    assert top.explain["learned"].details["model_score"] is not None
    assert top.score == pytest.approx(sum(e.contribution for e in top.explain.values()), abs=1e-6)
    scores = [h.score for h in result.hits]
    assert scores == sorted(scores, reverse=True)


def test_turned_off_search_uses_convex_fusion_only(convex_engine: SearchEngine):
    result = convex_engine.search(SearchRequest(q="black leather boots", explain=True, prefix=False))
    assert result.hits
    assert all("learned" not in h.explain for h in result.hits)


def test_missing_model_file_falls_back_to_convex_fusion(index_dir: Path, embedder, tmp_path: Path):
    settings = Settings(index_dir=index_dir)
    settings.ranking.learned_fusion = True
    settings.ranking.learned_model = tmp_path / "no-such-model.txt"
    engine = SearchEngine(index_dir, settings, embedder=embedder)
    try:
        result = engine.search(SearchRequest(q="black leather boots", explain=True, prefix=False))
    finally:
        engine.close()
    assert result.hits
    assert all("learned" not in h.explain for h in result.hits)


@pytest.mark.parametrize("mode", [Mode.bm25, Mode.vector])
def test_single_retriever_modes_are_not_reordered(learned_engine: SearchEngine, mode: Mode):
    result = learned_engine.search(SearchRequest(q="black leather boots", mode=mode, explain=True, prefix=False))
    assert result.hits
    assert all("learned" not in h.explain for h in result.hits)
    assert np.all(np.diff([h.score for h in result.hits]) <= 1e-12)
