"""Final order of the result set: by score (relevance) or by a field the shopper chose."""

from __future__ import annotations

import numpy as np

from search.models import Sort
from search.pipeline import SearchContext, StageKind


class SortStage:
    name = "sort"
    kind = StageKind.ranker
    browse = True

    def run(self, ctx: SearchContext) -> None:
        c = ctx.candidates
        members = np.flatnonzero(c.member)
        if len(members) == 0:
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
