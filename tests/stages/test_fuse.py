"""The fuse stage (`fuse`): lexical and semantic relevance as two additive contributions.

Properties it guarantees:
1. It records `lexical` and `semantic`, one value per candidate, never changing membership.
2. Convex fusion is bounded: members' semantic part lies in [0, w], lexical part in
   [0, 1 - w] plus `full_match_bonus` for full matches (w = the query's weight, recorded per
   candidate; `semantic_weight` without adaptive fusion); the best member on each side
   reaches the bound.
3. Each part preserves its signal's order among members (more BM25 / more cosine, not less).
4. With enough full matches (hybrid), every full match gains exactly the bonus; with too few,
   nobody does.
5. bm25 mode: nothing semantic; vector mode: nothing lexical.
6. RRF fusion: each member's fused relevance is at most 1 (+ the bonus).
7. Z-score and rank normalisation (`fusion_normalisation`) keep each part within its weight
   and in its signal's order.
"""

from __future__ import annotations

import numpy as np
import pytest

from search.models import Mode
from tests.stages import assert_ranker_contract, engine_with, request, run_alone


def _parts(ctx):
    c = ctx.candidates
    return c.contributions["lexical"], c.contributions["semantic"]


def _weight(ctx) -> float:
    """The semantic weight the stage used for this query (one value for every candidate)."""
    weights = ctx.candidates.details["semantic"]["weight"]
    assert np.all(weights == weights[0])
    return float(weights[0])


@pytest.mark.parametrize("q", ["denim jacket", "black dress", "dress"])
def test_records_lexical_and_semantic_per_candidate(engine, q) -> None:
    ctx, before = run_alone(engine, "fuse", request(q))
    assert_ranker_contract(ctx, before, "lexical")
    assert_ranker_contract(ctx, before, "semantic")
    assert np.array_equal(ctx.candidates.member, before.member)


@pytest.mark.parametrize("q", ["denim jacket", "black dress", "dress", "coffee mug"])
def test_convex_parts_are_bounded_and_reach_their_bounds(engine, q) -> None:
    ctx, _ = run_alone(engine, "fuse", request(q))
    c, r = ctx.candidates, engine.settings.ranking
    w, bonus = _weight(ctx), r.full_match_bonus
    lexical, semantic = _parts(ctx)
    m = c.member
    base = lexical - np.where((c.full_match & m).sum() >= r.relax_below, bonus * c.full_match, 0.0)
    assert (semantic[m] >= 0).all() and (semantic[m] <= w + 1e-9).all()
    assert (base[m] >= 0).all() and (base[m] <= 1 - w + 1e-9).all()
    assert semantic[m].max() == pytest.approx(w)
    assert base[m].max() == pytest.approx(1 - w)


@pytest.mark.parametrize("q", ["denim jacket", "black dress"])
def test_each_part_follows_its_signal(engine, q) -> None:
    ctx, _ = run_alone(engine, "fuse", request(q))
    c = ctx.candidates
    lexical, semantic = _parts(ctx)
    m = np.flatnonzero(c.member & ~c.full_match)  # same bonus among them
    by_bm25 = m[np.argsort(c.bm25[m], kind="stable")]
    assert np.all(np.diff(lexical[by_bm25]) >= -1e-12)
    by_cos = m[np.argsort(c.cosine[m], kind="stable")]
    assert np.all(np.diff(semantic[by_cos]) >= -1e-12)


def test_full_matches_gain_the_bonus_only_when_there_are_enough(engine) -> None:
    r = engine.settings.ranking
    many, _ = run_alone(engine, "fuse", request("dress"))
    c = many.candidates
    assert (c.full_match & c.member).sum() >= r.relax_below
    lexical, _ = _parts(many)
    assert (lexical[c.full_match & c.member] >= r.full_match_bonus).all()
    assert (lexical[~c.full_match] <= 1 - _weight(many) + 1e-9).all()
    few, _ = run_alone(engine, "fuse", request("coffee mug"))
    f = few.candidates
    assert 0 < (f.full_match & f.member).sum() < r.relax_below
    assert (_parts(few)[0] <= 1 - _weight(few) + 1e-9).all()


def test_single_mode_fuses_only_its_own_side(engine) -> None:
    bm25, _ = run_alone(engine, "fuse", request("denim jacket", mode=Mode.bm25))
    lexical, semantic = _parts(bm25)
    assert not semantic.any() and lexical[bm25.candidates.member].max() == pytest.approx(1.0)
    vector, _ = run_alone(engine, "fuse", request("denim jacket", mode=Mode.vector))
    lexical, semantic = _parts(vector)
    assert not lexical.any() and semantic[vector.candidates.member].max() == pytest.approx(1.0)


def test_rrf_relevance_is_at_most_one_plus_the_bonus(index_dir, embedder) -> None:
    with engine_with(index_dir, embedder, ranking={"fusion": "rrf"}) as rrf:
        ctx, before = run_alone(rrf, "fuse", request("black dress"))
        assert_ranker_contract(ctx, before, "lexical")
        lexical, semantic = _parts(ctx)
        m = ctx.candidates.member
        r = rrf.settings.ranking
        bonus_given = (ctx.candidates.full_match & m).sum() >= r.relax_below
        total = lexical + semantic - (r.full_match_bonus * ctx.candidates.full_match if bonus_given else 0.0)
        assert (lexical[m] >= 0).all() and (semantic[m] > 0).all()
        assert total[m].max() <= 1.0 + 1e-9


@pytest.mark.parametrize("normalisation", ["zscore", "rank"])
@pytest.mark.parametrize("q", ["denim jacket", "black dress"])
def test_other_normalisations_stay_within_the_weights_and_follow_the_signals(index_dir, embedder, normalisation, q) -> None:
    with engine_with(index_dir, embedder, ranking={"fusion_normalisation": normalisation}) as other:
        ctx, before = run_alone(other, "fuse", request(q))
        assert_ranker_contract(ctx, before, "semantic")
        c, r = ctx.candidates, other.settings.ranking
        w = _weight(ctx)
        lexical, semantic = _parts(ctx)
        m = c.member
        base = lexical - np.where((c.full_match & m).sum() >= r.relax_below, r.full_match_bonus * c.full_match, 0.0)
        assert (semantic[m] >= 0).all() and (semantic[m] <= w + 1e-9).all()
        assert (base[m] >= 0).all() and (base[m] <= 1 - w + 1e-9).all()
        members = np.flatnonzero(m & ~c.full_match)
        by_cos = members[np.argsort(c.cosine[members], kind="stable")]
        assert np.all(np.diff(semantic[by_cos]) >= -1e-12)
        if normalisation == "rank":  # the best member on each side reaches the bound
            assert semantic[m].max() == pytest.approx(w)
