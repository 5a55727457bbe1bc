"""Exact result sets: every product that matches a query, counted, sorted and paged in the index.

Ranking scores a pool of the best candidates (ranking.lexical_candidates by BM25, plus the
semantic neighbours). The *result set* is not that pool: it is every product that

  - contains every query word (any word when the query was relaxed), as the text index finds
    it: `MatchSet.query`, a tantivy query without any cap; plus
  - the products the fusion rules admit beyond the words (close enough in meaning, strong
    partial matches: search.stages.filter.membership), decided once per query text on the
    unfiltered pool: `MatchSet.extras`, a short list of ordinals.

Both are fixed by the query's words, not by the filters, so a filter only narrows the result
set: the count shown next to a facet value is exactly the total obtained by selecting it.

With filters, retrieval itself is filtered when the unfiltered pool could not hold every
match (a lexical search reached ranking.lexical_candidates): the words run with the filters as
a zero-scoring required clause, so the ranked pool is the best of the qualifying products, and
the admitted extras that qualify join it (they are the only semantic neighbours that can be
members, so the vector index is not searched again). When the unfiltered pool holds every
match, filtering it is already exact. In vector mode (no words: the result set is the nearest
neighbours), the semantic side searches only among qualifying products.

Counting happens in the index: totals and facet counts are tantivy aggregations over the
filter fields (indexer.lexical) of `query` AND the filters, plus numpy counts over the few
extras; sorting by price or newness asks tantivy for the first `offset + limit` products in
that order, with relevance breaking ties (pool score, then BM25, then ordinal); relevance
paging past the pool continues with the remaining matches in BM25 order. No path
materialises every matching product in Python.

Paging reaches every product up to MAX_WINDOW = the largest offset plus the largest page.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import tantivy

from indexer.lexical import (
    F_BRAND,
    F_CATEGORY,
    F_COLOUR,
    F_CREATED,
    F_IN_STOCK,
    F_PRICE,
    F_SIZE,
    keyword,
)
from search.columns import PRICE_EDGES, price_bucket_labels, ranked_counts
from search.models import MAX_LIMIT, MAX_OFFSET, Filters, Mode, Sort
from search.pipeline import Candidates, SearchContext
from search.stages.filter import contains, counts_words, fresh, masks_at, membership, words_counted
from search.stages.lexical import within, words_found

MAX_WINDOW = MAX_OFFSET + MAX_LIMIT
FACETS = ("brand", "category", "colour", "size")
_KEYWORD_FIELD = {"brand": F_BRAND, "category": F_CATEGORY, "colour": F_COLOUR, "size": F_SIZE}
_PRICE_LABELS = price_bucket_labels()
_MUST = tantivy.Occur.Must
_SHOULD = tantivy.Occur.Should
_MUST_NOT = tantivy.Occur.MustNot
# Facet counts kept per match set (one query text): distinct filter combinations shoppers use.
_COUNTS_KEPT = 64


@dataclass(frozen=True, eq=False)
class MatchSet:
    """The exact result set of one query text (before filters); see the module docstring."""

    query: Any  # tantivy.Query: every word (any word when relaxed)
    relaxed: bool  # the query was relaxed (too few products matched on their own terms)
    extras: np.ndarray  # sorted ordinals admitted besides `query` (none of them matches it)
    extras_bm25: np.ndarray  # their BM25 (0: found by meaning only)
    extras_cosine: np.ndarray  # their cosine to the query (nan: not a semantic neighbour)
    extras_strong: np.ndarray  # which of them match on their own terms (may be lifted)
    extras_places: np.ndarray  # where they have the query's words (Candidates.word_places)
    extras_counted: np.ndarray  # whose words the unfiltered pool counted (search.stages.filter)
    shown_relaxed: bool  # what the result reports as `relaxed`
    pool_capped: bool  # the unfiltered pool may lack matches (a lexical search hit its cap)
    counts: dict[tuple, tuple[int, dict[str, dict[str, int]]]] = field(default_factory=dict)
    _measured: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    def extras_words(self, ctx: SearchContext) -> tuple[np.ndarray, np.ndarray]:
        """The extras' BM25 and where they have the query's words, as a filtered pool gives them.

        The unfiltered pool knows them only for extras above its any-word cut (an extra found
        by meaning may contain some words and rank below it); a filtered pool would find them
        with its own any-word search. They are measured instead, once per query text, the
        first time a filtered pool needs them: then no filtered pool runs that search
        (search.stages.lexical), and every pool gives an extra the same signals."""
        if self.relaxed or not self.pool_capped or not len(self.extras):
            return self.extras_bm25, self.extras_places
        if "words" not in self._measured:
            self._measured["words"] = _words_of(ctx, self)
        return self._measured["words"]


def hides_sold_out(ctx: SearchContext) -> bool:
    return ctx.settings.stock.sold_out == "hide"


# ---- filters as index clauses and as masks ------------------------------------------------


def _one_of(schema: tantivy.Schema, field_name: str, values: list[str]) -> tantivy.Query:
    terms = [tantivy.Query.term_query(schema, field_name, keyword(v)) for v in values if v.strip()]
    if len(terms) == 1:
        return terms[0]
    return tantivy.Query.boolean_query([(_SHOULD, t) for t in terms])


def restriction(
    schema: tantivy.Schema, filters: Filters, hide_sold_out: bool, skip: str | None = None,
    hidden: Sequence[str] = (),
) -> tantivy.Query | None:
    """The request's filters (except `skip`) as one tantivy query; None when there are none.
    Same semantics as search.stages.filter.filter_masks: values of one field OR, fields AND.
    `hidden`: product ids merchandising rules hide (never shown, never counted)."""
    clauses = []
    for name, index_field in _KEYWORD_FIELD.items():
        values = getattr(filters, name)
        if values and name != skip:
            clauses.append(_one_of(schema, index_field, values))
    if (filters.price_min is not None or filters.price_max is not None) and skip != "price":
        clauses.append(tantivy.Query.range_query(schema, F_PRICE, tantivy.FieldType.Float, filters.price_min, filters.price_max))
    if filters.in_stock is not None:
        clauses.append(tantivy.Query.term_query(schema, F_IN_STOCK, int(filters.in_stock)))
    if hide_sold_out:
        clauses.append(tantivy.Query.term_query(schema, F_IN_STOCK, 1))
    if hidden:
        clauses.append(tantivy.Query.boolean_query(
            [(_MUST, tantivy.Query.all_query())] + [(_MUST_NOT, tantivy.Query.term_query(schema, "id", pid)) for pid in hidden]
        ))
    if not clauses:
        return None
    if len(clauses) == 1:
        return clauses[0]
    return tantivy.Query.boolean_query([(_MUST, c) for c in clauses])


def filter_masks_at(ctx: SearchContext, ords: np.ndarray, filters: Filters) -> dict[str, np.ndarray]:
    """Per active filter (and the sold-out rule), which of `ords` pass it."""
    s = ctx.snapshot
    masks = masks_at(s, ords, filters)  # the filters themselves: the filter stage's own masks
    if hides_sold_out(ctx):
        masks["sold_out"] = s.in_stock[ords].copy()
    hidden = hidden_ids(ctx)
    if hidden:
        hidden_ords = [s.id_to_ord[p] for p in hidden if p in s.id_to_ord]
        masks["hidden"] = ~np.isin(ords, hidden_ords)
    return masks


def hidden_ids(ctx: SearchContext) -> tuple[str, ...]:
    """Products the request's merchandising rules hide: outside totals, facets and pages."""
    plan = ctx.merchandising
    return plan.hidden_ids() if plan is not None else ()


