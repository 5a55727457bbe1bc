"""The feedback stage (`feedback`): the query's meaning moved towards the products ranked first.

Properties it guarantees (on the real sample index, with feedback turned on):
1. It records `feedback` with one value per candidate and changes nothing else: the same
   members, every other stage's contribution untouched.
2. The semantic part after it (fuse's + feedback's) is w x the min-max normalised cosine of
   each member to q' = normalise(q + feedback_weight x mean vector of the `feedback_docs` best
   products so far), recomputed here from the index's own vectors; it lies in [0, w] and the
   best member reaches w.
3. Products resembling the best ones gain against the rest: across members, the change in the
   semantic part rises with similarity to those products' mean vector, and the fifth of the
   members most like them gains more on average than the others.
4. Off (weight 0), in bm25 or vector mode, or with RRF fusion it records nothing.
5. `explain` shows each hit's cosine to q', and a hit's score is still the sum of its parts.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from search.models import Mode, SearchRequest
from search.stages.fuse import minmax
from tests.stages import assert_ranker_contract, engine_with, request, run_alone

QUERIES = ["denim jacket", "black dress", "running shoes", "warm winter coat", "leather bag"]


@pytest.fixture(scope="module")
def feedback_engine(index_dir: Path, embedder):
    with engine_with(index_dir, embedder, ranking={"feedback_weight": 1.0, "feedback_docs": 5}) as engine:
        yield engine


def _score_before(ctx, before) -> np.ndarray:
    total = np.zeros(len(ctx.candidates))
    for values in before.contributions.values():
        total += values
    return total


@pytest.mark.parametrize("q", QUERIES)
def test_records_one_feedback_value_per_candidate_and_keeps_the_members(feedback_engine, q) -> None:
    ctx, before = run_alone(feedback_engine, "feedback", request(q))
    assert_ranker_contract(ctx, before, "feedback")
    assert np.array_equal(ctx.candidates.member, before.member)


@pytest.mark.parametrize("q", QUERIES)
def test_semantic_part_is_the_cosine_to_the_moved_query(feedback_engine, q) -> None:
    ctx, before = run_alone(feedback_engine, "feedback", request(q))
    c, ranking = ctx.candidates, feedback_engine.settings.ranking
    members = np.flatnonzero(c.member)
    assert len(members) >= ranking.feedback_docs
    # The best products by every earlier stage's score, recomputed from what they recorded.
    prior = _score_before(ctx, before)
    top = members[np.argsort(-prior[members], kind="stable")[: ranking.feedback_docs]]
    moved = ctx.query_vector + ranking.feedback_weight * ctx.snapshot.vectors[c.ords[top]].mean(axis=0)
    moved = moved / np.linalg.norm(moved)
    cosine = ctx.snapshot.vectors[c.ords] @ moved
    assert np.allclose(c.details["feedback"]["cosine"][members], cosine[members], atol=1e-5)
    w = float(c.details["semantic"]["weight"][0])
    semantic = c.contributions["semantic"] + c.contributions["feedback"]
    assert np.allclose(semantic[members], w * minmax(cosine, c.member)[members], atol=1e-5)
    assert (semantic[members] >= -1e-9).all() and (semantic[members] <= w + 1e-9).all()
    assert semantic[members].max() == pytest.approx(w)


@pytest.mark.parametrize("q", QUERIES)
def test_products_like_the_best_ones_gain_against_the_rest(feedback_engine, q) -> None:
    ctx, before = run_alone(feedback_engine, "feedback", request(q))
    c, ranking = ctx.candidates, feedback_engine.settings.ranking
    members = np.flatnonzero(c.member)
    prior = _score_before(ctx, before)
    top = members[np.argsort(-prior[members], kind="stable")[: ranking.feedback_docs]]
    centroid = ctx.snapshot.vectors[c.ords[top]].mean(axis=0)
    likeness = ctx.snapshot.vectors[c.ords[members]] @ centroid
    gain = c.contributions["feedback"][members]
    # Positive, not a set size: how strongly depends on the query vector's last digits (int8
    # graphs differ between builds; "warm winter coat" reads 0.19 with the fused graph, 0.2+
    # with the exported one), while a stage that moved q' away from the best would go negative.
    assert np.corrcoef(likeness, gain)[0, 1] > 0, "the change follows resemblance to the best products"
    alike = likeness >= np.quantile(likeness, 0.8)
    assert gain[alike].mean() > gain[~alike].mean(), "the fifth most like them gains more than the rest"


def test_does_nothing_when_off_in_single_retriever_modes_or_with_rrf(feedback_engine, index_dir, embedder) -> None:
    with engine_with(index_dir, embedder, ranking={"feedback_weight": 0.0}) as off:
        ctx, _ = run_alone(off, "feedback", request("denim jacket"))
        assert "feedback" not in ctx.candidates.contributions
    for mode in (Mode.bm25, Mode.vector):
        ctx, _ = run_alone(feedback_engine, "feedback", request("denim jacket", mode=mode))
        assert "feedback" not in ctx.candidates.contributions, mode
    with engine_with(index_dir, embedder, ranking={"feedback_weight": 1.0, "fusion": "rrf"}) as rrf:
        ctx, _ = run_alone(rrf, "feedback", request("denim jacket"))
        assert "feedback" not in ctx.candidates.contributions


def test_explain_shows_the_cosine_to_the_moved_query_and_scores_still_add_up(feedback_engine) -> None:
    result = feedback_engine.search(SearchRequest(q="black dress", explain=True, prefix=False, limit=20))
    assert result.hits
    for hit in result.hits:
        assert "feedback" in hit.explain
        assert -1.0 <= hit.explain["feedback"].details["cosine"] <= 1.0
        assert hit.score == pytest.approx(sum(e.contribution for e in hit.explain.values()), abs=1e-6)
