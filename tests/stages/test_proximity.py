"""The proximity stage (`proximity`): titles saying the query words together rank higher.

Properties it guarantees:
1. It records `proximity` with one value per candidate and changes nothing else.
2. Only products containing every query word gain.
3. A full match gains `proximity_weight` x the share of adjacent query-word pairs its title
   says side by side: "Denim Jacket" gains, a denim jacket not saying it in its title does not.
4. Contributions lie in [0, proximity_weight]; one-word queries give nobody anything.
5. Vector mode: no contribution at all.
"""

from __future__ import annotations

import numpy as np
import pytest

from search.models import Mode
from tests.stages import assert_ranker_contract, request, run_alone, title_stems, word_stems

QUERIES = ["denim jacket", "running shoes", "cotton tee", "leather ankle boots", "black running shoes"]


@pytest.mark.parametrize("q", QUERIES)
def test_records_one_proximity_value_per_candidate(engine, q) -> None:
    ctx, before = run_alone(engine, "proximity", request(q))
    assert_ranker_contract(ctx, before, "proximity")
    assert np.array_equal(ctx.candidates.member, before.member)


@pytest.mark.parametrize("q", ["black running shoes", "blue slim jeans", "navy crew neck tee"])
def test_only_products_with_every_word_gain(engine, q) -> None:
    ctx, _ = run_alone(engine, "proximity", request(q))
    c = ctx.candidates
    gain = c.contributions["proximity"]
    # Partial matches whose titles say a pair of the words ("Black Running Tights") exist...
    assert (c.proximity[~c.full_match] > 0).any()
    # ...and gain nothing; full matches saying a pair do.
    assert not gain[~c.full_match].any()
    assert gain[c.full_match].any()


@pytest.mark.parametrize("q", QUERIES)
def test_titles_saying_the_words_side_by_side_gain_more(engine, q) -> None:
    ctx, _ = run_alone(engine, "proximity", request(q))
    c, weight = ctx.candidates, engine.settings.ranking.proximity_weight
    words = word_stems(ctx.plan)
    pairs = list(zip(words, words[1:], strict=False))
    gains = set()
    for i in np.flatnonzero(c.full_match):
        title = title_stems(ctx.snapshot.products[c.ords[i]])
        adjacent = list(zip(title, title[1:], strict=False))
        said = sum(any(a in left and b in right for a, b in adjacent) for left, right in pairs) / len(pairs)
        assert c.contributions["proximity"][i] == pytest.approx(weight * said), ctx.snapshot.products[c.ords[i]].title
        gains.add(said)
    assert len(gains) >= 2 or q == "leather ankle boots", "some full matches say the words together, some not"


@pytest.mark.parametrize("q", [*QUERIES, "dress"])
def test_contributions_are_bounded_by_the_weight(engine, q) -> None:
    ctx, _ = run_alone(engine, "proximity", request(q))
    gain = ctx.candidates.contributions["proximity"]
    assert (gain >= 0).all() and (gain <= engine.settings.ranking.proximity_weight + 1e-12).all()
    if q == "dress":
        assert not gain.any()


def test_vector_mode_records_no_proximity(engine) -> None:
    ctx, _ = run_alone(engine, "proximity", request("denim jacket", mode=Mode.vector))
    assert "proximity" not in ctx.candidates.contributions
