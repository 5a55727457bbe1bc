"""The words stage (`words`): the more query words a product contains, the more it gains.

Properties it guarantees:
1. It records `words` with one value per candidate and changes nothing else.
2. The contribution is `words_weight` x the share of query words the product contains in
   any field (checked against the product's own indexed text).
3. More query words contained means a strictly larger contribution; full matches get the
   whole weight.
4. Products found only by meaning (no BM25) get nothing.
5. Vector mode: no contribution at all.
"""

from __future__ import annotations

import numpy as np
import pytest

from search.models import Mode
from tests.stages import assert_ranker_contract, product_stems, request, run_alone, word_stems

QUERIES = ["paisley black sports shoes", "leather ankle boots", "red linen shirt", "denim jacket"]


@pytest.mark.parametrize("q", QUERIES)
def test_records_one_words_value_per_candidate(engine, q) -> None:
    ctx, before = run_alone(engine, "words", request(q))
    assert_ranker_contract(ctx, before, "words")
    assert np.array_equal(ctx.candidates.member, before.member)


@pytest.mark.parametrize("q", QUERIES)
def test_contribution_is_weight_times_share_of_words_contained(engine, q) -> None:
    ctx, _ = run_alone(engine, "words", request(q))
    c, weight = ctx.candidates, engine.settings.ranking.words_weight
    words = word_stems(ctx.plan)
    checked = 0
    for i in np.flatnonzero(c.member & (c.bm25 > 0)):
        have = product_stems(ctx.snapshot.products[c.ords[i]])
        share = sum(bool(alts & have) for alts in words) / len(words)
        assert c.contributions["words"][i] == pytest.approx(weight * share), ctx.snapshot.products[c.ords[i]].title
        checked += 1
    assert checked >= 5


@pytest.mark.parametrize("q", QUERIES)
def test_more_words_contained_means_a_larger_contribution(engine, q) -> None:
    ctx, _ = run_alone(engine, "words", request(q))
    c = ctx.candidates
    share, gain = c.details["words"]["share"], c.contributions["words"]
    assert len(np.unique(share[c.member])) >= 2, "members differ in words contained"
    for s in np.unique(share):
        for t in np.unique(share):
            if s < t:
                assert gain[share == s].max() < gain[share == t].min()
    assert np.allclose(gain[c.full_match], engine.settings.ranking.words_weight)


def test_products_found_only_by_meaning_gain_nothing(engine) -> None:
    ctx, _ = run_alone(engine, "words", request("denim jacket"))
    c = ctx.candidates
    meaning_only = c.bm25 == 0
    assert (meaning_only & c.member).any()
    assert not c.contributions["words"][meaning_only].any()


def test_vector_mode_records_no_words(engine) -> None:
    ctx, before = run_alone(engine, "words", request("denim jacket", mode=Mode.vector))
    assert "words" not in ctx.candidates.contributions
    assert ctx.candidates.contributions.keys() == before.contributions.keys()
