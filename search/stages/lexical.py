"""Lexical retrieval: BM25 over the weighted fields with typo and prefix alternatives.

Two tantivy queries share their clauses: every word's alternatives OR'ed across the boosted
fields. "All words" (each word group required) decides who fully matches, and gives the exact
match count; "any word" ranks the candidates so that partial matches can still be fused with
the semantic side and used when relaxation is needed. When the request has filters, both run
with the filters as a required, zero-scoring clause (`ctx.retrieval_filter`), so the best
candidates are drawn from the products that qualify; a filtered pool that needs only the
result set's members runs "all words" alone (search.stages.exact knows the rest of them).
"""

from __future__ import annotations

import math

import numpy as np
import tantivy

from search.models import Mode
from search.pipeline import SearchContext, StageKind
from search.query import Alternative, QueryTerm, stem
from search.settings import RankingSettings
from search.understanding import stems

_SHOULD = tantivy.Occur.Should
_MUST = tantivy.Occur.Must
# Word pairs checked for proximity (a 7-word query has 6). Side by side means no word between:
# allowing one (slop 1) measured worse on CrowdFlower (nDCG@10 0.7816 vs 0.7839).
MAX_PAIRS = 6
PHRASE_SLOP = 0
# Where a product has each query word is spelt in the digits of one float32 score, whose
# integers are exact up to 2^24 (search.stages.lexical.words_found).
FLOAT32_DIGITS = 24
# The place of a query word recognised as a facet value and found in the attributes.
FACET = "facet"
ATTRIBUTES = "attributes"
NOT_FACETS = frozenset({"price", "cheap", "filler"})  # search.understanding.Recognised kinds


class LexicalRetrieval:
    name = "lexical"
    kind = StageKind.retriever
    browse = False

    def run(self, ctx: SearchContext) -> None:
        if ctx.request.mode == Mode.vector or not ctx.plan.terms:
            return
        snapshot = ctx.snapshot
        ranking = ctx.settings.ranking
        schema = snapshot.schema
        groups = []
        for term in ctx.plan.terms:
            clauses = []
            for alt in term.alternatives:
                for field_name, boost in ranking.field_boosts.items():
                    query = tantivy.Query.term_query(schema, field_name, alt.stem, index_option="freq")
                    if alt.extra_stems:  # a phrase: every word in the same field
                        query = tantivy.Query.boolean_query(
                            [(_MUST, query)]
                            + [(_MUST, tantivy.Query.term_query(schema, field_name, s, index_option="freq")) for s in alt.extra_stems]
                        )
                    clauses.append((_SHOULD, tantivy.Query.boost_query(query, boost * alt.weight)))
            groups.append(tantivy.Query.boolean_query(clauses))
        searcher = snapshot.searcher
        limit = ranking.lexical_candidates
        any_word = tantivy.Query.boolean_query([(_SHOULD, g) for g in groups])
        single = len(groups) == 1
        all_words = any_word if single else tantivy.Query.boolean_query([(_MUST, g) for g in groups])
        # Kept unfiltered: the exact result set (search.stages.exact) is defined by the words alone.
        ctx.lexical_queries = (any_word, all_words)
        if ctx.members_only and not single:
            # A filtered pool of the result set's members (search.stages.exact): the words'
            # full matches and the admitted extras, whose BM25 the match set knows. A product
            # matching every word scores the same in both searches, so the any-word one,
            # the costlier, is not needed.
            ctx.lexical_hits = {}
        else:
            ranked = searcher.search(within(any_word, ctx.retrieval_filter), limit, count=single)
            ords = searcher.fast_field_values("ord", [address for _, address in ranked.hits])
            ctx.lexical_hits = {int(o or 0): float(score) for (score, _), o in zip(ranked.hits, ords, strict=True)}
        if single:
            ctx.lexical_full = set(ctx.lexical_hits)
            ctx.lexical_total = ranked.count  # type: ignore[attr-defined]
            return
        full = searcher.search(within(all_words, ctx.retrieval_filter), limit, count=True)
        ctx.lexical_total = full.count  # type: ignore[attr-defined]
        full_ords = searcher.fast_field_values("ord", [address for _, address in full.hits])
        ctx.lexical_full = {int(o or 0) for o in full_ords}
        # Every full match takes its every-word score, also those the any-word search ranked:
        # the two agree only to float32 rounding (tantivy sums them in another order), and a
        # filtered pool of members, which runs this search alone, must score them the same.
        for (score, _), o in zip(full.hits, full_ords, strict=True):
            ctx.lexical_hits[int(o or 0)] = float(score)
        ctx.lexical_groups = groups  # for counting words per product once candidates are known
        if ranking.proximity_weight > 0:
            ctx.lexical_pairs = title_phrase_pairs(ctx, searcher, limit)


def within(query: tantivy.Query, restriction: tantivy.Query | None) -> tantivy.Query:
    """`query` restricted to the products `restriction` matches, with `query`'s scores unchanged
    (the restriction is a required clause scoring 0: BM25 stays what the words give)."""
    if restriction is None:
        return query
    return tantivy.Query.boolean_query([(_MUST, query), (_MUST, tantivy.Query.const_score_query(restriction, 0.0))])


def word_slots(ranking: RankingSettings) -> tuple[tuple[str, float], ...]:
    """Where a query word can be found, best first, each with what the word counts for there
    (ranking.word_field_weights): the lexical fields, those of equal weight together in one
    place named by them ("title+brand+categories": one clause to search, not three), and FACET,
    a word the query understanding recognised as a facet value found in the attributes, which
    counts as much as the best field ("navy" in a product's colour names it as well as its
    title would)."""
    weights = {name: ranking.word_weight_of(name) for name in ranking.field_boosts}
    tiers = [("+".join(n for n in weights if weights[n] == w), w) for w in sorted(set(weights.values()), reverse=True)]
    if ATTRIBUTES in weights:
        tiers.insert(0, (FACET, tiers[0][1]))
    return tuple(tiers)


