"""The personalize stage (`personalize`): relevant products matching the visitor's affinities rise.

Properties it guarantees:
1. It records `personalize` with one value per candidate and changes nothing else.
2. Without affinities (no history, or the visitor opted out) every contribution is 0.
3. Every contribution lies in [0, `personalization.impact`].
4. Only products matching the query on their own terms (`ctx.liftable()`) are lifted;
   products added by relaxation never are.
5. Only products matching a preference gain, by the attribute's weight (colour: 0.5).
6. Among products with the same affinity match, the lift grows with relevance.
"""

from __future__ import annotations

import numpy as np
import pytest

from search.affinities import Affinities
from tests.stages import assert_ranker_contract, request, run_alone

RED = Affinities(prefs={"colour": {"red": 1.0}})
RED_LINEN = Affinities(prefs={"colour": {"red": 1.0, "blue": 0.5}, "material": {"linen": 0.8}})


def _colours(ctx, i) -> set[str]:
    return {c.lower() for c in ctx.snapshot.products[ctx.candidates.ords[i]].colours}


@pytest.mark.parametrize("q", ["dress", "shirt", "denim jacket"])
def test_records_one_personalize_value_per_candidate(engine, q) -> None:
    ctx, before = run_alone(engine, "personalize", request(q), RED_LINEN)
    assert_ranker_contract(ctx, before, "personalize")
    assert np.array_equal(ctx.candidates.member, before.member)


def test_no_affinities_means_no_lift(engine) -> None:
    for affinities, personalize in ((None, True), (Affinities(), True), (RED, False)):
        ctx, _ = run_alone(engine, "personalize", request("dress", personalize=personalize), affinities)
        gain = ctx.candidates.contributions["personalize"]
        assert len(gain) and not gain.any()


@pytest.mark.parametrize("q", ["dress", "shirt", "jacket", "red linen"])
def test_lift_is_between_zero_and_impact(engine, q) -> None:
    ctx, _ = run_alone(engine, "personalize", request(q), RED_LINEN)
    gain = ctx.candidates.contributions["personalize"]
    assert gain.any()
    assert (gain >= 0).all() and (gain <= engine.settings.personalization.impact + 1e-12).all()


@pytest.mark.parametrize("q", ["dress", "denim jacket", "dress zzzqx"])
def test_only_liftable_products_are_lifted(engine, q) -> None:
    ctx, _ = run_alone(engine, "personalize", request(q), RED)
    gain = ctx.candidates.contributions["personalize"]
    assert not gain[~ctx.liftable()].any()


def test_relaxed_candidates_are_never_lifted(engine) -> None:
    ctx, _ = run_alone(engine, "personalize", request("dress zzzqx"), RED)
    c = ctx.candidates
    assert ctx.relaxed
    relaxed = c.member & ~ctx.strong
    red = np.array([("red" in _colours(ctx, i)) for i in range(len(c))])
    assert (relaxed & red).any(), "some relaxed member is red"
    assert not c.contributions["personalize"][relaxed].any()


def test_only_products_matching_a_preference_gain_by_its_weight(engine) -> None:
    ctx, _ = run_alone(engine, "personalize", request("dress"), RED)
    c = ctx.candidates
    gain, affinity = c.contributions["personalize"], c.details["personalize"]["affinity"]
    red = np.array([("red" in _colours(ctx, i)) for i in range(len(c))])
    weight = engine.settings.personalization.attribute_weights["colour"]
    assert np.allclose(affinity, weight * red)
    liftable = ctx.liftable()
    assert (gain[liftable & red] > 0).any()
    assert not gain[~red].any()


def test_lift_grows_with_relevance_at_equal_affinity(engine) -> None:
    ctx = engine.context_before("personalize", request("dress"), RED)
    fused = ctx.candidates.score()
    next(s for s in engine.stages if s.name == "personalize").run(ctx)
    c = ctx.candidates
    gain, affinity = c.contributions["personalize"], c.details["personalize"]["affinity"]
    lifted = np.flatnonzero(ctx.liftable() & (affinity > 0))
    assert len(lifted) >= 2
    for a in np.unique(affinity[lifted]):
        same = lifted[affinity[lifted] == a]
        by_relevance = same[np.argsort(fused[same], kind="stable")]
        assert np.all(np.diff(gain[by_relevance]) >= -1e-12)
    best = lifted[np.argmax(fused[lifted])]
    if fused[best] >= fused[ctx.liftable()].max():
        assert gain[best] == pytest.approx(engine.settings.personalization.impact * affinity[best])
