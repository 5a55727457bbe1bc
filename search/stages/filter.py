"""Assemble the result set, then apply the request's filters as hard constraints.

Who is in the result set (before filters):
  - bm25 mode: products containing every query word;
  - vector mode: the semantic nearest neighbours;
  - hybrid: every-word matches, plus products whose meaning is close enough to the query
    (cosine >= ranking.semantic_match_threshold), plus strong partial matches: BM25 at least
    ranking.partial_match_ratio of the best every-word match (a product named by the query's
    rarest words, missing a common one: men's gloves for "green gloves for men").
When fewer than `ranking.relax_below` products qualify, the set is relaxed to products that
match some of the words (and, in hybrid, to the nearest neighbours): a zero-result page is the
last resort. Deleted products never qualify.
"""

from __future__ import annotations

import numpy as np

from search.models import Filters, Mode
from search.pipeline import Candidates, SearchContext, StageKind
from search.snapshot import Snapshot
from search.stages.lexical import word_slots, words_found

# Partial matches (not every query word) whose words are counted, best BM25 first.
WORDS_COUNTED = 200


def _keys(values) -> np.ndarray:
    ords = getattr(values, "ords", None)  # the engine's cached outputs are arrays already
    if ords is not None:
        return ords
    return np.fromiter(values, dtype=np.int64, count=len(values))