def _all_but(masks: dict[str, np.ndarray], skip: str | None, n: int) -> np.ndarray:
    out = np.ones(n, dtype=bool)
    for name, mask in masks.items():
        if name != skip:
            out &= mask
    return out


def ords_query(schema: tantivy.Schema, ords: np.ndarray) -> tantivy.Query:
    """Exactly these products (a union of ordinal terms: cheaper than a term-set query)."""
    return tantivy.Query.boolean_query([(_SHOULD, tantivy.Query.term_query(schema, "ord", int(o))) for o in ords])


def _ords_of(searcher: tantivy.Searcher, hits: list) -> np.ndarray:
    values = searcher.fast_field_values("ord", [address for _, address in hits])
    return np.fromiter((int(v or 0) for v in values), dtype=np.int64, count=len(hits))


# ---- the match set, decided on the unfiltered pool ---------------------------------------


def admit_strong_partials(ctx: SearchContext) -> None:
    """Strong partial matches (BM25 >= partial_match_ratio x the best full match) are members
    wherever they rank: when the any-word search was cut above that bar, fetch the rest into
    the pool (`ctx.lexical_hits`) so that none is left out of the result set."""
    ranking = ctx.settings.ranking
    if ctx.request.mode != Mode.hybrid or ranking.partial_match_ratio <= 0 or len(ctx.lexical_groups) < 2:
        return
    limit = ranking.lexical_candidates
    if len(ctx.lexical_hits) < limit or not ctx.lexical_full or ctx.lexical_queries is None:
        return
    bar = ranking.partial_match_ratio * max(ctx.lexical_hits[o] for o in ctx.lexical_full)
    scores = np.fromiter(ctx.lexical_hits.values(), dtype=np.float64, count=len(ctx.lexical_hits))
    if np.partition(scores, len(scores) - limit)[len(scores) - limit] < bar:
        return  # the any-word cut is below the bar: every strong partial match is in the pool
    searcher = ctx.snapshot.searcher
    query = within(ctx.lexical_queries[0], ctx.retrieval_filter)
    n = limit * 4
    while True:
        hits = searcher.search(query, n, count=False).hits
        if len(hits) < n or hits[-1][0] < bar:
            break
        n *= 4
    hits = [h for h in hits if h[0] >= bar]
    for (score, _), o in zip(hits, _ords_of(searcher, hits).tolist(), strict=True):
        ctx.lexical_hits.setdefault(o, float(score))


