"""Helpers for testing one ranking stage on its own (see search/pipeline.py for the contract).

`run_alone` takes the context exactly as the stage receives it (`SearchEngine.context_before`),
remembers what the candidates looked like, runs only that stage and hands both back, so a test
checks what that stage alone did.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from indexer.catalog import Product
from indexer.embedding import Embedder
from indexer.lexical import query_analyzer
from indexer.text import lexical_fields
from search.affinities import Affinities
from search.engine import SearchEngine
from search.models import SearchRequest
from search.pipeline import SearchContext, Stage
from search.query import QueryPlan
from search.settings import Settings

_ANALYZER = query_analyzer()


@dataclass
class Before:
    ords: np.ndarray
    member: np.ndarray
    contributions: dict[str, np.ndarray]


def stage_of(engine: SearchEngine, name: str) -> Stage:
    return next(s for s in engine.stages if s.name == name)


def request(q: str, **kwargs) -> SearchRequest:
    return SearchRequest(q=q, prefix=False, **kwargs)


def run_alone(
    engine: SearchEngine, name: str, req: SearchRequest, affinities: Affinities | None = None
) -> tuple[SearchContext, Before]:
    ctx = engine.context_before(name, req, affinities)
    c = ctx.candidates
    before = Before(c.ords.copy(), c.member.copy(), {k: v.copy() for k, v in c.contributions.items()})
    stage_of(engine, name).run(ctx)
    return ctx, before


def assert_ranker_contract(ctx: SearchContext, before: Before, name: str) -> None:
    """Rankers never invent products nor re-admit removed ones, leave other stages'
    contributions alone, and record their own with one value per candidate."""
    c = ctx.candidates
    assert np.array_equal(c.ords, before.ords)
    assert not (c.member & ~before.member).any()
    for other, values in before.contributions.items():
        if other != name:
            assert np.array_equal(c.contributions[other], values), other
    assert name in c.contributions
    assert c.contributions[name].shape == (len(c),)
    assert np.isfinite(c.contributions[name]).all()


def stems(text: str) -> list[str]:
    return list(_ANALYZER.analyze(text))


def product_stems(product: Product) -> set[str]:
    """Every index term of the product's searchable fields (the analyzer the index uses)."""
    return set(stems(" ".join(lexical_fields(product).values())))


def title_stems(product: Product) -> list[str]:
    return stems(lexical_fields(product)["title"])


def word_stems(plan: QueryPlan) -> list[set[str]]:
    """Per query word, the stems it may match as (single-word alternatives only)."""
    assert all(not a.extra_stems for t in plan.terms for a in t.alternatives), "phrase alternatives"
    return [{a.stem for a in t.alternatives} for t in plan.terms]


def products_of(ctx: SearchContext, ords) -> list[Product]:
    out = [ctx.snapshot.products[int(o)] for o in ords]
    assert all(p is not None for p in out)
    return out  # type: ignore[return-value]


@contextmanager
def engine_with(index_dir: Path, embedder: Embedder, **sections) -> Iterator[SearchEngine]:
    """An engine over the shared sample index with some settings changed, e.g.
    `engine_with(index_dir, embedder, ranking={"fusion": "rrf"})`."""
    settings = Settings(index_dir=index_dir, **sections)
    engine = SearchEngine(index_dir, settings, embedder=embedder)
    try:
        yield engine
    finally:
        engine.close()
