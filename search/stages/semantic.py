"""Semantic retrieval: nearest products to the query's embedding (faiss).

With filters, only products that pass them are searched (`ctx.retrieval_ords`): exact over a
small subset, the vector index with an id selector over a large one (Snapshot.search_vectors_among).
"""

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
        if ctx.retrieval_ords is not None:
            if len(ctx.retrieval_ords) == 0:
                return
            ids, scores = ctx.snapshot.search_vectors_among(ctx.query_vector, min(k, len(ctx.retrieval_ords)), ctx.retrieval_ords)
        else:
            ids, scores = ctx.snapshot.search_vectors(ctx.query_vector, k)
        found = ids >= 0  # faiss pads with -1 when it finds fewer than k
        ctx.semantic_hits = dict(zip(ids[found].tolist(), scores[found].tolist(), strict=True))
