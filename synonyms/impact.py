"""What a candidate synonym would do for the shoppers who needed it, measured by running their
logged searches again with the candidate applied.

A candidate *rescues* a logged zero-result search when that search, re-run with it, finds
products on its own terms (not by relaxation). What a rescue is worth depends on what it
finds, judged against two kinds of evidence that do not come from the candidate itself:

  - fit (meaning): how close the rescued products are to what the shopper typed, relative to
    the closest products the catalog has for that text. A right but over-broad word ("sneaks"
    -> "shoes", which also brings boots and heels) fits less than the specific one
    ("sneakers"), and an unrelated word fits far less, whatever the word embeddings say about
    the two words alone;
  - behaviour: what shoppers who searched the word went on to click or buy in the same visit
    after it failed (usually after re-phrasing it in the catalog's words). The share of the
    rescued products of the types they chose.

The candidate's `score` is the rescued searches weighted by that quality: the review list is
ordered by it, so among candidates rescuing the same searches the one whose rescued products
the shoppers would want comes first.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from indexer.normalize import words
from search.engine import SearchEngine
from search.models import SearchRequest
from synonyms.synonym_store import Synonym

# Rescued products judged per search: a page and more, so that an over-broad word shows its
# breadth (the right products ranked first are not all it brings).
JUDGED_HITS = 100
# What a word means in this shop is judged by its closest products, as many as the semantic
# generator looks at to name a product type.
NEIGHBOURHOOD = 20
# Behaviour counts when the later search came within this long of the failed one (seconds).
REFORMULATION_WINDOW = 300.0
# Each visit that showed what the shopper chose weighs as much as the meaning (the embedding
# is a model's guess, a click after re-phrasing is what a shopper wanted), up to this many.
MAX_VISITS_WEIGHED = 3


class _Search(Protocol):
    search_id: str
    ts: float
    normalized: str
    total: int
    relaxed: int
    visitor_id: str | None
    session_id: str | None


class _Outcome(Protocol):
    products: set[str]


@dataclass
class ChosenAfter:
    """Per shopper word: the product types shoppers clicked or bought later in the same visit,
    after a search containing the word failed them (no results, or results without a click)."""

    types: dict[str, Counter[str]] = field(default_factory=dict)
    sessions: dict[str, int] = field(default_factory=dict)  # visits that showed a choice

    @classmethod
    def from_log(cls, searches: Sequence[_Search], outcomes: Mapping[str, _Outcome],
                 product_type: Callable[[str], str | None], window: float = REFORMULATION_WINDOW) -> ChosenAfter:
        by_visit: dict[tuple[str, str | None], list[_Search]] = defaultdict(list)
        for s in searches:
            if s.visitor_id:
                by_visit[(s.visitor_id, s.session_id)].append(s)
        chosen = cls()
        for items in by_visit.values():
            items.sort(key=lambda s: s.ts)
            credited: set[str] = set()
            for i, failed in enumerate(items):
                if not (failed.total == 0 or failed.relaxed or failed.search_id not in outcomes):
                    continue
                typed = set(words(failed.normalized))
                later = [s for s in items[i + 1:] if s.ts - failed.ts <= window and s.search_id in outcomes]
                # The words the later search dropped are the ones that failed: "red kicks" then
                # "red sneakers" says something about "kicks", not "red".
                kinds = Counter(t for s in later for pid in outcomes[s.search_id].products
                                if (t := product_type(pid)) is not None)
                if not kinds:
                    continue
                for word in typed:
                    if any(word not in words(s.normalized) for s in later):
                        chosen.types.setdefault(word, Counter()).update(kinds)
                        credited.add(word)
            for word in credited:
                chosen.sessions[word] = chosen.sessions.get(word, 0) + 1
        return chosen


def product_type(engine: SearchEngine, product_id: str) -> str | None:
    """The most specific category (a catalog without categories has no types: behaviour then
    judges by nothing, and meaning alone decides)."""
    product = engine.snapshot.product(product_id)
    return product.categories[-1].lower() if product is not None and product.categories else None


def rank_weights(n: int) -> np.ndarray:
    """A shopper sees the first products first: weights 1/log2(rank + 1), as in DCG, summing to 1."""
    w = 1.0 / np.log2(np.arange(2, n + 2))
    return w / w.sum()


class Judge:
    """Measures candidates against one suggestion run's log: the typed words' vectors, their
    closest products and the catalog's average product are computed once and shared."""

    def __init__(self, engine: SearchEngine, zero_result: Mapping[str, int], chosen: ChosenAfter) -> None:
        self.engine = engine
        self.zero_result = zero_result  # normalized query -> zero-result searches logged
        self.chosen = chosen
        snapshot = engine.snapshot
        # The average product's vector: its cosine with a word is the mean cosine of all products
        # (summed in place, the few removed products' rows taken out: no copy of the matrix).
        n = len(snapshot.products)
        dead = [i for i, p in enumerate(snapshot.products) if p is None]
        total = snapshot.vectors[:n].sum(axis=0, dtype=np.float64) - snapshot.vectors[dead].sum(axis=0, dtype=np.float64)
        self._average_product = (total / max(1, n - len(dead))).astype(np.float32)
        self._vectors: dict[str, np.ndarray] = {}
        self._nearest: dict[str, np.ndarray] = {}

    def _vector(self, text: str) -> np.ndarray:
        if text not in self._vectors:
            self._vectors[text] = self.engine.embedder.encode_query(text)
        return self._vectors[text]

    def _nearest_cosines(self, text: str) -> np.ndarray:
        """Cosines of the text's NEIGHBOURHOOD closest products, best first."""
        if text not in self._nearest:
            _, scores = self.engine.snapshot.search_vectors(self._vector(text), NEIGHBOURHOOD)
            self._nearest[text] = scores[np.isfinite(scores)]
        return self._nearest[text]

    def fit(self, typed: str, ords: np.ndarray) -> float:
        """0..1: how close the rescued products (in rank order) are in meaning to the typed word,
        between what products picked at random would reach (0) and what the word's own closest
        products reach (1).

        The typed word, not the whole query: the query's other words ("grey" in "grey sneaks")
        are kept whatever the candidate, and would drown the difference between candidates in
        their own similarity. The same bar (the word's NEIGHBOURHOOD closest) for every
        candidate, however many products it rescues: a bar set by as many closest products as
        the candidate brings would be lower for a broad word that brings many, and favour it."""
        if not len(ords):
            return 0.0
        vector = self._vector(typed)
        found = float(rank_weights(len(ords)) @ self.engine.snapshot.cosines(ords, vector))
        nearest = self._nearest_cosines(typed)
        best = float(rank_weights(len(nearest)) @ nearest) if len(nearest) else 0.0
        chance = float(self._average_product @ vector)
        return float(np.clip((found - chance) / (best - chance), 0.0, 1.0)) if best > chance else 0.0

    def behaviour(self, typed: Iterable[str], product_ids: Sequence[str]) -> tuple[float | None, int]:
        """Share (rank-weighted) of the rescued products of the types shoppers chose after the
        word failed them (None: no shopper showed what they wanted), and how many visits showed it."""
        kinds: Counter[str] = Counter()
        sessions = 0
        for term in typed:
            for word in words(term):
                kinds.update(self.chosen.types.get(word, Counter()))
                sessions += self.chosen.sessions.get(word, 0)
        if not kinds or not product_ids:
            return None, 0
        # A type counts as much as it was chosen, relative to the most chosen one: one visitor who
        # wandered off to something else does not make that a wanted type.
        most = max(kinds.values())
        of_type = np.array([kinds.get(product_type(self.engine, pid) or "", 0) / most for pid in product_ids])
        return float(rank_weights(len(product_ids)) @ of_type), sessions

    def measure(self, candidate: Synonym) -> dict[str, Any]:
        """Rescued searches, and what each rescue finds (see the module docstring)."""
        engine = self.engine
        index = engine.synonym_index_with(candidate.pairs())
        typed = list(candidate.terms)
        rescued_queries = []
        rescued = affected = 0
        score = 0.0
        for query, searches in self.zero_result.items():
            if not searches or not any(t in query for t in typed):
                continue
            affected += searches
            result = engine.search(SearchRequest(q=query, limit=JUDGED_HITS), synonyms=index)
            if result.total == 0 or result.relaxed:
                continue
            rescued += searches
            ids = [h.id for h in result.hits]
            ords = np.array([o for o in (engine.snapshot.id_to_ord.get(i) for i in ids) if o is not None], dtype=np.int64)
            in_query = [t for t in typed if t in query]
            fit = float(np.mean([self.fit(t, ords) for t in in_query]))
            chosen_share, sessions = self.behaviour(in_query, ids)
            weight = min(sessions, MAX_VISITS_WEIGHED) if chosen_share is not None else 0
            quality = (fit + weight * (chosen_share or 0.0)) / (1 + weight)
            score += searches * quality
            entry = {"query": query, "searches": searches, "now_results": result.total, "fit": round(fit, 4)}
            if chosen_share is not None:
                entry["chosen_type_share"] = round(chosen_share, 4)
                entry["chosen_sessions"] = sessions
            rescued_queries.append(entry)
        return {"zero_result_searches": affected, "rescued_searches": rescued, "score": round(score, 4),
                "quality": round(score / rescued, 4) if rescued else 0.0, "rescued_queries": rescued_queries}
