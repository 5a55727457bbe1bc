"""The semantic retriever (`semantic`), on its own over the sample shop.

Properties it guarantees:
1. Its hits are the query vector's nearest neighbours: no product outside them is closer.
2. Hits come in cosine order, each scored with its cosine similarity to the query.
3. It returns `ranking.semantic_candidates` neighbours (or every product, when fewer).
4. In bm25 mode it finds nothing (and no query vector is computed).
5. It only reads the lexical retriever's output, never changes it.
"""

from __future__ import annotations

import numpy as np
import pytest

from search.models import Mode
from tests.stages import request, run_alone

QUERIES = ["summer dress", "warm winter coat", "something to sit on"]


def _cosines(ctx) -> np.ndarray:
    n = ctx.snapshot.faiss.ntotal
    return ctx.snapshot.vectors[:n] @ ctx.query_vector


@pytest.mark.parametrize("q", QUERIES)
def test_hits_are_the_nearest_neighbours(engine, q) -> None:
    ctx, _ = run_alone(engine, "semantic", request(q))
    cos = _cosines(ctx)
    hits = np.fromiter(ctx.semantic_hits, dtype=np.int64)
    outside = np.setdiff1d(np.arange(len(cos)), hits)
    assert len(outside), "the shop has more products than neighbours asked for"
    assert cos[hits].min() >= cos[outside].max() - 1e-4


@pytest.mark.parametrize("q", QUERIES)
def test_hits_come_in_cosine_order_scored_by_cosine(engine, q) -> None:
    ctx, _ = run_alone(engine, "semantic", request(q))
    cos = _cosines(ctx)
    ords = list(ctx.semantic_hits)
    scores = np.array(list(ctx.semantic_hits.values()))
    assert np.all(np.diff(scores) <= 1e-6)
    assert np.allclose(scores, cos[ords], atol=1e-4)


def test_returns_semantic_candidates_neighbours(engine) -> None:
    ctx, _ = run_alone(engine, "semantic", request("summer dress"))
    k = min(engine.settings.ranking.semantic_candidates, ctx.snapshot.faiss.ntotal)
    assert len(ctx.semantic_hits) == k
    assert all(0 <= o < ctx.snapshot.size_n for o in ctx.semantic_hits)


def test_bm25_mode_finds_nothing_semantically(engine) -> None:
    ctx, _ = run_alone(engine, "semantic", request("summer dress", mode=Mode.bm25))
    assert ctx.query_vector is None
    assert ctx.semantic_hits == {}


def test_leaves_the_lexical_output_alone(engine) -> None:
    ctx = engine.context_before("semantic", request("summer dress"))
    lexical = (dict(ctx.lexical_hits), set(ctx.lexical_full), ctx.lexical_total)
    assert lexical[0], "the lexical retriever ran before"
    next(s for s in engine.stages if s.name == "semantic").run(ctx)
    assert (ctx.lexical_hits, ctx.lexical_full, ctx.lexical_total) == lexical
    assert ctx.semantic_hits
