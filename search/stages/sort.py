"""Final order of the result set: by score (relevance) or by a field the shopper chose.

The pool's members are ordered here; search.stages.exact then makes the requested page exact over
every matching product (sorting by price or newness, paging past the pool) and counts them.
"""

from __future__ import annotations

import numpy as np

from search.models import Sort
from search.pipeline import SearchContext, StageKind
from search.stages.exact import count, extend_order


class SortStage:
    name = "sort"
    kind = StageKind.ranker
    browse = True

    def run(self, ctx: SearchContext) -> None:
        c = ctx.candidates
        members = np.flatnonzero(c.member)
        if len(members) == 0:
            # Counted by the engine only if this page is kept: a page without results may give
            # way to its spelling correction's ("did you mean"), and counting costs a search.
            ctx.order = members
            return
        s = ctx.snapshot
        ords = c.ords[members]
        score = c.score()[members]
        sort = ctx.request.sort
        keys: tuple[np.ndarray, ...]
        # np.lexsort sorts by the LAST key first; ordinals break ties so pages are stable.
        if sort == Sort.price_asc:
            price = np.nan_to_num(s.price[ords], nan=np.inf)
            keys = (ords, -score, price)
        elif sort == Sort.price_desc:
            price = np.nan_to_num(s.price[ords], nan=-np.inf)
            keys = (ords, -score, -price)
        elif sort == Sort.newest:
            keys = (ords, -score, -s.created[ords])
        else:
            keys = (ords, -score)
        ctx.order = members[np.lexsort(keys)]
        # The pool is ordered; the counts and the page come from the whole result set (counted
        # first: counting may read the pool, which extending the page adds products to).
        count(ctx)
        extend_order(ctx)
