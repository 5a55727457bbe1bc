"""Re-rank relevant results by how well each product matches the visitor's affinities.

match = sum, over the attributes the visitor has preferences for (colour, brand, category,
material, pattern, gender, price band), of the attribute's weight times the product's best
preference in that attribute, capped at 1 (a sum, not a mean: a product in the visitor's
colour gains the same whether or not we also know their favourite pattern);
contribution = impact * match * relevance, where relevance is the product's fused score
relative to the best one. Two guards keep it a re-ranking of relevant results:
  - only products that match the query on its own terms are lifted (`SearchContext.liftable`:
    those containing every query word when there are enough of them, else also those close
    in meaning), never those added by relaxation;
  - the lift scales with relevance and is at most `personalization.impact` (0 = off), so a
    weakly relevant product cannot jump over a strongly relevant one by affinity alone
    unless their relevance was within the impact of each other.
"""

from __future__ import annotations

import numpy as np

from search.columns import PRICE_EDGES, MultiValueColumn, SingleValueColumn, price_bucket_labels
from search.pipeline import SearchContext, StageKind

_PRICE_LABELS = np.array(price_bucket_labels())


def affinity_match(ctx: SearchContext, ords: np.ndarray) -> np.ndarray:
    s = ctx.snapshot
    weights = ctx.settings.personalization.attribute_weights
    columns: dict[str, MultiValueColumn | SingleValueColumn] = {
        "brand": s.brand, "category": s.category, "colour": s.colour, **s.attribute_columns,
    }
    total = np.zeros(len(ords))
    for attribute, weight in weights.items():
        prefs = ctx.affinities.of(attribute)
        if weight <= 0 or not prefs:
            continue
        if attribute == "price_band":
            bands = np.searchsorted(np.asarray(PRICE_EDGES), s.price[ords], side="right")
            lookup = np.array([prefs.get(label.lower(), 0.0) for label in _PRICE_LABELS] + [0.0])
            bands = np.where(np.isnan(s.price[ords]), len(_PRICE_LABELS), bands)
            match = lookup[bands]
        else:
            column = columns.get(attribute)
            if column is None:
                continue
            match = column.best_at(prefs, ords)
        total += weight * match
    return np.minimum(total, 1.0)


class PersonalizeStage:
    name = "personalize"
    kind = StageKind.ranker
    browse = True

    def run(self, ctx: SearchContext) -> None:
        c = ctx.candidates
        impact = ctx.settings.personalization.impact
        if len(c) == 0:
            return
        if impact <= 0 or not ctx.affinities:
            c.add(self.name, np.zeros(len(c)))
            return
        match = affinity_match(ctx, c.ords)
        fused = c.score()
        eligible = ctx.liftable()
        best = fused[eligible].max() if eligible.any() else 0.0
        relevance = np.clip(fused / best, 0.0, 1.0) if best > 0 else np.ones(len(c))
        c.add(self.name, impact * match * relevance * eligible, affinity=match, relevant=eligible)
