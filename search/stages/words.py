"""Words: the more of the query's words a product contains, the higher it ranks.

Meilisearch's first ranking rule, here as a soft score: contribution = ranking.words_weight x
the share of query words the product contains in any field (a typo correction, a synonym or a
completion of the word counts). For "paisley black sports shoes", black running shoes (3 of 4
words) come before black paisley ankle boots (2 of 4) even when the embedding finds the boots
closer. Products found only by meaning contain none of the words and get nothing. Chosen by
measurement on CrowdFlower, the fashion queries and the sample shop's (benchmarks/README.md).
"""

from __future__ import annotations

from search.models import Mode
from search.pipeline import SearchContext, StageKind


class WordsStage:
    name = "words"
    kind = StageKind.ranker
    browse = False

    def run(self, ctx: SearchContext) -> None:
        c = ctx.candidates
        weight = ctx.settings.ranking.words_weight
        if len(c) == 0 or weight <= 0 or ctx.request.mode == Mode.vector or not ctx.plan.terms:
            return
        c.add("words", weight * c.coverage, share=c.coverage)
