"""Semantic retrieval: nearest products to the query's embedding (faiss)."""

from __future__ import annotations

from search.models import Mode
from search.pipeline import SearchContext, StageKind


class SemanticRetrieval:
    name = "semantic"
    kind = StageKind.retriever
    browse = False

    def run(self, ctx: SearchContext) -> None:
        if ctx.request.mode == Mode.bm25 or ctx.query_vector is None:
            return
        k = min(ctx.settings.ranking.semantic_candidates, max(1, ctx.snapshot.faiss.ntotal))
        ids, scores = ctx.snapshot.search_vectors(ctx.query_vector, k)
        found = ids >= 0  # faiss pads with -1 when it finds fewer than k
        ctx.semantic_hits = dict(zip(ids[found].tolist(), scores[found].tolist(), strict=True))
