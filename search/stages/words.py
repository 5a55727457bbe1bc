"""Words: the more of the query's words a product contains, the higher it ranks, and a word
counts more where it names the product than where it is only mentioned.

Meilisearch's first ranking rule, here as a soft score: contribution = ranking.words_weight x
the product's word credit. A product containing every query word gets the whole weight. A
partial match gets, per query word it contains, what the word counts for in its best field
(ranking.word_field_weights: whole in the title, brand or categories, or as a facet value the
query understanding recognised in the attributes; less when found only in the attributes or the
description), over the number of query words. For "paisley black sports shoes", black running
shoes (3 of 4 words in the title) come before black paisley ankle boots (2 of 4) even when the
embedding finds the boots closer; for "something warm for winter walks", trail running shoes
whose season attribute says winter and whose description says walking no longer take 2 of 3
words' worth. Products found only by meaning contain none of the words and get nothing.
Chosen by measurement on CrowdFlower, the fashion queries and the sample shop's
(benchmarks/README.md, "Field-aware word coverage").

`explain` details: `share` (of the query's words, in any field), `credit` (the share weighted
by field: contribution = words_weight x credit) and, per place a word can be found
(search.stages.lexical.word_slots), `in_<place>`: the share of the query's words whose best
place it is (all 0 for full matches, whose words are not counted one by one).
"""

from __future__ import annotations

import numpy as np

from search.models import Mode
from search.pipeline import SearchContext, StageKind
from search.stages.fuse import names_no_word
from search.stages.lexical import word_slots


def word_credit(ctx: SearchContext) -> np.ndarray:
    """Each candidate's share of the query's words, weighted by the field each word is found
    in; the plain share (1 for full matches, 0 for products not counted) where words were not
    counted one by one."""
    c = ctx.candidates
    credit = c.coverage.copy()
    slots = word_slots(ctx.settings.ranking)
    if c.word_places.shape[1] == len(slots):
        counted = c.word_places.any(axis=1)
        credit[counted] = c.word_places[counted] @ np.array([weight for _, weight in slots])
    return credit


class WordsStage:
    name = "words"
    kind = StageKind.ranker
    browse = False

    def run(self, ctx: SearchContext) -> None:
        c = ctx.candidates
        weight = ctx.settings.ranking.words_weight
        if len(c) == 0 or weight <= 0 or ctx.request.mode == Mode.vector or not ctx.plan.terms:
            return
        credit = word_credit(ctx)
        if names_no_word(ctx):
            # Only mentions: the fuse stage let meaning decide, and the words' credit would
            # bring the mentions back (the same evidence as BM25, counted again).
            credit = np.zeros(len(c))
        details = {"share": c.coverage, "credit": credit}
        places = c.word_places
        if places.shape[1]:
            details |= {f"in_{slot}": places[:, k] for k, (slot, _) in enumerate(word_slots(ctx.settings.ranking))}
        c.add("words", weight * credit, **details)
