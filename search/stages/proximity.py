"""Proximity: products that say the query's words together rank above ones that merely contain them.

For "coffee cup", "Mr. Coffee 12-Cup Coffee Maker" and "Ceramic Coffee Cup" both contain every
word; only the second says "coffee cup". Like Meilisearch's proximity rule, this only orders
products that already contain every query word (it never lets a partial match overtake a full
one): contribution = ranking.proximity_weight x share of the query's adjacent word pairs found
side by side in the title. Chosen by measurement on CrowdFlower and the fashion queries
(benchmarks/README.md).
"""

from __future__ import annotations

import numpy as np

from search.models import Mode
from search.pipeline import SearchContext, StageKind


class ProximityStage:
    name = "proximity"
    kind = StageKind.ranker
    browse = False

    def run(self, ctx: SearchContext) -> None:
        c = ctx.candidates
        weight = ctx.settings.ranking.proximity_weight
        if len(c) == 0 or weight <= 0 or ctx.request.mode == Mode.vector:
            return
        share = np.where(c.full_match, c.proximity, 0.0)
        c.add("proximity", weight * share, title_pairs=share)