def match_set(ctx: SearchContext, assembled: Candidates) -> MatchSet | None:
    """The exact result set of the query's words, from the unfiltered pool's membership.

    None in vector mode and for queries without searchable words: their result set is the
    nearest neighbours, i.e. the pool itself.
    """
    mode = ctx.request.mode
    if mode == Mode.vector or ctx.lexical_queries is None:
        return None
    c = fresh(assembled)
    scratch = replace(ctx, candidates=c)
    membership(scratch, c)
    relaxed = bool(scratch.strong.sum() < ctx.settings.ranking.relax_below)
    any_word, all_words = ctx.lexical_queries
    query = any_word if relaxed else all_words
    matched_by_query = (c.bm25 > 0) if relaxed else c.full_match
    extra = np.flatnonzero(c.member & ~matched_by_query)
    limit = ctx.settings.ranking.lexical_candidates
    truncated = ctx.lexical_total > limit or len(ctx.lexical_hits) >= limit
    if len(extra) and truncated:
        # Matches of `query` the capped searches did not return: they belong to `query`.
        searcher = ctx.snapshot.searcher
        hits = searcher.search(within(query, ords_query(ctx.snapshot.schema, c.ords[extra])), len(extra), count=False).hits
        extra = extra[~np.isin(c.ords[extra], _ords_of(searcher, hits))]
    return MatchSet(
        query=query,
        relaxed=relaxed,
        extras=c.ords[extra].copy(),
        extras_bm25=c.bm25[extra].copy(),
        extras_cosine=np.where(c.semantic_hit[extra], c.cosine[extra], np.nan),
        extras_strong=scratch.strong[extra].copy(),
        extras_places=c.word_places[extra].copy(),
        extras_counted=contains(extra, words_counted(c.bm25, c.full_match, c.semantic_hit)) if counts_words(ctx) else np.zeros(len(extra), dtype=bool),
        shown_relaxed=scratch.relaxed,
        pool_capped=truncated,
    )


def _words_of(ctx: SearchContext, match: MatchSet) -> tuple[np.ndarray, np.ndarray]:
    """The extras' any-word BM25 and where they have the query's words, whatever their rank: a
    search restricted to those the unfiltered pool did not score, then their words counted with
    those of the partial matches it did not count."""
    bm25, places = match.extras_bm25.copy(), match.extras_places.copy()
    unscored = np.flatnonzero(bm25 == 0)
    if len(unscored) and ctx.lexical_queries is not None:
        ords = match.extras[unscored]
        searcher = ctx.snapshot.searcher
        hits = searcher.search(within(ctx.lexical_queries[0], ords_query(ctx.snapshot.schema, ords)), len(ords), count=False).hits
        found = _ords_of(searcher, hits)
        bm25[unscored[np.searchsorted(ords, found)]] = [score for score, _ in hits]
    if counts_words(ctx):
        recount = np.flatnonzero((bm25 > 0) & ~match.extras_counted)
        if len(recount):
            places[recount] = words_found(ctx, match.extras[recount])
    return bm25, places