def _positions(ords: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where each key sits in the sorted, non-empty `ords`, and whether it is there at all."""
    at = np.minimum(np.searchsorted(ords, keys), len(ords) - 1)
    return at, ords[at] == keys


def contains(ords: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Which of the sorted `ords` are among `keys`."""
    out = np.zeros(len(ords), dtype=bool)
    if len(ords) and len(keys):
        at, found = _positions(ords, keys)
        out[at[found]] = True
    return out


def fresh(c: Candidates) -> Candidates:
    """A new result set (nobody a member yet) over already assembled candidates' signals."""
    return Candidates(
        c.ords, c.bm25, c.full_match, c.cosine, c.semantic_hit, np.zeros(len(c), dtype=bool), c.proximity, c.coverage, c.word_places
    )


def assemble(ctx: SearchContext) -> Candidates:
    """Union of both retrievers' products (live ones, by ordinal), with their raw signals.

    The engine assembles once per query text and caches the result, handing it over in
    `ctx.candidates`; then this only starts a fresh result set over it.
    """
    if len(ctx.candidates):
        return fresh(ctx.candidates)
    snapshot = ctx.snapshot
    lexical, semantic = ctx.lexical_hits, ctx.semantic_hits
    lexical_ords = _keys(lexical)
    semantic_ords = _keys(semantic)
    ords = np.concatenate([lexical_ords, semantic_ords])
    ords.sort()
    if len(ords):
        ords = ords[np.concatenate(([True], ords[1:] != ords[:-1]))]  # unique
    ords = ords[(ords < snapshot.size_n)]
    ords = ords[snapshot.live[ords]] if len(ords) else ords
    n = len(ords)
    bm25 = _per_candidate(ords, lexical)
    full = contains(ords, _keys(ctx.lexical_full))
    semantic_hit = contains(ords, semantic_ords)
    if ctx.query_vector is not None and n:
        cosine = snapshot.cosines(ords, ctx.query_vector)
    else:
        cosine = np.full(n, np.nan)
    proximity = _per_candidate(ords, ctx.lexical_pairs)
    coverage = full.astype(float)
    places = np.zeros((n, 0))
    if counts_words(ctx):
        places = np.zeros((n, len(word_slots(ctx.settings.ranking))))
        counted = words_counted(bm25, full, semantic_hit)
        match = ctx.match  # set in a filtered pool (search.stages.exact)
        if match is not None and not match.relaxed:
            # The result set's extras had their words counted once for the query text.
            extra = contains(ords, match.extras)
            places[extra] = match.extras_words(ctx)[1][np.searchsorted(match.extras, ords[extra])]
            # A filtered pool of members: the other partial matches are never shown.
            counted = counted[:0] if ctx.members_only else counted[~extra[counted]]
        if len(counted):
            places[counted] = words_found(ctx, ords[counted])
        partial = ~full
        words = len(ctx.plan.terms)  # the share of the words in any field, exactly as a count would give it
        coverage[partial] = np.rint(places[partial].sum(axis=1) * words) / words
    return Candidates(ords, bm25, full, cosine, semantic_hit, np.zeros(n, dtype=bool), proximity, coverage, places)


def counts_words(ctx: SearchContext) -> bool:
    """Whether the words stage needs each partial match's share of the query's words."""
    return ctx.settings.ranking.words_weight > 0 and len(ctx.lexical_groups) > 1


def words_counted(bm25: np.ndarray, full: np.ndarray, semantic_hit: np.ndarray) -> np.ndarray:
    """The candidates whose words are counted: the partial matches that can reach the top, the
    semantic retriever's ones and the best by BM25 (the rest count as containing none)."""
    partial = np.flatnonzero((bm25 > 0) & ~full)
    by_bm25 = partial[np.argsort(-bm25[partial], kind="stable")[:WORDS_COUNTED]]
    return np.union1d(by_bm25, partial[semantic_hit[partial]])


def _per_candidate(ords: np.ndarray, values) -> np.ndarray:
    """Ordinal -> value (a dict, or the engine's cached array-backed mapping) as an array over
    the sorted candidate ordinals, 0 where absent."""
    out = np.zeros(len(ords))
    if len(ords) and len(values):
        at, found = _positions(ords, _keys(values))
        scores = getattr(values, "scores", None)
        if scores is None:
            scores = np.fromiter(values.values(), dtype=np.float64, count=len(values))
        out[at[found]] = scores[found]
    return out


def membership(ctx: SearchContext, c: Candidates, passes: np.ndarray | None = None) -> None:
    """Who is in the result set before filters; `passes` (who passes them) decides whether
    enough products qualify or the set is relaxed: three red dresses under 50 are not a page
    when more of them match most of the words."""
    ranking = ctx.settings.ranking
    if passes is None:
        passes = np.ones(len(c), dtype=bool)
    mode = ctx.request.mode
    if mode == Mode.vector:
        c.member = c.semantic_hit.copy()
        ctx.strong = c.member.copy()
        return
    if mode == Mode.bm25:
        c.member = c.full_match.copy()
        ctx.strong = c.member.copy()
        if (c.member & passes).sum() < ranking.relax_below:
            ctx.relaxed = bool(((c.bm25 > 0) & passes).sum() > (c.member & passes).sum())
            c.member = c.bm25 > 0
        return
    close = c.semantic_hit & (c.cosine >= ranking.semantic_match_threshold)
    c.member = c.full_match | close
    if ranking.partial_match_ratio > 0 and c.full_match.any():
        best_full = c.bm25[c.full_match].max()
        c.member |= c.bm25 >= ranking.partial_match_ratio * best_full
    ctx.strong = c.member.copy()
    if (c.member & passes).sum() < ranking.relax_below:
        wider = (c.bm25 > 0) | (c.semantic_hit & (c.cosine >= ranking.semantic_relaxed_threshold))
        ctx.relaxed = bool(((wider | c.member) & passes).sum() > (c.member & passes).sum())
        c.member = c.member | wider


def filter_masks(ctx: SearchContext, c: Candidates, filters: Filters) -> dict[str, np.ndarray]:
    """One boolean mask over the candidates per active filter."""
    return masks_at(ctx.snapshot, c.ords, filters)


def masks_at(s: Snapshot, ords: np.ndarray, filters: Filters) -> dict[str, np.ndarray]:
    """Per active filter, which of the products `ords` pass it (values of one field OR)."""
    masks: dict[str, np.ndarray] = {}
    if filters.brand:
        masks["brand"] = s.brand.mask_at(filters.brand, ords)
    if filters.category:
        masks["category"] = s.category.mask_at(filters.category, ords)
    if filters.colour:
        masks["colour"] = s.colour.mask_at(filters.colour, ords)
    if filters.size:
        masks["size"] = s.size.mask_at(filters.size, ords)
    if filters.price_min is not None or filters.price_max is not None:
        price = s.price[ords]
        ok = ~np.isnan(price)
        if filters.price_min is not None:
            ok &= price >= filters.price_min
        if filters.price_max is not None:
            ok &= price <= filters.price_max
        masks["price"] = ok
    if filters.in_stock is not None:
        masks["in_stock"] = s.in_stock[ords] == filters.in_stock
    return masks


def filtered_membership(ctx: SearchContext, c: Candidates) -> None:
    """Membership in a pool drawn with the filters (search.stages.exact): the match set's rules,
    so the results are the unfiltered result set ∩ the filters."""
    match = ctx.match  # search.stages.exact.MatchSet
    extra = np.isin(c.ords, match.extras)
    c.member = c.full_match | extra
    strong = c.full_match | np.isin(c.ords, match.extras[match.extras_strong])
    ctx.strong = strong & c.member
    if match.relaxed:
        c.member = c.member | (c.bm25 > 0)
    ctx.relaxed = match.shown_relaxed


class FilterStage:
    name = "filter"
    kind = StageKind.ranker
    browse = False

    def run(self, ctx: SearchContext) -> None:
        c = assemble(ctx)
        # The request's filters, with a price bound the shopper stated in words ("under 50").
        ctx.filter_masks = filter_masks(ctx, c, ctx.filters)
        passes = np.ones(len(c), dtype=bool)
        for mask in ctx.filter_masks.values():
            passes &= mask
        if ctx.match is not None and ctx.match.pool_capped and not ctx.filters.is_empty():
            filtered_membership(ctx, c)  # a pool drawn from qualifying products (search.stages.exact)
        else:
            membership(ctx, c, passes)
        ctx.candidates = c
        ctx.matched = c.member.copy()
        for mask in ctx.filter_masks.values():
            c.member &= mask
