"""The filter stage (`filter`): assembles the result set, then applies filters as masks.

Properties it guarantees:
1. Candidates are only products the retrievers found (live ones); it records no score.
2. Hybrid membership (before filters): every full match, every semantic neighbour at least
   `semantic_match_threshold` close, every partial match within `partial_match_ratio` of the
   best full match's BM25, and nobody else (when not relaxed).
3. bm25 mode: the members are exactly the full matches (when there are enough).
4. Relaxation: below `relax_below` qualifying products, every product with some query word
   joins; `strong` keeps the products that qualified on their own terms.
5. Filters are masks: a member must pass every filter, the masks say exactly which products
   pass, and filtering changes nobody's signals (BM25, cosine, full match).
"""

from __future__ import annotations

import numpy as np
import pytest

from search.models import Filters, Mode
from tests.stages import products_of, request, run_alone


@pytest.mark.parametrize("q", ["denim jacket", "black dress", "dress zzzqx"])
def test_candidates_are_retrieved_live_products_and_no_score_is_recorded(engine, q) -> None:
    ctx, _ = run_alone(engine, "filter", request(q))
    c = ctx.candidates
    retrieved = set(ctx.lexical_hits) | set(ctx.semantic_hits)
    assert len(c) and set(c.ords.tolist()) <= retrieved
    assert ctx.snapshot.live[c.ords].all()
    assert c.contributions == {}


@pytest.mark.parametrize("q", ["denim jacket", "black dress", "leather ankle boots"])
def test_hybrid_members_are_full_close_or_strong_partial_matches(engine, q) -> None:
    ctx, _ = run_alone(engine, "filter", request(q))
    c, r = ctx.candidates, engine.settings.ranking
    assert not ctx.relaxed
    close = c.semantic_hit & (c.cosine >= r.semantic_match_threshold)
    expected = c.full_match | close
    if c.full_match.any():
        expected |= c.bm25 >= r.partial_match_ratio * c.bm25[c.full_match].max()
    assert np.array_equal(ctx.matched, expected)
    assert np.array_equal(c.member, expected)  # no filter
    assert np.array_equal(ctx.strong, expected)
    assert np.array_equal(c.full_match, np.isin(c.ords, list(ctx.lexical_full)))


def test_bm25_mode_members_are_exactly_the_full_matches(engine) -> None:
    ctx, _ = run_alone(engine, "filter", request("dress", mode=Mode.bm25))
    c = ctx.candidates
    assert c.full_match.sum() >= engine.settings.ranking.relax_below
    assert np.array_equal(c.member, c.full_match)
    assert not ctx.relaxed


def test_too_few_matches_relax_to_products_with_some_query_word(engine) -> None:
    ctx, _ = run_alone(engine, "filter", request("dress zzzqx"))
    c, r = ctx.candidates, engine.settings.ranking
    assert ctx.relaxed
    assert ctx.strong.sum() < r.relax_below
    assert c.member[c.bm25 > 0].all()
    assert not (ctx.strong & ~c.member).any()
    assert c.member.sum() > ctx.strong.sum()


def test_filters_are_masks_that_change_no_signal(engine) -> None:
    plain, _ = run_alone(engine, "filter", request("dress"))
    filters = Filters(colour=["Black", "Red"], price_max=120)
    ctx, _ = run_alone(engine, "filter", request("dress", filters=filters))
    c, p = ctx.candidates, plain.candidates
    assert np.array_equal(c.ords, p.ords)
    for signal in ("bm25", "cosine", "full_match", "semantic_hit"):
        assert np.array_equal(getattr(c, signal), getattr(p, signal), equal_nan=signal == "cosine"), signal
    # Membership before filters is the unfiltered one, widened (relaxed) only when too few
    # members pass the filters: three red dresses are not a page when more match most words.
    assert ctx.matched[p.member].all()
    if not ctx.relaxed:
        assert np.array_equal(ctx.matched, p.member)
    assert set(ctx.filter_masks) == {"colour", "price"}
    products = products_of(ctx, c.ords)
    colour_ok = np.array([bool({"black", "red"} & {x.lower() for x in pr.colours}) for pr in products])
    price = ctx.snapshot.price[c.ords]
    assert np.array_equal(ctx.filter_masks["colour"], colour_ok)
    assert np.array_equal(ctx.filter_masks["price"], price <= 120)
    assert np.array_equal(c.member, ctx.matched & colour_ok & (price <= 120))
    assert 0 < c.member.sum() < ctx.matched.sum(), "the filters keep some members and drop others"
    assert c.contributions == {}