# ---- filtered retrieval --------------------------------------------------------------------


def members_only(match: MatchSet | None, keep_candidates: bool) -> bool:
    """Whether a filtered pool may hold only the result set's members.

    The ranking stages read the members alone: normalisation, ranks and lifts run over the
    result set, and a candidate outside it is never shown, so dropping the others leaves every
    page, total and score as they were. Not when the query was relaxed (products matching some
    of the words are members then), nor when `keep_candidates` (a merchandising pin may place
    any candidate of the pool, and a hide reports whether its product was among them:
    search.stages.merchandise)."""
    return match is not None and not match.relaxed and not keep_candidates


def counted_total(ctx: SearchContext, match: MatchSet) -> int | None:
    """How many products of the result set pass the filters, if a page with these filters was
    counted already (None otherwise: counting costs an aggregation, the filtered retrieval of
    a set without qualifying member finds nothing quickly). 0: the filtered pool has no member."""
    cached = match.counts.get(_count_key(ctx, ctx.filters))
    return None if cached is None else cached[0]


def empty_pool(ctx: SearchContext) -> None:
    """A filtered pool with no member (counted_total is 0): nothing is searched."""
    ctx.lexical_hits, ctx.lexical_full, ctx.lexical_total, ctx.semantic_hits = {}, set(), 0, {}


def prepare_filtered_retrieval(ctx: SearchContext, match: MatchSet | None, keep_candidates: bool = False) -> None:
    """Set the context up so that the retrieval stages search only qualifying products.

    Without `keep_candidates`, a pool that needs only the result set's members (members_only)
    is the filtered every-word search plus the qualifying extras: the any-word search is
    skipped (a product matching every word scores the same in both) and the extras bring the
    BM25 and word share the match set measured for them once per query text."""
    s = ctx.snapshot
    filters = ctx.filters
    ctx.match = match
    ctx.retrieval_filter = restriction(s.schema, filters, hides_sold_out(ctx), hidden=hidden_ids(ctx))
    if match is not None:
        ctx.members_only = members_only(match, keep_candidates)
        return  # the semantic side is not searched again (its qualifying neighbours are extras)
    ords = np.flatnonzero(s.live).astype(np.int64)
    ctx.retrieval_ords = ords[_all_but(filter_masks_at(ctx, ords, filters), None, len(ords))]


def require_extras(ctx: SearchContext) -> None:
    """Put the admitted extras that pass the filters into the filtered pool, with the signals
    they had in the unfiltered one (after the filtered retrieval stages ran)."""
    match: MatchSet | None = ctx.match
    if match is None or not len(match.extras):
        return
    ok = _all_but(filter_masks_at(ctx, match.extras, ctx.filters), None, len(match.extras))
    if not ok.any():
        return
    extras_bm25 = match.extras_words(ctx)[0]
    for o, bm25, cosine in zip(match.extras[ok].tolist(), extras_bm25[ok].tolist(), match.extras_cosine[ok].tolist(), strict=True):
        if bm25 > 0:
            ctx.lexical_hits[o] = bm25  # what the any-word search gives it, wherever it ranks
        if cosine == cosine:  # a semantic neighbour of the query
            ctx.semantic_hits.setdefault(o, cosine)


# ---- counting ------------------------------------------------------------------------------


def _keyword_agg(ctx: SearchContext, name: str) -> dict[str, Any]:
    # As many buckets as values ever seen: every value is counted, exactly, in every segment.
    size = len(getattr(ctx.snapshot, name).values.display) + 1
    return {"terms": {"field": _KEYWORD_FIELD[name], "size": size, "segment_size": size}}


def _price_agg() -> dict[str, Any]:
    ranges: list[dict[str, float]] = []
    low: float | None = None
    for high in PRICE_EDGES:
        ranges.append({"to": high} if low is None else {"from": low, "to": high})
        low = high
    ranges.append({"from": low})  # type: ignore[dict-item]
    return {"range": {"field": F_PRICE, "ranges": ranges}}


