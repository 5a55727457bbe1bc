"""Fusion of lexical and semantic relevance into additive score contributions.

Two methods, chosen by measurement (see benchmarks/README.md):
  - convex: min-max normalise BM25 and cosine over the result set, then
    (1 - w) * bm25_norm + w * cosine_norm  ("relative score fusion");
  - rrf: reciprocal rank fusion, (1 - w) / (k + rank_bm25) + w / (k + rank_cosine)
    (Cormack, Clarke & Buettcher, SIGIR 2009), scaled so the best possible score is 1.
w is ranking.semantic_weight, or with ranking.adaptive_fusion (convex, hybrid mode) the weight
search/stages/fusion_weight.py decides for this query from how the words matched and how far
the retrievers agree. In bm25 or vector mode only that side contributes.

In hybrid mode, when enough products contain every query word (ranking.relax_below), those
gain ranking.full_match_bonus in their lexical part: products that only resemble the query
in meaning then come after the ones that say what the shopper said, unless their fused
relevance is clearly higher. Measured on CrowdFlower and the fashion queries (both improve;
benchmarks/README.md).
"""

from __future__ import annotations

import numpy as np

from search.models import Mode
from search.pipeline import SearchContext, StageKind
from search.stages.fusion_weight import SIGNALS, load_model, query_signals
from search.stages.lexical import word_slots


def minmax(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Scale to [0, 1] over the masked entries; a constant column maps to 1 where positive."""
    out = np.zeros(len(values))
    if not mask.any():
        return out
    v = np.nan_to_num(values, nan=0.0)
    low, high = v[mask].min(), v[mask].max()
    if high > low:
        out = np.clip((v - low) / (high - low), 0.0, 1.0)
    else:
        out = (v > 0).astype(float) if high > 0 else np.zeros(len(v))
    return out


def zscore(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Standardise over the masked entries and map through the normal CDF (logistic
    approximation) to (0, 1): one far outlier does not squash everyone else together, as it
    does with min-max."""
    out = np.zeros(len(values))
    if not mask.any():
        return out
    v = np.nan_to_num(values, nan=0.0)
    sd = float(v[mask].std())
    if sd <= 0:
        return (v > 0).astype(float) if v[mask].max() > 0 else out
    return 1.0 / (1.0 + np.exp(-1.702 * (v - v[mask].mean()) / sd))


def rank_share(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """1 for the best masked entry down to 0 for the worst, by rank alone."""
    out = np.zeros(len(values))
    n = int(mask.sum())
    if n == 0:
        return out
    if n == 1:
        out[mask] = 1.0
        return out
    r = ranks(np.nan_to_num(values, nan=0.0), mask)
    out[mask] = 1.0 - (r[mask] - 1) / (n - 1)
    return out


NORMALISE = {"minmax": lambda v, m: minmax(v, m), "zscore": lambda v, m: zscore(v, m), "rank": lambda v, m: rank_share(v, m)}


def names_no_word(ctx: SearchContext) -> bool:
    """True when no candidate contains every query word and none of those whose words were
    counted has any query word where a product is named (the best field tier: title, brand,
    categories, or a facet value the query named): the lexical side holds only mentions.
    False where words were not counted (one-word queries, vector mode)."""
    c = ctx.candidates
    slots = word_slots(ctx.settings.ranking)
    if c.full_match.any() or c.word_places.shape[1] != len(slots) or not c.word_places.any():
        return False
    best = max(weight for _, weight in slots)
    naming = [k for k, (_, weight) in enumerate(slots) if weight >= best]
    return not c.word_places[:, naming].any()


def ranks(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """1-based rank among masked entries (higher value = better), inf elsewhere."""
    out = np.full(len(values), np.inf)
    idx = np.flatnonzero(mask)
    order = idx[np.argsort(-values[idx], kind="stable")]
    out[order] = np.arange(1, len(order) + 1)
    return out


class FuseStage:
    name = "fuse"
    kind = StageKind.ranker
    browse = False

    def run(self, ctx: SearchContext) -> None:
        c = ctx.candidates
        if len(c) == 0:
            return
        ranking = ctx.settings.ranking
        mode = ctx.request.mode
        w = {Mode.bm25: 0.0, Mode.vector: 1.0}.get(mode, ranking.semantic_weight)
        if mode == Mode.hybrid and ranking.fusion == "convex" and ranking.adaptive_fusion and ctx.plan.terms:
            w = self.query_weight(ctx, w)
        if mode == Mode.hybrid and ranking.fusion == "convex" and names_no_word(ctx):
            # The words are only mentioned (descriptions, attributes), never named: BM25 then
            # ranks incidental mentions ("winter" as a season, "walk" in a shoe's blurb), and
            # meaning is the better guide to what the shopper asked for.
            w = max(w, ranking.unnamed_semantic_weight)
            ctx.notes["fusion"] = ctx.notes.get("fusion", {}) | {
                "semantic_weight": round(w, 3),
                "reason": "no product contains every query word, and none has any of them in its title, brand, categories or as a recognised facet value",
            }
        has_lexical = c.bm25 > 0
        if ranking.fusion == "rrf":
            k = ranking.rrf_k
            scale = k + 1  # rank 1 on both sides gives exactly 1.0
            lexical = np.where(has_lexical, (1 - w) * scale / (k + ranks(c.bm25, has_lexical & c.member)), 0.0)
            sem_mask = ~np.isnan(c.cosine) & c.member
            semantic = np.where(sem_mask, w * scale / (k + ranks(np.nan_to_num(c.cosine), sem_mask)), 0.0)
        else:
            normalise = NORMALISE[ranking.fusion_normalisation]
            lexical = (1 - w) * normalise(c.bm25, c.member & has_lexical) * has_lexical
            sem_mask = c.member & ~np.isnan(c.cosine)
            semantic = w * normalise(c.cosine, sem_mask) if w > 0 else np.zeros(len(c))
        bonus = ranking.full_match_bonus
        if bonus > 0 and mode == Mode.hybrid and (c.full_match & c.member).sum() >= ranking.relax_below:
            lexical = lexical + bonus * c.full_match
        c.add("lexical", lexical, bm25=c.bm25, full_match=c.full_match)
        c.add("semantic", semantic, cosine=c.cosine, weight=np.full(len(c), w))

    @staticmethod
    def query_weight(ctx: SearchContext, fallback: float) -> float:
        """This query's w from the fitted model; `fallback` without one. The debug view shows
        the signals and how far each pushed w towards meaning (+) or words (-)."""
        model = load_model(ctx.settings.ranking.fusion_weight_model)
        if model is None:
            return fallback
        signals = query_signals(ctx)
        w = model.weight(signals)
        pushes = model.pushes(signals)
        ctx.notes["fusion"] = {
            "semantic_weight": round(w, 3),
            "signals": {n: round(float(v), 3) for n, v in zip(SIGNALS, signals, strict=True)},
            "pushes": {n: round(float(v), 3) for n, v in zip(SIGNALS, pushes, strict=True)},
        }
        return w