def slot_fields(slot: str) -> list[str]:
    """The lexical fields of one place of word_slots."""
    return [ATTRIBUTES] if slot == FACET else slot.split("+")


def facet_words(ctx: SearchContext) -> set[int]:
    """Positions of the query's words that the query understanding recognised as facet values."""
    understood = ctx.plan.understood
    if understood is None:
        return set()
    named = {s for r in understood.recognised if r.kind not in NOT_FACETS for s in stems(r.text)}
    return {i for i, term in enumerate(ctx.plan.terms) if stem(term.word) in named}


def word_in_fields(schema: tantivy.Schema, term: QueryTerm, fields: list[str]) -> tantivy.Query:
    """One query word (any of its alternatives: typo, synonym, completion) in any of `fields`."""
    clauses = []
    for field_name in fields:
        for alt in term.alternatives:
            query = tantivy.Query.term_query(schema, field_name, alt.stem, index_option="freq")
            if alt.extra_stems:  # a phrase: every word in the same field
                query = tantivy.Query.boolean_query(
                    [(_MUST, query)]
                    + [(_MUST, tantivy.Query.term_query(schema, field_name, s, index_option="freq")) for s in alt.extra_stems]
                )
            clauses.append((_SHOULD, query))
    return tantivy.Query.boolean_query(clauses)


def words_found(ctx: SearchContext, ords: np.ndarray) -> np.ndarray:
    """Where each of `ords` has the query's words: a (len(ords), len(word_slots)) array, the
    share of the query's words whose best place (word_slots order) is each slot. A row sums to
    the share of the words the product contains in any field.

    One search restricted to those products (a union of their ordinal terms: cheaper than a
    term-set query, which walks the whole ordinal dictionary) per as many words as
    fit (10 with the default weights: log2(len(slots) + 1) bits each in 24). Each
    word's clause is the best (disjunction max) of its places, each place scoring its rank
    (the best place the highest) as one digit of a number in base len(slots) + 1 at the word's
    position, so a product's score spells the best place of each word. The digits stay exact
    in a float32 score."""
    terms = ctx.plan.terms
    slots = word_slots(ctx.settings.ranking)
    out = np.zeros((len(ords), len(slots)))
    if not terms or not len(ords):
        return out
    base = len(slots) + 1
    per_search = max(1, int(FLOAT32_DIGITS // math.log2(base)))
    named = facet_words(ctx)
    schema = ctx.snapshot.schema
    among = tantivy.Query.const_score_query(
        tantivy.Query.boolean_query([(_SHOULD, tantivy.Query.term_query(schema, "ord", int(o))) for o in ords]), 0.0
    )
    position = {int(o): i for i, o in enumerate(ords)}
    searcher = ctx.snapshot.searcher
    for start in range(0, len(terms), per_search):
        chunk = terms[start : start + per_search]
        words = []
        for j, term in enumerate(chunk):
            places = []
            for rank, (slot, _) in enumerate(slots):
                if slot == FACET and start + j not in named:
                    continue
                digit = len(slots) - rank
                found = word_in_fields(schema, term, slot_fields(slot))
                places.append(tantivy.Query.const_score_query(found, float(digit * base**j)))
            words.append((_SHOULD, tantivy.Query.disjunction_max_query(places, 0.0)))
        query = tantivy.Query.boolean_query([(_MUST, among), (_MUST, tantivy.Query.boolean_query(words))])
        hits = searcher.search(query, len(ords)).hits
        for (score, _), o in zip(hits, searcher.fast_field_values("ord", [a for _, a in hits]), strict=True):
            at = position.get(int(o or 0))
            if at is None:
                continue
            value = int(round(score))
            for _ in chunk:
                value, digit = divmod(value, base)
                if digit:
                    out[at, len(slots) - digit] += 1
    return out / len(terms)


def title_phrase_pairs(ctx: SearchContext, searcher: tantivy.Searcher, limit: int) -> dict[int, float]:
    """Ordinal -> share of the query's adjacent word pairs found side by side in the title.

    "coffee cup" is a cup, "12-Cup Coffee Maker" is not: both contain every word, but only one
    says them together. Each pair is a phrase query over the title (positions are indexed),
    with the two best alternatives of each word, so a corrected typo or a synonym still counts.
    """
    terms = ctx.plan.terms
    pairs = list(zip(terms, terms[1:], strict=False))[:MAX_PAIRS]
    if not pairs:
        return {}
    schema = ctx.snapshot.schema
    found: dict[int, float] = {}
    for left, right in pairs:
        phrases = []
        for a in _best(left):
            for b in _best(right):
                stems: list[str | tuple[int, str]] = [a.stem, *a.extra_stems, b.stem, *b.extra_stems]
                phrases.append((_SHOULD, tantivy.Query.phrase_query(schema, "title", stems, PHRASE_SLOP)))
        hits = searcher.search(within(tantivy.Query.boolean_query(phrases), ctx.retrieval_filter), limit).hits
        for o in searcher.fast_field_values("ord", [address for _, address in hits]):
            key = int(o or 0)
            found[key] = found.get(key, 0.0) + 1.0 / len(pairs)
    return found


def _best(term: QueryTerm) -> list[Alternative]:
    return sorted(term.alternatives, key=lambda a: -a.weight)[:2]
