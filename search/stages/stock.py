"""Variant-level stock in the ranking.

  - Fully sold-out products sink below everything in stock (`stock.sold_out = "sink"`) or
    leave the results (`"hide"`).
  - When the visitor's size is known (a `size` filter, else the sizes their profile learned
    from variants they put in the cart or bought), relevant products available in that size,
    or sold without sizes, are lifted by `stock.size_boost` over relevant products offered in
    that size but sold out in it. Products whose sizes the visitor has no preference among
    (shoe sizes for someone we only know the dress size of) count as available: we cannot
    tell. Only products matching the query on its own terms are lifted
    (`SearchContext.liftable`).
"""

from __future__ import annotations

import numpy as np

from search.pipeline import SearchContext, StageKind


def preferred_sizes(ctx: SearchContext) -> list[str]:
    if ctx.request.filters.size:
        return list(ctx.request.filters.size)
    top = ctx.affinities.top("size", n=50)
    if not top:
        return []
    threshold = ctx.settings.personalization.size_min_share * top[0][1]
    return [size for size, pref in top if pref >= threshold]


class StockStage:
    name = "stock"
    kind = StageKind.ranker
    browse = True

    def run(self, ctx: SearchContext) -> None:
        c = ctx.candidates
        if len(c) == 0:
            return
        s = ctx.snapshot
        settings = ctx.settings.stock
        sold_out = ~s.in_stock[c.ords]
        contribution = np.zeros(len(c))
        if settings.sold_out == "hide":
            c.member &= ~sold_out
        else:
            contribution -= settings.sold_out_penalty * sold_out
        sizes = preferred_sizes(ctx)
        details: dict[str, np.ndarray] = {"sold_out": sold_out}
        if sizes and settings.size_boost > 0:
            available = s.size.mask_at(sizes, c.ords)
            offered = s.size_all.mask_at(sizes, c.ords)
            fits = (available | ~offered) & ~sold_out
            contribution += settings.size_boost * (fits & ctx.liftable())
            details["size_available"] = available
            ctx.notes["preferred_sizes"] = sizes
        c.add(self.name, contribution, **details)
