"""From a ranked result set to what a caller sees: the page of hits (with each stage's
explanation on request), facet counts and the debug view."""

from __future__ import annotations

import uuid
from typing import Any

import numpy as np
from pydantic import TypeAdapter

from indexer.catalog import Product
from search.columns import price_counts
from search.models import Hit, SearchResult
from search.pipeline import SearchContext
from search.snapshot import Snapshot

FACETS = ("brand", "category", "colour", "size")


def shape(ctx: SearchContext, corrected: str | None, stage_names: list[str]) -> SearchResult:
    request = ctx.request
    c = ctx.candidates
    snapshot = ctx.snapshot
    page = ctx.order[request.offset : request.offset + request.limit]
    scores = c.score()[page] if len(page) else np.zeros(0)
    page_ords = c.ords[page]
    hits = []
    for i, ord_, score in zip(page.tolist(), page_ords.tolist(), scores.tolist(), strict=True):
        fields = snapshot.hit_fields(ord_)
        if fields is None:
            continue
        hit = {**fields, "score": score}
        if request.explain:
            hit["explain"] = {
                name: {
                    "contribution": float(values[i]),
                    "details": {k: _plain(v[i]) for k, v in c.details.get(name, {}).items()},
                }
                for name, values in c.contributions.items()
            }
        hits.append(hit)
    result = SearchResult(
        search_id=uuid.uuid4().hex,
        query=request.q,
        corrected_query=corrected,
        relaxed=ctx.relaxed,
        total=ctx.total if ctx.total is not None else int(len(ctx.order)),
        hits=_HITS.validate_python(hits),
        facets=ctx.facets if ctx.facets is not None else facets(ctx),
        took_ms=0.0,
        applied_synonyms=list(ctx.plan.applied_synonyms),
        personalized=bool(ctx.affinities),
    )
    if request.explain:
        result.debug = {
            "terms": [
                {"word": t.word, "alternatives": [(a.word, a.kind, round(a.weight, 3)) for a in t.alternatives]}
                for t in ctx.plan.terms
            ],
            "prefix": ctx.plan.prefix,
            "synonyms": ctx.plan.applied_synonyms,
            "stages": stage_names,
            "timings_ms": ctx.timings_ms,
            "lexical_matches": ctx.lexical_total,
            "index_version": snapshot.version_dir.name,
            "personalized": bool(ctx.affinities),
            **ctx.notes,
        }
        if ctx.affinities:
            result.debug["affinities"] = {a: dict(ctx.affinities.top(a)) for a in sorted(ctx.affinities.prefs)}
    return result


def facets(ctx: SearchContext) -> dict[str, dict[str, int]]:
    """Counts per value, each facet ignoring its own filter (so shoppers can add values)."""
    c = ctx.candidates
    s = ctx.snapshot
    out: dict[str, dict[str, int]] = {}
    members: np.ndarray | None = None  # the result set's ordinals, shared by most facets
    for name in (*FACETS, "price"):
        if len(c) == 0:
            out[name] = {}
            continue
        if name in ctx.filter_masks:
            ords = c.ords[ctx.matched & _passes_all_but(ctx.filter_masks, name, len(c))]
        else:
            if members is None:
                members = c.ords[c.member]
            ords = members
        out[name] = price_counts(s.price[ords]) if name == "price" else getattr(s, name).counts(ords)
    return out


def product_hit(snapshot: Snapshot, product: Product, score: float = 0.0) -> Hit:
    """A product as a hit outside a ranked list (recently viewed, similar products)."""
    ord_ = snapshot.id_to_ord.get(product.id)
    price = float(snapshot.price[ord_]) if ord_ is not None else float("nan")
    return _hit(product, price, score)


def _hit(product: Product, price: float, score: float) -> Hit:
    return Hit(
        id=product.id, title=product.title, brand=product.brand, price=None if price != price else price,  # nan: no price
        url=product.url, image=product.image, in_stock=product.in_stock, available_sizes=product.available_sizes, score=score,
    )


# A page of hits is validated in one call to pydantic-core: 2.5x faster than a
# `model_construct` per hit (which sets every field in Python), and checked.
_HITS = TypeAdapter(list[Hit])


def _passes_all_but(masks: dict[str, np.ndarray], skip: str | None, n: int) -> np.ndarray:
    out = np.ones(n, dtype=bool)
    for name, mask in masks.items():
        if name != skip:
            out &= mask
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and np.isnan(value):
        return None
    return value