def _facet_counts(ctx: SearchContext, name: str, aggregated: dict[str, Any] | None, ords: np.ndarray) -> dict[str, int]:
    """A facet's counts: the index's buckets (`aggregated`, if any) plus the products `ords`."""
    s = ctx.snapshot
    if name == "price":
        sums = np.zeros(len(_PRICE_LABELS), dtype=np.int64)
        if aggregated is not None:
            sums += [b["doc_count"] for b in aggregated["buckets"]]
        prices = s.price[ords]
        prices = prices[~np.isnan(prices)]
        if len(prices):
            sums += np.bincount(np.searchsorted(np.asarray(PRICE_EDGES), prices, side="right"), minlength=len(sums))
        return {label: int(n) for label, n in zip(_PRICE_LABELS, sums.tolist(), strict=True) if n}
    column = getattr(s, name)
    values = column.values
    sums = np.zeros(len(values.display), dtype=np.int64)
    for bucket in aggregated["buckets"] if aggregated is not None else ():
        code = values.code.get(bucket["key"])
        if code is not None:
            sums[code] += bucket["doc_count"]
    if len(ords):
        codes = column.codes[ords].ravel() + 1
        sums += np.bincount(codes, minlength=len(values.display) + 1)[1:]
    return ranked_counts(sums, values.display)


def count(ctx: SearchContext) -> None:
    """ctx.total and ctx.facets over the whole result set ∩ the filters (each facet ignoring its
    own filter, so shoppers can add values): aggregations in the index, cached per filters."""
    match: MatchSet | None = ctx.match
    if match is None:
        return
    total, facets = _counted(ctx, match, ctx.filters, requested=True)
    ctx.total, ctx.facets = total, dict(facets)


def _count_key(ctx: SearchContext, filters: Filters) -> tuple:
    return (filters.model_dump_json(), hides_sold_out(ctx), ctx.snapshot.generation, hidden_ids(ctx))


def _counted(ctx: SearchContext, match: MatchSet, filters: Filters, requested: bool = False) -> tuple[int, dict[str, dict[str, int]]]:
    """Counts under `filters` (`requested`: the request's own, which a filtered pool was drawn with)."""
    key = _count_key(ctx, filters)
    cached = match.counts.get(key)
    if cached is None:
        cached = _count(ctx, match, filters, hides_sold_out(ctx), requested)
        if len(match.counts) >= _COUNTS_KEPT:
            match.counts.clear()
        match.counts[key] = cached
    return cached


def _without(filters: Filters, name: str) -> Filters:
    """The filters less one facet's own filter (the price facet's: both bounds)."""
    if name == "price":
        return filters.model_copy(update={"price_min": None, "price_max": None})
    return filters.model_copy(update={name: []})


def _count(ctx: SearchContext, match: MatchSet, filters: Filters, hide: bool, requested: bool) -> tuple[int, dict[str, dict[str, int]]]:
    """The matches that pass every filter, counted over the pool when it holds all of them
    (_known_matches), else in one aggregation (the total, and the facets no filter
    constrains); a facet with a filter of its own is counted without that filter, which
    is the count of another filter set: taken from the cache (or counted once, and kept), so a
    shopper's filter combinations and the unfiltered page share their counts."""
    s = ctx.snapshot
    schema, searcher = s.schema, s.searcher
    names = (*FACETS, "price")
    active = [n for n in names if (getattr(filters, n) if n != "price" else filters.price_min is not None or filters.price_max is not None)]
    aggregated: dict[str, Any] | None = None
    counted = _known_matches(ctx, match, filters, requested)
    if counted is None:
        masks = filter_masks_at(ctx, match.extras, filters)
        rest = restriction(schema, filters, hide, hidden=hidden_ids(ctx))
        query = match.query if rest is None else tantivy.Query.boolean_query([(_MUST, match.query), (_MUST, rest)])
        aggs: dict[str, Any] = {"n": {"value_count": {"field": "ord"}}}
        for name in names:
            if name not in active:
                aggs[name] = _price_agg() if name == "price" else _keyword_agg(ctx, name)
        aggregated = searcher.aggregate(query, aggs)
        counted = match.extras[_all_but(masks, None, len(match.extras))]  # the index counted the rest
    if requested:
        ctx.notes["counted_in"] = "index" if aggregated is not None else "filtered pool" if ctx.pool_filtered else "pool"
    total = len(counted) + (int(aggregated["n"]["value"]) if aggregated is not None else 0)
    facets = {}
    for name in names:
        if name in active:
            facets[name] = _counted(ctx, match, _without(filters, name))[1][name]
        else:
            facets[name] = _facet_counts(ctx, name, aggregated[name] if aggregated is not None else None, counted)
    return total, facets


