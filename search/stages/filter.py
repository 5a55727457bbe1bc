"""Assemble the result set, then apply the request's filters as hard constraints.

Who is in the result set (before filters):
  - bm25 mode: products containing every query word;
  - vector mode: the semantic nearest neighbours;
  - hybrid: every-word matches, plus products whose meaning is close enough to the query
    (cosine >= ranking.semantic_match_threshold).
When fewer than `ranking.relax_below` products qualify, the set is relaxed to products that
match some of the words (and, in hybrid, to the nearest neighbours): a zero-result page is the
last resort. Deleted products never qualify.
"""

from __future__ import annotations

import numpy as np

from search.models import Filters, Mode
from search.pipeline import Candidates, SearchContext


def assemble(ctx: SearchContext) -> Candidates:
    snapshot = ctx.snapshot
    ords = np.fromiter(set(ctx.lexical_hits) | set(ctx.semantic_hits), dtype=np.int64)
    ords = ords[(ords < snapshot.size_n)]
    ords = ords[snapshot.live[ords]] if len(ords) else ords
    ords.sort()
    bm25 = np.array([ctx.lexical_hits.get(int(o), 0.0) for o in ords])
    full = np.array([int(o) in ctx.lexical_full for o in ords], dtype=bool)
    semantic_hit = np.array([int(o) in ctx.semantic_hits for o in ords], dtype=bool)
    if ctx.query_vector is not None and len(ords):
        cosine = snapshot.vectors[ords] @ ctx.query_vector
    else:
        cosine = np.full(len(ords), np.nan)
    return Candidates(ords, bm25, full, cosine, semantic_hit, np.zeros(len(ords), dtype=bool))


def membership(ctx: SearchContext, c: Candidates) -> None:
    ranking = ctx.settings.ranking
    mode = ctx.request.mode
    if mode == Mode.vector:
        c.member = c.semantic_hit.copy()
        return
    if mode == Mode.bm25:
        c.member = c.full_match.copy()
        if c.member.sum() < ranking.relax_below:
            ctx.relaxed = bool((c.bm25 > 0).sum() > c.member.sum())
            c.member = c.bm25 > 0
        return
    close = c.semantic_hit & (c.cosine >= ranking.semantic_match_threshold)
    c.member = c.full_match | close
    if c.member.sum() < ranking.relax_below:
        wider = (c.bm25 > 0) | (c.semantic_hit & (c.cosine >= ranking.semantic_relaxed_threshold))
        ctx.relaxed = bool(wider.sum() > c.member.sum())
        c.member = c.member | wider


def filter_masks(ctx: SearchContext, c: Candidates, filters: Filters) -> dict[str, np.ndarray]:
    """One boolean mask over the candidates per active filter."""
    s = ctx.snapshot
    ords = c.ords
    n = s.size_n
    masks: dict[str, np.ndarray] = {}
    if filters.brand:
        masks["brand"] = s.brand.mask(filters.brand, n)[ords]
    if filters.category:
        masks["category"] = s.category.mask(filters.category, n)[ords]
    if filters.colour:
        masks["colour"] = s.colour.mask(filters.colour, n)[ords]
    if filters.size:
        masks["size"] = s.size.mask(filters.size, n)[ords]
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


class FilterStage:
    name = "filter"

    def run(self, ctx: SearchContext) -> None:
        c = assemble(ctx)
        membership(ctx, c)
        ctx.candidates = c
        ctx.matched = c.member.copy()
        ctx.filter_masks = filter_masks(ctx, c, ctx.request.filters)
        for mask in ctx.filter_masks.values():
            c.member &= mask
