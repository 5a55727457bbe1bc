"""The words stage (`words`): the more query words a product contains, the more it gains, and
a word counts more where it names the product.

Properties it guarantees:
1. It records `words` with one value per candidate and changes nothing else.
2. The contribution is `words_weight` x the product's word credit: per query word it
   contains, the `word_field_weights` weight of its best field (a word the query understanding
   recognised as a facet value counts whole in the attributes), over the number of query
   words; `share` is the unweighted share (both checked against the product's own indexed
   text, field by field), and the `in_<place>` details say where each word was credited.
3. With words found in the same places, more query words means a strictly larger
   contribution; full matches get the whole weight.
4. Products found only by meaning (no BM25) get nothing.
5. Vector mode: no contribution at all.
6. All field weights 1 gives the unweighted share (the stage as it was before field weights).
"""

from __future__ import annotations

import numpy as np
import pytest

from indexer.text import lexical_fields
from search.models import Mode
from search.stages.lexical import FACET, facet_words, slot_fields, word_slots
from tests.stages import (
    assert_ranker_contract,
    engine_with,
    product_stems,
    request,
    run_alone,
    stems,
    word_stems,
)

QUERIES = ["paisley black sports shoes", "leather ankle boots", "red linen shirt", "denim jacket", "navy cotton summer dress"]


def _expected(ctx, product) -> tuple[float, float, dict[str, float]]:
    """Share, credit and per-place shares of the query's words, from the product's own text."""
    ranking = ctx.settings.ranking
    words = word_stems(ctx.plan)
    named = facet_words(ctx)
    fields = {name: set(stems(text)) for name, text in lexical_fields(product).items()}
    places = dict.fromkeys((slot for slot, _ in word_slots(ranking)), 0.0)
    share = credit = 0.0
    for i, alternatives in enumerate(words):
        found = [(slot, weight) for slot, weight in word_slots(ranking)
                 if any(alternatives & fields[f] for f in slot_fields(slot)) and (slot != FACET or i in named)]
        if found:
            slot, weight = found[0]  # word_slots: best place first
            share += 1 / len(words)
            credit += weight / len(words)
            places[slot] += 1 / len(words)
    return share, credit, places


@pytest.mark.parametrize("q", QUERIES)
def test_records_one_words_value_per_candidate(engine, q) -> None:
    ctx, before = run_alone(engine, "words", request(q))
    assert_ranker_contract(ctx, before, "words")
    assert np.array_equal(ctx.candidates.member, before.member)


@pytest.mark.parametrize("q", QUERIES)
def test_contribution_is_weight_times_the_field_weighted_share_of_words(engine, q) -> None:
    ctx, _ = run_alone(engine, "words", request(q))
    c, weight = ctx.candidates, engine.settings.ranking.words_weight
    details = c.details["words"]
    checked = 0
    for i in np.flatnonzero(c.member & (c.bm25 > 0) & ~c.full_match):
        if not c.word_places[i].any():
            continue  # a partial match ranked too low to have its words counted
        product = ctx.snapshot.products[c.ords[i]]
        share, credit, places = _expected(ctx, product)
        assert details["share"][i] == pytest.approx(share), product.title
        assert details["credit"][i] == pytest.approx(credit), product.title
        assert c.contributions["words"][i] == pytest.approx(weight * credit), product.title
        for slot, value in places.items():
            assert details[f"in_{slot}"][i] == pytest.approx(value), (product.title, slot)
        checked += 1
    assert checked >= 5


def test_a_facet_value_the_query_names_counts_whole_in_the_attributes(engine) -> None:
    ctx, _ = run_alone(engine, "words", request("navy cotton summer dress"))
    assert facet_words(ctx), "navy is a colour of the sample shop"
    c = ctx.candidates
    credited = c.details["words"]["in_facet"]
    assert (credited[c.member] > 0).any()
    weights = dict(word_slots(engine.settings.ranking))
    assert weights[FACET] == max(weights.values()) > weights["attributes"]
    assert list(weights)[:2] == [FACET, "title+brand+categories"]


def test_the_weighted_share_is_the_plain_share_when_every_field_counts_whole(index_dir, embedder) -> None:
    whole = dict.fromkeys(("title", "brand", "categories", "attributes", "description"), 1.0)
    with engine_with(index_dir, embedder, ranking={"word_field_weights": whole}) as plain:
        for q in QUERIES:
            ctx, _ = run_alone(plain, "words", request(q))
            c = ctx.candidates
            assert np.allclose(c.details["words"]["credit"], c.details["words"]["share"]), q
            assert np.allclose(c.contributions["words"], plain.settings.ranking.words_weight * c.coverage), q


@pytest.mark.parametrize("q", QUERIES)
def test_the_unweighted_share_is_the_share_of_words_in_any_field(engine, q) -> None:
    ctx, _ = run_alone(engine, "words", request(q))
    c = ctx.candidates
    words = word_stems(ctx.plan)
    counted = np.flatnonzero(c.member & (c.bm25 > 0) & c.word_places.any(axis=1))
    assert len(counted) >= 1
    for i in counted:
        have = product_stems(ctx.snapshot.products[c.ords[i]])
        assert c.coverage[i] == pytest.approx(sum(bool(alts & have) for alts in words) / len(words))


@pytest.mark.parametrize("q", QUERIES)
def test_more_words_in_the_same_places_means_a_larger_contribution(engine, q) -> None:
    ctx, _ = run_alone(engine, "words", request(q))
    c = ctx.candidates
    gain, places = c.contributions["words"], c.word_places
    assert len(np.unique(c.coverage[c.member])) >= 2, "members differ in words contained"
    counted = np.flatnonzero(c.member & places.any(axis=1))
    p, g = places[counted], gain[counted]
    # j has every word i has, where i has it, and more: j gains more.
    covers = (p[None, :, :] >= p[:, None, :]).all(axis=2) & (p.sum(axis=1)[None, :] > p.sum(axis=1)[:, None])
    assert (g[None, :] > g[:, None])[covers].all()
    assert np.allclose(gain[c.full_match], engine.settings.ranking.words_weight)
    partial = c.member & ~c.full_match & (c.bm25 > 0)
    if partial.any() and (c.member & c.full_match).any():
        assert gain[partial].max() < engine.settings.ranking.words_weight


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
