"""The stock stage (`stock`): sold-out products sink; relevant ones in the visitor's size rise.

Properties it guarantees:
1. It records `stock` with one value per candidate and changes nothing else (in "sink" mode).
2. Sold-out products lose `stock.sold_out_penalty`; without a known size, in-stock ones get 0.
3. After it, every sold-out member scores below every in-stock member.
4. With a known size (a size filter, else learned), liftable in-stock products available in it
   (or sold without sizes) gain `stock.size_boost`; products sold out in it, or not liftable,
   do not.
5. In "hide" mode sold-out products leave the result set instead, with no penalty.
"""

from __future__ import annotations

import numpy as np
import pytest

from search.affinities import Affinities
from tests.stages import assert_ranker_contract, engine_with, request, run_alone

SIZE_M = Affinities(prefs={"size": {"m": 1.0}})


@pytest.mark.parametrize("q", ["dress", "shirt", "denim jacket"])
def test_records_one_stock_value_per_candidate(engine, q) -> None:
    ctx, before = run_alone(engine, "stock", request(q))
    assert_ranker_contract(ctx, before, "stock")
    assert np.array_equal(ctx.candidates.member, before.member)


@pytest.mark.parametrize("q", ["dress", "shirt", ""])
def test_sold_out_products_lose_the_penalty_and_others_nothing(engine, q) -> None:
    ctx, _ = run_alone(engine, "stock", request(q))
    c = ctx.candidates
    sold_out = ~ctx.snapshot.in_stock[c.ords]
    assert (sold_out & c.member).any(), "the sample shop has sold-out matches"
    gain = c.contributions["stock"]
    assert np.allclose(gain[sold_out], -engine.settings.stock.sold_out_penalty)
    assert not gain[~sold_out].any()


@pytest.mark.parametrize("q", ["dress", "shirt", "jacket", ""])
def test_sold_out_members_end_below_in_stock_ones(engine, q) -> None:
    ctx, _ = run_alone(engine, "stock", request(q), SIZE_M)
    c = ctx.candidates
    score, sold_out = c.score(), ~ctx.snapshot.in_stock[c.ords]
    low, high = score[c.member & sold_out], score[c.member & ~sold_out]
    assert len(low) and len(high)
    assert low.max() < high.min()


@pytest.mark.parametrize("source", ["profile", "filter"])
def test_liftable_products_available_in_the_visitors_size_are_lifted(engine, source) -> None:
    if source == "profile":
        ctx, _ = run_alone(engine, "stock", request("dress"), SIZE_M)
    else:
        ctx, _ = run_alone(engine, "stock", request("dress", filters={"size": ["M"]}))
    c, boost = ctx.candidates, engine.settings.stock.size_boost
    assert ctx.notes["preferred_sizes"] == (["m"] if source == "profile" else ["M"])
    gain = c.contributions["stock"]
    products = [ctx.snapshot.products[o] for o in c.ords]
    in_stock = ctx.snapshot.in_stock[c.ords]
    fits = np.array([("M" in p.available_sizes) or not p.sizes for p in products]) & in_stock
    liftable = ctx.liftable()
    assert (fits & liftable).any() and (~fits & in_stock).any()
    assert np.allclose(gain[fits & liftable], boost)
    assert not gain[~fits & in_stock].any()
    assert not gain[~liftable & in_stock].any()


def test_hide_mode_removes_sold_out_products_without_penalty(index_dir, embedder) -> None:
    with engine_with(index_dir, embedder, stock={"sold_out": "hide"}) as hiding:
        ctx, before = run_alone(hiding, "stock", request("dress"))
    c = ctx.candidates
    sold_out = ~ctx.snapshot.in_stock[c.ords]
    assert (before.member & sold_out).any()
    assert not (c.member & sold_out).any()
    assert np.array_equal(c.member, before.member & ~sold_out)
    assert not c.contributions["stock"].any()
