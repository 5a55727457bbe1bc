"""The lexical retriever (`lexical`), on its own over the sample shop.

Properties it guarantees:
1. Every full match contains every query word (one of its alternatives) in some field.
2. Every product it finds contains at least one of the query words.
3. Results are capped as documented: at most `ranking.lexical_candidates` products ranked by
   "any word", plus the full matches (themselves at most that many), while `lexical_total`
   counts every full match, beyond the cap too.
4. A one-word query's hits are all full matches.
5. It scores with BM25: every hit has a positive score.
6. Title word pairs: a product is credited the share of adjacent query-word pairs its title
   says side by side, and only those.
7. In vector mode it finds nothing.
"""

from __future__ import annotations

import pytest

from search.models import Mode
from tests.stages import (
    engine_with,
    product_stems,
    products_of,
    request,
    run_alone,
    title_stems,
    word_stems,
)

QUERIES = ["denim jacket", "leather ankle boots", "black dress", "running shoes"]


@pytest.mark.parametrize("q", QUERIES)
def test_every_full_match_contains_every_query_word(engine, q) -> None:
    ctx, _ = run_alone(engine, "lexical", request(q))
    assert ctx.lexical_full
    words = word_stems(ctx.plan)
    for product in products_of(ctx, ctx.lexical_full):
        have = product_stems(product)
        assert all(alts & have for alts in words), product.title


@pytest.mark.parametrize("q", QUERIES)
def test_every_hit_contains_some_query_word_and_full_matches_are_hits(engine, q) -> None:
    ctx, _ = run_alone(engine, "lexical", request(q))
    words = word_stems(ctx.plan)
    for product in products_of(ctx, ctx.lexical_hits):
        have = product_stems(product)
        assert any(alts & have for alts in words), product.title
    assert set(ctx.lexical_full) <= set(ctx.lexical_hits)
    assert ctx.lexical_total == len(ctx.lexical_full)  # below the cap: counted = found


def test_hits_are_capped_while_the_total_counts_every_full_match(index_dir, embedder, engine) -> None:
    uncapped, _ = run_alone(engine, "lexical", request("black dress"))
    assert len(uncapped.lexical_full) > 10 or len(uncapped.lexical_hits) > 20
    with engine_with(index_dir, embedder, ranking={"lexical_candidates": 10}) as small:
        ctx, _ = run_alone(small, "lexical", request("black dress"))
    any_word_only = set(ctx.lexical_hits) - set(ctx.lexical_full)
    assert len(ctx.lexical_full) <= 10 and len(any_word_only) <= 10
    assert len(ctx.lexical_hits) < len(uncapped.lexical_hits)
    assert ctx.lexical_total == uncapped.lexical_total == len(uncapped.lexical_full)
    # The capped list keeps the best; anything scoring below the best 10 is a full match
    # ranked below the any-word cut, kept for its score.
    best = sorted(uncapped.lexical_hits.values(), reverse=True)[:10]
    below = {o for o, score in ctx.lexical_hits.items() if score < best[-1] - 1e-4}
    assert below <= ctx.lexical_full


def test_one_word_query_hits_are_all_full_matches(engine) -> None:
    ctx, _ = run_alone(engine, "lexical", request("dress"))
    assert ctx.lexical_hits and set(ctx.lexical_hits) == ctx.lexical_full
    assert ctx.lexical_total == len(ctx.lexical_hits)
    assert ctx.lexical_groups == [] and ctx.lexical_pairs == {}


@pytest.mark.parametrize("q", QUERIES)
def test_every_hit_has_a_positive_bm25_score(engine, q) -> None:
    ctx, _ = run_alone(engine, "lexical", request(q))
    assert all(score > 0 for score in ctx.lexical_hits.values())


@pytest.mark.parametrize("q", ["denim jacket", "running shoes", "leather ankle boots"])
def test_title_pairs_credit_exactly_the_titles_saying_adjacent_words_side_by_side(engine, q) -> None:
    ctx, _ = run_alone(engine, "lexical", request(q))
    words = word_stems(ctx.plan)
    pairs = list(zip(words, words[1:], strict=False))
    assert ctx.lexical_pairs, "some title says the words together"
    for o in ctx.lexical_hits:
        title = title_stems(ctx.snapshot.products[o])
        adjacent = list(zip(title, title[1:], strict=False))
        said = sum(any(a in left and b in right for a, b in adjacent) for left, right in pairs)
        assert ctx.lexical_pairs.get(o, 0.0) == pytest.approx(said / len(pairs)), ctx.snapshot.products[o].title


def test_vector_mode_finds_nothing_lexically(engine) -> None:
    ctx, _ = run_alone(engine, "lexical", request("denim jacket", mode=Mode.vector))
    assert ctx.lexical_hits == {} and ctx.lexical_full == set() and ctx.lexical_total == 0
