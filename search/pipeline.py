"""The ranking pipeline: named stages behind one interface, sharing one context.

Contract of a stage (`Stage.run(ctx)`):
  1. It reads and writes only the context. Retrieval stages add candidates; every other stage
     works on `ctx.candidates` and may only remove candidates (filters) or add a score
     contribution, never invent products.
  2. A stage that changes scores records its per-candidate contribution under its own name in
     `ctx.candidates.contributions`; the final score is the sum of all contributions, so
     `explain` shows exactly why a product sits where it does.
  3. Hard constraints (filters, hidden products) are masks, never score multipliers.
  4. A stage is pure with respect to the snapshot: it never mutates shared index state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

import numpy as np

from search.affinities import Affinities
from search.models import Filters, SearchRequest
from search.query import QueryPlan
from search.settings import Settings
from search.snapshot import Snapshot
from search.understanding import effective_filters


@dataclass
class Candidates:
    """Products under consideration, as parallel arrays indexed by candidate position."""

    ords: np.ndarray  # product ordinals
    bm25: np.ndarray  # raw BM25 (0 when the words did not match)
    full_match: np.ndarray  # contains every query word (or one of its alternatives)
    cosine: np.ndarray  # query/product embedding similarity (nan when semantic is off)
    semantic_hit: np.ndarray  # among the semantic retriever's nearest neighbours
    member: np.ndarray  # currently in the result set
    # Share of the query's adjacent word pairs found side by side, in order, in the title
    # (0..1; 0 for one-word queries). Filled by the lexical retriever.
    proximity: np.ndarray = field(default_factory=lambda: np.zeros(0))
    # Share of the query's words the product contains in any field (1 for full matches).
    coverage: np.ndarray = field(default_factory=lambda: np.zeros(0))
    # Where the product has the query's words: one row per candidate, one column per place a
    # word can be found (search.stages.lexical.word_slots), each the share of the query's words
    # whose best place it is. Rows sum to `coverage`; all zero where words were not counted
    # (full matches, products found only by meaning).
    word_places: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    contributions: dict[str, np.ndarray] = field(default_factory=dict)
    details: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)

    @classmethod
    def empty(cls) -> Candidates:
        z = np.zeros(0)
        b = np.zeros(0, dtype=bool)
        return cls(np.zeros(0, dtype=np.int64), z, b, z.copy(), b.copy(), b.copy())

    def __post_init__(self) -> None:
        if len(self.proximity) != len(self.ords):  # retrieved without word pairs
            self.proximity = np.zeros(len(self.ords))
        if len(self.coverage) != len(self.ords):  # retrieved without per-word matching
            self.coverage = self.full_match.astype(float)
        if len(self.word_places) != len(self.ords):
            self.word_places = np.zeros((len(self.ords), 0))

    def __len__(self) -> int:
        return len(self.ords)

    def score(self) -> np.ndarray:
        total = np.zeros(len(self.ords))
        for values in self.contributions.values():
            total += values
        return total

    def add(self, stage: str, contribution: np.ndarray, **details: np.ndarray) -> None:
        self.contributions[stage] = contribution
        if details:
            self.details[stage] = details


@dataclass
class SearchContext:
    request: SearchRequest
    settings: Settings
    snapshot: Snapshot
    plan: QueryPlan
    query_vector: np.ndarray | None = None
    # Retriever outputs before assembly: ordinal -> score.
    lexical_hits: dict[int, float] = field(default_factory=dict)
    lexical_full: set[int] = field(default_factory=set)
    lexical_total: int = 0
    # Ordinal -> share of the query's adjacent word pairs that appear as a phrase in the title.
    lexical_pairs: dict[int, float] = field(default_factory=dict)
    # One tantivy query per query word (its alternatives over the boosted fields). Empty for one
    # word (then no product is a partial match, and words are not counted per product).
    lexical_groups: list[Any] = field(default_factory=list)
    semantic_hits: dict[int, float] = field(default_factory=dict)
    # The words as tantivy queries, unfiltered: (any word, every word). None without words.
    lexical_queries: tuple[Any, Any] | None = None
    # Filters inside retrieval (search.stages.exact): a tantivy query the lexical side requires,
    # and the ordinals the semantic side searches among. None when the request has no filters.
    retrieval_filter: Any = None
    retrieval_ords: np.ndarray | None = None
    # The filtered pool needs only the result set's members, not the other candidates
    # (search.stages.exact.prepare_filtered_retrieval): the every-word search and the extras.
    members_only: bool = False
    # The pool was drawn with the filters in force (search.stages.exact), not masked from the
    # unfiltered one: its every-word search counted the full matches that pass them.
    pool_filtered: bool = False
    # The exact result set of the query's words (search.stages.exact.MatchSet), and what was counted
    # over it: the total and facet counts over every matching product, not only the pool.
    match: Any = None
    total: int | None = None
    facets: dict[str, dict[str, int]] | None = None
    candidates: Candidates = field(default_factory=Candidates.empty)
    # Who matched the query before filters, and per filter name which candidates pass it
    # (facet counts for a field ignore that field's own filter).
    matched: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    # Per filter name, which candidates pass it (for disjunctive facet counts).
    filter_masks: dict[str, np.ndarray] = field(default_factory=dict)
    # Candidates that match the query on its own terms (every word, or close in meaning), as
    # opposed to those added by relaxation: only these may be lifted by behaviour-based stages.
    strong: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    # The visitor's affinities (empty without a visitor, history or consent).
    affinities: Affinities = field(default_factory=Affinities)

    @property
    def filters(self) -> Filters:
        """The filters in force: the request's, plus a price bound the shopper stated in words
        ("under 50"). Every stage and the exact counting use these, so hits, totals and facets
        agree."""
        return effective_filters(self.request.filters, self.plan.understood)

    def liftable(self) -> np.ndarray:
        """Result-set members that behaviour-based stages (personalize, stock) may lift.

        When enough products contain every query word, those are the relevant ones and only
        they may rise; semantic neighbours only fill in when words fail (a T-shirt may answer
        "shirt" in a small shop, but must not overtake shirts because it is in the visitor's
        size). Products added by relaxation are never lifted.
        """
        c = self.candidates
        full = c.full_match & c.member
        if full.sum() >= self.settings.ranking.relax_below:
            return full
        return self.strong & c.member
    relaxed: bool = False
    order: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    timings_ms: dict[str, float] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)
    # What merchandising applies to this request (search.merchandising.service.MerchPlan), or
    # None: rules, profile and experiment variant, read by the merchandise and pins stages.
    merchandising: Any = None


class StageKind(StrEnum):
    """What a stage does, so the engine orders and caches stages without naming them.

    - retriever: finds candidates for the query's words or meaning (adds to the retrieved
      hits; its output is cached per query text, so it must depend on nothing but the plan,
      the query vector, the snapshot and the request's mode).
    - ranker: works on the assembled result set (filters, scores, order).
    """

    retriever = "retriever"
    ranker = "ranker"


class Stage(Protocol):
    name: str
    kind: StageKind
    # Also runs on a category page (an empty query: nothing to retrieve, fuse or match).
    browse: bool

    def run(self, ctx: SearchContext) -> None: ...