def _known_matches(ctx: SearchContext, match: MatchSet, filters: Filters, requested: bool) -> np.ndarray | None:
    """Every product of the result set that passes `filters`, when the pool at hand holds all
    of them (None otherwise: the index counts them). Then counting is numpy over those few.

    - An unfiltered pool that no lexical search capped holds every match, for any filters.
    - A pool drawn with these filters holds every full match that passes them when its
      every-word search counted no more than it returned (and the qualifying extras, always).
    Counts run before the page is extended past the pool (search.stages.sort)."""
    c = ctx.candidates
    if (ctx.pool_filtered and not requested) or not pool_holds_every_match(ctx, match):
        return None
    if ctx.pool_filtered:
        return c.ords[c.full_match | contains(c.ords, match.extras)]  # drawn with the filters: all pass
    matched = (c.bm25 > 0) if match.relaxed else c.full_match
    ords = c.ords[matched | contains(c.ords, match.extras)]
    return ords[_all_but(filter_masks_at(ctx, ords, filters), None, len(ords))]


def pool_holds_every_match(ctx: SearchContext, match: MatchSet) -> bool:
    """Whether the pool holds every product of the result set that passes the filters in force
    (see _known_matches): then ordering its members is exact already."""
    if ctx.pool_filtered:
        return not match.relaxed and int(ctx.candidates.full_match.sum()) == ctx.lexical_total
    return not match.pool_capped


# ---- ordering and paging over the whole result set ---------------------------------------


def extend_order(ctx: SearchContext) -> None:
    """Make `ctx.order` exact for the requested page: price/newness over every matching
    product (relevance breaking ties), relevance paging past the pool into the BM25 order."""
    match: MatchSet | None = ctx.match
    if match is None or pool_holds_every_match(ctx, match):
        return  # the sort stage ordered every matching product already
    request = ctx.request
    window = min(request.offset + request.limit, MAX_WINDOW)
    c = ctx.candidates
    members = ctx.order
    s = ctx.snapshot
    rest = restriction(s.schema, ctx.filters, hides_sold_out(ctx), hidden=hidden_ids(ctx))
    query = match.query if rest is None else tantivy.Query.boolean_query([(_MUST, match.query), (_MUST, tantivy.Query.const_score_query(rest, 0.0))])
    searcher = s.searcher
    member_ords = c.ords[members]
    if request.sort == Sort.relevance:
        if len(members) >= window:
            return
        hits = searcher.search(query, window + len(members), count=False).hits
        ords = _ords_of(searcher, hits)
        fresh_tail = ~np.isin(ords, member_ords)
        need = window - len(members)
        tail = ords[fresh_tail][:need]
        bm25 = np.array([h[0] for h in hits], dtype=np.float64)[fresh_tail][:need]
        ctx.order = np.concatenate([members, _append(ctx, tail, bm25)])
        return
    _order_by_field(ctx, query, members, window)


def _sort_key(ctx: SearchContext, ords: np.ndarray) -> np.ndarray:
    """Ascending key (missing prices last in both directions, as tantivy orders them)."""
    s = ctx.snapshot
    sort = ctx.request.sort
    if sort == Sort.price_asc:
        return np.nan_to_num(s.price[ords], nan=np.inf)
    if sort == Sort.price_desc:
        return -np.nan_to_num(s.price[ords], nan=-np.inf)
    return -s.created[ords]


