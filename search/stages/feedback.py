"""Feedback: the query's meaning, sharpened by the products it already ranks first.

Pseudo-relevance feedback on the query embedding (Rocchio, 1971; as in "Pseudo-relevance
feedback for dense retrieval", e.g. Li et al., ANCE-PRF, 2021, without a trained encoder): a
short query such as "keurig" or "1/2 in. copper elbow" says little to a small bi-encoder, but
the products that both retrievers already agree on at the top of the fused ranking say what
kind of product is meant. The query vector moves towards their mean,

    q' = normalise(q + ranking.feedback_weight x mean(vectors of the `feedback_docs` best)),

and the semantic half of convex fusion is computed again with q' over the same result set
(same normalisation, same weight w as the fuse stage). No model call: the product
vectors are in memory and the result set's cosines are one dot product per candidate.

Contract: it only re-scores the result set (members never change); its contribution is the
new semantic part minus the fuse stage's, so `explain` shows the cosine to q' beside the
original cosine, and the sum of contributions is still the score. It runs in hybrid mode
with convex fusion only (bm25 and vector modes have no fused ranking to learn from), on
queries with words, when at least `feedback_docs` products are in the result set; with
`feedback_weight` 0 it does nothing. Measured on every benchmark dataset (benchmarks/README.md,
"Pseudo-relevance feedback").
"""

from __future__ import annotations

import numpy as np

from search.models import Mode
from search.pipeline import SearchContext, StageKind
from search.stages.fuse import NORMALISE
from search.stages.learned import head


def feedback_vector(ctx: SearchContext, docs: int, weight: float) -> np.ndarray | None:
    """q' for this query, from the `docs` best result-set members by the score so far; None
    when there is no query vector or fewer members than `docs`."""
    c = ctx.candidates
    if ctx.query_vector is None or int(c.member.sum()) < docs:
        return None
    top = head(ctx, docs)
    centroid = ctx.snapshot.vectors[c.ords[top]].mean(axis=0)
    moved = np.asarray(ctx.query_vector, dtype=np.float32) + np.float32(weight) * centroid
    norm = float(np.linalg.norm(moved))
    return moved / norm if norm > 0 else None


class FeedbackStage:
    name = "feedback"
    kind = StageKind.ranker
    browse = False

    def run(self, ctx: SearchContext) -> None:
        c = ctx.candidates
        ranking = ctx.settings.ranking
        if (
            len(c) == 0 or ranking.feedback_weight <= 0 or ctx.request.mode != Mode.hybrid or ranking.fusion != "convex"
            or not ctx.plan.terms or "semantic" not in c.contributions
        ):
            return
        weights = c.details.get("semantic", {}).get("weight")
        w = float(weights[0]) if weights is not None and len(weights) else ranking.semantic_weight
        if w <= 0:
            return
        moved = feedback_vector(ctx, ranking.feedback_docs, ranking.feedback_weight)
        if moved is None:
            return
        # Only the result set's members: the others are not ranked (and are often the larger
        # part of the candidates), so their semantic part stays as the fuse stage left it.
        scored = c.member & ~np.isnan(c.cosine)
        cosine = np.full(len(c), np.nan)
        cosine[scored] = ctx.snapshot.cosines(c.ords[scored], moved)
        semantic = w * NORMALISE[ranking.fusion_normalisation](cosine, scored)
        contribution = np.where(scored, semantic - c.contributions["semantic"], 0.0)
        c.add(self.name, contribution, cosine=cosine)
