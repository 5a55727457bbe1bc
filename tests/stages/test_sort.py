"""The sort stage (`sort`): the final order of the result set.

Properties it guarantees:
1. `order` lists every member exactly once and nothing else; scores are left alone.
2. Relevance: score never increases down the list; equal scores keep ordinal order.
3. Price ascending / descending: prices in order (products without a price last), relevance
   breaking ties.
4. Newest: creation time never increases down the list, relevance breaking ties.
5. An empty result set gives an empty order.
"""

from __future__ import annotations

import numpy as np
import pytest

from search.models import Sort
from tests.stages import request, run_alone

QUERIES = ["dress", "denim jacket", "shirt", ""]


def _sorted(engine, q, sort=Sort.relevance, **kw):
    ctx, before = run_alone(engine, "sort", request(q, sort=sort, **kw))
    c = ctx.candidates
    return ctx, before, c.score()[ctx.order], c.ords[ctx.order]


@pytest.mark.parametrize("sort", list(Sort))
@pytest.mark.parametrize("q", QUERIES)
def test_order_lists_every_member_once_and_changes_no_score(engine, q, sort) -> None:
    ctx, before, _, _ = _sorted(engine, q, sort)
    c = ctx.candidates
    assert len(ctx.order) == c.member.sum() > 0
    assert len(set(ctx.order.tolist())) == len(ctx.order)
    assert c.member[ctx.order].all()
    assert np.array_equal(c.member, before.member) and np.array_equal(c.ords, before.ords)
    assert c.contributions.keys() == before.contributions.keys()
    assert all(np.array_equal(c.contributions[k], before.contributions[k]) for k in before.contributions)


@pytest.mark.parametrize("q", QUERIES)
def test_relevance_order_is_by_score_then_ordinal(engine, q) -> None:
    _, _, score, ords = _sorted(engine, q)
    assert np.all(np.diff(score) <= 0)
    ties = np.diff(score) == 0
    assert np.all(np.diff(ords)[ties] > 0)


@pytest.mark.parametrize("q", QUERIES)
def test_price_sorts_order_by_price_with_relevance_breaking_ties(engine, q) -> None:
    for sort, sign in ((Sort.price_asc, 1), (Sort.price_desc, -1)):
        ctx, _, score, ords = _sorted(engine, q, sort)
        price = ctx.snapshot.price[ords]
        known = ~np.isnan(price)
        assert known.any()
        # Products without a price come last, in either direction.
        assert not (np.isnan(price[:-1]) & known[1:]).any()
        p = price[known]
        assert np.all(sign * np.diff(p) >= 0)
        same = np.diff(p) == 0
        assert np.all(np.diff(score[known])[same] <= 0)
    assert len(set(price[known].tolist())) > 1


@pytest.mark.parametrize("q", QUERIES)
def test_newest_first_with_relevance_breaking_ties(engine, q) -> None:
    ctx, _, score, ords = _sorted(engine, q, Sort.newest)
    created = ctx.snapshot.created[ords]
    assert np.all(np.diff(created) <= 0)
    assert np.all(np.diff(score)[np.diff(created) == 0] <= 0)


def test_empty_result_set_gives_empty_order(engine) -> None:
    ctx, _, _, _ = _sorted(engine, "shirt", filters={"price_min": 1_000_000})
    assert not ctx.candidates.member.any()
    assert len(ctx.order) == 0