def _order_by_field(ctx: SearchContext, query: tantivy.Query, members: np.ndarray, window: int) -> None:
    c = ctx.candidates
    s = ctx.snapshot
    searcher, schema = s.searcher, s.schema
    sort = ctx.request.sort
    index_field = F_CREATED if sort == Sort.newest else F_PRICE
    order = tantivy.Order.Asc if sort == Sort.price_asc else tantivy.Order.Desc
    hits = searcher.search(query, window, count=False, order_by_field=index_field, order=order).hits
    member_ords = c.ords[members]
    ords = np.union1d(member_ords, _ords_of(searcher, hits))
    key = _sort_key(ctx, ords)
    if len(hits) == window and len(ords) > window:
        # Products sharing the window's last value may be missing: fetch all of them, so that
        # relevance (not the index's internal order) decides which of them make the page.
        edge = np.partition(key, window - 1)[window - 1]
        if np.isfinite(edge):
            value = float(edge) if sort == Sort.price_asc else float(-edge)
            tie = tantivy.Query.range_query(schema, index_field, tantivy.FieldType.Float, value, value)
        else:
            tie = tantivy.Query.boolean_query([(_MUST, tantivy.Query.all_query()), (_MUST_NOT, tantivy.Query.exists_query(index_field))])
        tied = tantivy.Query.boolean_query([(_MUST, query), (_MUST, tie)])
        n = searcher.search(tied, 1, count=True).count  # type: ignore[attr-defined]
        if n > int((key == edge).sum()):
            ords = np.union1d(ords, _ords_of(searcher, searcher.search(tied, n, count=False).hits))
            key = _sort_key(ctx, ords)
    # Relevance: the pool's order first (score, then ordinal), then BM25, then ordinal.
    scores = c.score()[members]
    pool_rank = np.empty(len(members), dtype=np.int64)
    pool_rank[np.lexsort((member_ords, -scores))] = np.arange(len(members))
    rank = np.full(len(ords), len(members), dtype=np.int64)
    in_pool = np.zeros(len(ords), dtype=bool)
    if len(members):
        sorter = np.argsort(member_ords)
        at = np.minimum(np.searchsorted(member_ords, ords, sorter=sorter), len(members) - 1)
        in_pool = member_ords[sorter[at]] == ords
        rank[in_pool] = pool_rank[sorter[at[in_pool]]]
    outside = ords[~in_pool]
    bm25 = np.zeros(len(ords))
    if len(outside):
        scored = searcher.search(within(query, ords_query(schema, outside)), len(outside), count=False).hits
        found = _ords_of(searcher, scored)
        at = np.searchsorted(ords, found)
        bm25[at] = [h[0] for h in scored]
    first = np.lexsort((ords, -bm25, rank, key))[:window]
    chosen = ords[first]
    index_of = dict(zip(member_ords.tolist(), members.tolist(), strict=True))
    new = chosen[~np.isin(chosen, member_ords)]
    appended = dict(zip(new.tolist(), _append(ctx, new, bm25[np.searchsorted(ords, new)]).tolist(), strict=True))
    page = np.array([index_of[o] if o in index_of else appended[o] for o in chosen.tolist()], dtype=np.int64)
    # The rest of the pool follows in the sort stage's order, so the order still lists every
    # member once (the page is exact; positions past the window are never shown).
    ctx.order = np.concatenate([page, members[~np.isin(members, page)]])


def _append(ctx: SearchContext, ords: np.ndarray, bm25: np.ndarray) -> np.ndarray:
    """Add products beyond the ranked pool as candidates (no stage scored them: their
    contributions are 0). Returns their candidate positions."""
    c = ctx.candidates
    n = len(ords)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    full = np.full(n, not ctx.match.relaxed)
    vector = ctx.query_vector
    cosine = ctx.snapshot.cosines(ords, vector) if vector is not None else np.full(n, np.nan)
    extended = Candidates(
        np.concatenate([c.ords, ords]),
        np.concatenate([c.bm25, bm25]),
        np.concatenate([c.full_match, full]),
        np.concatenate([c.cosine, cosine]),
        np.concatenate([c.semantic_hit, np.zeros(n, dtype=bool)]),
        np.concatenate([c.member, np.ones(n, dtype=bool)]),
        np.concatenate([c.proximity, np.zeros(n)]),
        np.concatenate([c.coverage, full.astype(float)]),
        np.concatenate([c.word_places, np.zeros((n, c.word_places.shape[1]))]),
    )
    extended.contributions = {k: np.concatenate([v, np.zeros(n, dtype=v.dtype)]) for k, v in c.contributions.items()}
    extended.details = {
        stage: {k: np.concatenate([v, np.zeros(n, dtype=v.dtype)]) for k, v in values.items()}
        for stage, values in c.details.items()
    }
    ctx.candidates = extended
    return np.arange(len(c.ords), len(c.ords) + n, dtype=np.int64)
