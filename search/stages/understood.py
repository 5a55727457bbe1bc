"""Understood: products that have the facet values the query named rank first.

Query understanding (search/understanding.py) reads the catalog's own facet values from the
query ("red" -> colour Red, "dress" -> category Dresses, "for her" -> gender Women). Naming a
value is not a demand that every result has it (the shopper did not set a filter: a filter is
applied only for a stated price bound), so it is a soft score: contribution =
ranking.understood_weight x the share of the phrases naming facet values that a product
honours ("men" is honoured by category Men or gender Men). "cheap" and its kin add ranking.cheap_weight x how cheap a product is among
the result set (1 for the cheapest, 0 for the dearest), so cheaper relevant products come
first without hiding the rest.
"""

from __future__ import annotations

import numpy as np

from search.pipeline import SearchContext, StageKind
from search.understanding import named_share


class UnderstoodStage:
    name = "understood"
    kind = StageKind.ranker
    browse = True  # "under 50" or "cheap" alone list the catalog: still cheapest first

    def run(self, ctx: SearchContext) -> None:
        c = ctx.candidates
        understood = ctx.plan.understood
        if len(c) == 0 or understood is None or not (understood.facets or understood.cheap):
            return
        ranking = ctx.settings.ranking
        contribution = np.zeros(len(c))
        details: dict[str, np.ndarray] = {}
        if understood.facets and ranking.understood_weight > 0:
            share = named_share(ctx.snapshot, understood.named, c.ords)
            contribution += ranking.understood_weight * share
            details["facets"] = share
        if understood.cheap and ranking.cheap_weight > 0:
            price = ctx.snapshot.price[c.ords]
            priced = c.member & ~np.isnan(price)
            cheapness = np.zeros(len(c))
            if priced.sum() > 1:
                # Rank-based, so one very dear product does not squash everyone else together.
                order = np.argsort(price[priced], kind="stable")
                ranks = np.empty(int(priced.sum()))
                ranks[order] = np.arange(len(order))
                cheapness[priced] = 1.0 - ranks / (len(order) - 1)
            contribution += ranking.cheap_weight * cheapness
            details["cheapness"] = cheapness
        c.add(self.name, contribution, **details)
