"""SearchEngine: the search library. `engine.search(SearchRequest) -> SearchResult`.

It answers queries over the current index snapshot and owns nothing else: no stores, no logs,
no threads of its own beyond the query encoder. Usable from a notebook with an index
directory and nothing more:

    engine = SearchEngine("var/index")
    engine.search(SearchRequest(q="red dress")).hits

What a visitor prefers (`Affinities`) and which synonyms are approved (`SynonymIndex`) are
handed in by the caller; `search.service.SearchService` does that for the HTTP API and the
CLI, and also records searches, runs the watcher and writes catalog changes.
"""

from __future__ import annotations

import gc
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import structlog

from indexer import format as fmt
from indexer.catalog import Product
from indexer.config import IndexConfig
from indexer.embedding import Embedder
from indexer.normalize import normalize, words
from search.affinities import Affinities
from search.caching import LRUCache, OrdScores, OrdSet, Retrieved, read_only
from search.errors import InvalidInput, ProductNotFound
from search.merchandising.plan import MerchPlan
from search.models import Filters, Hit, Mode, SearchRequest, SearchResult, Suggestion
from search.pipeline import Candidates, SearchContext, Stage, StageKind
from search.query import QueryPlan, SynonymIndex, plan_query
from search.settings import Settings
from search.shaping import product_hit, shape
from search.snapshot import Snapshot, faiss_threads
from search.stages import build_pipeline, exact
from search.stages.filter import assemble, filter_masks, fresh
from search.stages.stock import preferred_sizes
from search.suggest import suggest
from search.understanding import facet_lexicon, report

log = structlog.get_logger("vitrine.engine")


class SearchEngine:
    def __init__(self, index_dir: str | Path, settings: Settings | None = None, embedder: Embedder | None = None) -> None:
        self.settings = settings or Settings(index_dir=Path(index_dir))
        self.index_dir = Path(index_dir)
        self.stages: list[Stage] = build_pipeline(self.settings.ranking.stages)
        faiss_threads(1)
        self._snapshot = self._open_current()
        _freeze_gc()
        self._embedder = embedder or Embedder(self._index_config(self._snapshot))
        self._vectors = LRUCache(self.settings.query_cache_size)
        self._retrieved = LRUCache(self.settings.query_cache_size)
        self._plans = LRUCache(self.settings.query_cache_size)
        # Encodes the query while the lexical retriever runs (both release the GIL).
        self._encoder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vitrine-encode")
        self._synonyms = SynonymIndex()

    # ---- the index ---------------------------------------------------------------------

    def _open_current(self) -> Snapshot:
        return self._open_snapshot(fmt.current_version_dir(self.index_dir))

    def _open_snapshot(self, version_dir: Path) -> Snapshot:
        return Snapshot(
            version_dir,
            ef_search=self.settings.index.hnsw_ef_search,
            profile_attributes=tuple(self.settings.personalization.profile_attributes),
        )

    def _index_config(self, snapshot: Snapshot) -> IndexConfig:
        manifest = snapshot.manifest
        return self.settings.index.model_copy(update={"model": manifest.model, "backend": manifest.backend})

    @property
    def snapshot(self) -> Snapshot:
        return self._snapshot

    @property
    def embedder(self) -> Embedder:
        return self._embedder

    def warm_up(self) -> None:
        """Load the model and run one query so the first shopper does not wait for it."""
        self.search(SearchRequest(q="warm up"))
        self._clear_caches()

    def _clear_caches(self, vectors: bool = True) -> None:
        if vectors:
            self._vectors.clear()
        self._retrieved.clear()
        self._plans.clear()

    def encode_queries(self, texts: list[str], limit_seconds: float | None = None) -> int:
        """Put these query texts' vectors in the query-vector cache (the head of the query
        distribution, read from the search log at start-up), so their first search after a
        restart does not wait for the encoder. Returns how many were encoded; stops after
        `limit_seconds`. A text is planned as a search plans it (the vector is of the plan's
        semantic text, with typo corrections and synonyms), so the cache key is the same."""
        started = time.perf_counter()
        snapshot = self._snapshot
        encoded = 0
        for text in texts:
            if limit_seconds is not None and time.perf_counter() - started > limit_seconds:
                break
            with snapshot._lock:
                plan = self._plan(SearchRequest(q=text), snapshot, False, self._synonyms)
            if plan.semantic_text and self._vectors.get(plan.semantic_text) is None:
                self._query_vector(plan)
                encoded += 1
        return encoded

    def refresh(self) -> bool:
        """Pick up a newly published version, then apply logged changes. True if anything changed."""
        changed = False
        try:
            current = fmt.current_version_dir(self.index_dir)
        except fmt.IndexNotFound:
            return False
        if current != self._snapshot.version_dir:
            new = self._open_snapshot(current)
            old = self._snapshot
            same_model = (new.manifest.model, new.manifest.backend) == (old.manifest.model, old.manifest.backend)
            if not same_model:
                self._embedder = Embedder(self._index_config(new))
            # One reference assignment: requests in flight finish on the old snapshot.
            self._snapshot = new
            # Query vectors depend on the model alone: kept over a new version of the catalog.
            self._clear_caches(vectors=not same_model)
            _freeze_gc()
            log.info("index version swapped", old=old.version_dir.name, new=current.name)
            changed = True
        if self._snapshot.refresh():
            changed = True
        return changed

    def close(self) -> None:
        self._encoder.shutdown(wait=False)

    # ---- synonyms ------------------------------------------------------------------------

    @property
    def synonyms(self) -> SynonymIndex:
        return self._synonyms

    def use_synonyms(self, index: SynonymIndex) -> None:
        """Answer from now on with these approved synonyms (one reference assignment; the
        caches key on the index's unique key, so no stale plan survives)."""
        self._synonyms = index

    def synonym_index_with(self, extra_pairs: list[tuple[str, str]]) -> SynonymIndex:
        """The approved synonyms plus some more (to measure a suggestion before approving it)."""
        current = self._synonyms
        pairs = [(" ".join(k), t) for k, targets in current.targets.items() for t in targets]
        return SynonymIndex(pairs + list(extra_pairs), version=-1)

    # ---- search --------------------------------------------------------------------------

    def search(
        self, request: SearchRequest, affinities: Affinities | None = None, synonyms: SynonymIndex | None = None,
        merchandising: MerchPlan | None = None,
    ) -> SearchResult:
        """Answer one search. `affinities`: what the visitor prefers (none: unpersonalized);
        `synonyms` replaces the approved ones (what-if: the impact of a suggestion);
        `merchandising`: the rules and ranking profile that apply (search.merchandising.plan)."""
        started = time.perf_counter()
        snapshot = self._snapshot
        affinities = affinities if affinities is not None and request.personalize else Affinities()
        synonyms = synonyms if synonyms is not None else self._synonyms
        with snapshot._lock:
            ctx = self._run(request, snapshot, False, affinities, synonyms, merchandising=merchandising)
            corrected = ctx.plan.corrected_text
            # Zero results: correct short words too ("did you mean"), then search again, when
            # that corrects anything (only a corrected page may replace this one; words spelt
            # right that a filter leaves without results are not searched twice).
            if (
                not ctx.candidates.member.any() and ctx.plan.terms and request.q.strip()
                and self._plan(request, snapshot, True, synonyms).corrected_text
            ):
                retry = self._run(request, snapshot, True, affinities, synonyms, merchandising=merchandising)
                if retry.plan.corrected_text and retry.candidates.member.any():
                    ctx, corrected = retry, retry.plan.corrected_text
            if ctx.total is None:
                exact.count(ctx)  # a page without members is counted once it is the one kept (see sort)
            result = shape(ctx, corrected, [s.name for s in self.stages])
        result.matched = int(ctx.matched.sum())
        result.understood = report(ctx.plan.understood) if ctx.plan.understood is not None else None
        result.took_ms = round((time.perf_counter() - started) * 1000, 3)
        return result

    def _plan(
        self, request: SearchRequest, snapshot: Snapshot, correct_short_words: bool, synonyms: SynonymIndex
    ) -> QueryPlan:
        # The plan depends on the text, the snapshot's vocabulary and terms (generation), the
        # approved synonyms (version) and settings fixed for the engine's life; stages only read it.
        key = (request.q, request.prefix, request.understand, correct_short_words, snapshot.generation, id(snapshot), synonyms.key)
        plan: QueryPlan | None = self._plans.get(key)
        if plan is None:
            plan = plan_query(
                request.q, snapshot.vocabulary, snapshot.searcher, self.settings.ranking, request.prefix,
                correct_short_words, synonyms, request.understand, facet_lexicon(snapshot) if request.understand else None,
            )
            self._plans.put(key, plan)
        return plan

    def context_before(self, stage_name: str, request: SearchRequest, affinities: Affinities | None = None) -> SearchContext:
        """The search context exactly as the named stage receives it: every stage before it has
        run. For testing one stage on its own, or looking inside the pipeline from a notebook
        (`stage.run(ctx)` then shows what that stage alone does)."""
        if stage_name not in {s.name for s in self.stages}:
            raise InvalidInput(f"no stage {stage_name!r} in this pipeline: {[s.name for s in self.stages]}")
        affinities = affinities if affinities is not None and request.personalize else Affinities()
        snapshot = self._snapshot
        with snapshot._lock:
            return self._run(request, snapshot, False, affinities, self._synonyms, stop_before=stage_name)

    def _run(
        self,
        request: SearchRequest,
        snapshot: Snapshot,
        correct_short_words: bool,
        affinities: Affinities,
        synonyms: SynonymIndex,
        stop_before: str | None = None,
        merchandising: MerchPlan | None = None,
    ) -> SearchContext:
        plan = self._plan(request, snapshot, correct_short_words, synonyms)
        settings = merchandising.settings(self.settings) if merchandising is not None else self.settings
        ctx = SearchContext(request=request, settings=settings, snapshot=snapshot, plan=plan, merchandising=merchandising)
        ctx.affinities = affinities
        if not request.q.strip() or (plan.understood is not None and not plan.text):
            self._browse(ctx, stop_before)  # an empty query, or only a price or facets ("under 50")
            return ctx
        if not plan.terms and request.mode != Mode.vector and not words(normalize(request.q)):
            # Nothing searchable (only punctuation or emoji): an honest empty page.
            ctx.candidates = Candidates.empty()
            return ctx
        if stop_before in {s.name for s in self.stages if s.kind == StageKind.retriever}:
            self._retrieve(ctx, plan, stop_before)
            return ctx
        key = (plan.text, plan.prefix, request.mode, correct_short_words, snapshot.generation, id(snapshot), synonyms.key)
        cached: Retrieved | None = None if stop_before else self._retrieved.get(key)
        if cached is None:
            cached = self._retrieve(ctx, plan)
            self._retrieved.put(key, cached)
        else:
            ctx.notes["cache"] = "hit"
        if not ctx.filters.is_empty() and self.settings.ranking.exact_results and (cached.match is None or cached.match.pool_capped):
            # Filters inside retrieval: the pool is drawn from qualifying products (search.stages.exact).
            # Not needed when the unfiltered pool holds every match: filtering it is exact.
            # A pin or hide looks for its product among all the pool's candidates: keep them.
            keep_candidates = merchandising is not None and merchandising.names_products()
            members_only = exact.members_only(cached.match, keep_candidates)
            filtered_key = (*key, ctx.filters.model_dump_json(), members_only)
            filtered = None if stop_before else self._retrieved.get(filtered_key)
            if filtered is None:
                scratch = SearchContext(request=request, settings=self.settings, snapshot=snapshot, plan=plan, timings_ms=ctx.timings_ms)
                filtered = self._retrieve(scratch, plan, within=cached, keep_candidates=keep_candidates)
                self._retrieved.put(filtered_key, filtered)
            cached = filtered
            ctx.pool_filtered = True
            ctx.notes["filtered_pool"] = "members" if members_only else "candidates"
        ctx.lexical_hits, ctx.lexical_full = cached.lexical_hits, cached.lexical_full  # type: ignore[assignment]
        ctx.lexical_total, ctx.semantic_hits = cached.lexical_total, cached.semantic_hits  # type: ignore[assignment]
        ctx.query_vector = cached.query_vector
        ctx.match = cached.match
        # The filter stage's assemble() starts the result set from these (see its docstring).
        ctx.candidates = fresh(cached.assembled)
        for stage in self.stages:
            if stage.name == stop_before:
                break
            if stage.kind == StageKind.ranker:
                self._timed(stage, ctx)
        return ctx

    def _retrieve(
        self, ctx: SearchContext, plan: QueryPlan, stop_before: str | None = None, within: Retrieved | None = None,
        keep_candidates: bool = False,
    ) -> Retrieved:
        """Run the retrievers and assemble their candidates (cached per query text).

        The query is encoded in the background while the first retriever runs (the lexical
        one does not use the vector); every later retriever waits for it. `within`: the
        unfiltered retrieval of the same text, whose result set a filtered pool is drawn from;
        `keep_candidates`: that pool keeps the candidates outside the result set too (pins).
        """
        vector: np.ndarray | Future | None
        retrievers = [stage for stage in self.stages if stage.kind == StageKind.retriever]
        if within is not None:
            exact.prepare_filtered_retrieval(ctx, within.match, keep_candidates)
            # With a match set, semantic neighbours that qualify are its extras: no new search.
            vector = within.query_vector if within.match is None else None
            if ctx.members_only and exact.counted_total(ctx, within.match) == 0:
                # No product of the result set passes the filters: no member to retrieve.
                exact.empty_pool(ctx)
                retrievers = []
        else:
            vector = self._start_query_vector(plan) if ctx.request.mode != Mode.bm25 else None
            if vector is not None:
                ctx.notes["query_vector"] = "encoding" if isinstance(vector, Future) else "cached"
        first = True
        for stage in self.stages:
            if stage.name == stop_before:  # context_before(): this retriever's input, vector ready
                ctx.query_vector = vector.result() if isinstance(vector, Future) else vector
                return Retrieved(OrdScores({}), OrdSet(set()), 0, OrdScores({}), None, Candidates.empty())
            if stage not in retrievers:
                continue
            if not first and isinstance(vector, Future):
                vector = vector.result()
            first = False
            ctx.query_vector = None if isinstance(vector, Future) else vector
            self._timed(stage, ctx)
        ctx.query_vector = vector.result() if isinstance(vector, Future) else vector
        exact_results = self.settings.ranking.exact_results
        if within is None:
            if exact_results:
                exact.admit_strong_partials(ctx)
        else:
            ctx.query_vector = within.query_vector
            exact.require_extras(ctx)
        assembled = read_only(assemble(ctx))
        return Retrieved(
            OrdScores(ctx.lexical_hits), OrdSet(ctx.lexical_full), ctx.lexical_total,
            OrdScores(ctx.semantic_hits), ctx.query_vector, assembled,
            within.match if within is not None else exact.match_set(ctx, assembled) if exact_results else None,
        )

    def _browse(self, ctx: SearchContext, stop_before: str | None = None) -> None:
        """An empty query lists the catalog (category pages): every live product, filtered."""
        s = ctx.snapshot
        ords = np.flatnonzero(s.live).astype(np.int64)
        n = len(ords)
        zeros = np.zeros(n)
        c = Candidates(ords, zeros, np.ones(n, bool), np.full(n, np.nan), np.zeros(n, bool), np.ones(n, bool))
        ctx.candidates = c
        ctx.matched = c.member.copy()
        ctx.strong = c.member.copy()  # every product is as relevant as any other to no query
        ctx.filter_masks = filter_masks(ctx, c, ctx.filters)
        for mask in ctx.filter_masks.values():
            c.member &= mask
        for stage in self.stages:
            if stage.name == stop_before:
                break
            if stage.browse:
                self._timed(stage, ctx)

    def _timed(self, stage: Stage, ctx: SearchContext) -> None:
        started = time.perf_counter()
        stage.run(ctx)
        ctx.timings_ms[stage.name] = round((time.perf_counter() - started) * 1000, 3)

    def _query_vector(self, plan: QueryPlan) -> np.ndarray:
        vector = self._vectors.get(plan.semantic_text)
        if vector is None:
            vector = self._embedder.encode_query(plan.semantic_text)
            self._vectors.put(plan.semantic_text, vector)
        return vector

    def _start_query_vector(self, plan: QueryPlan) -> np.ndarray | Future:
        vector = self._vectors.get(plan.semantic_text)
        if vector is not None:
            return vector
        return self._encoder.submit(self._query_vector, plan)

    # ---- other reads ---------------------------------------------------------------------

    def get_product(self, product_id: str) -> Product | None:
        return self._snapshot.product(product_id)

    def hit(self, product: Product, score: float = 0.0) -> Hit:
        return product_hit(self._snapshot, product, score)

    def similar(
        self, product_id: str, size: list[str] | None = None, affinities: Affinities | None = None, limit: int = 12
    ) -> list[Hit]:
        """Nearest products in meaning, in stock, and available in the visitor's size (a `size`
        given, else the sizes their affinities learned): the block shown when a size is sold out."""
        snapshot = self._snapshot
        ord_ = snapshot.id_to_ord.get(product_id)
        if ord_ is None:
            raise ProductNotFound(product_id)
        request = SearchRequest(filters=Filters(size=size or []))
        ctx = SearchContext(request=request, settings=self.settings, snapshot=snapshot, plan=QueryPlan(text="", terms=[], prefix=False))
        ctx.affinities = affinities or Affinities()
        sizes = preferred_sizes(ctx)
        wanted = limit
        k = min(max(wanted * 8, 50), snapshot.faiss.ntotal)
        while True:
            ids, scores = snapshot.search_vectors(snapshot.vectors[ord_], k)
            keep = (ids >= 0) & (ids != ord_)
            ids, scores = ids[keep].astype(np.int64), scores[keep]
            ok = snapshot.live[ids] & snapshot.in_stock[ids]
            if size:  # asked for: like the search filter, only products with it in stock
                ok &= snapshot.size.mask_at(size, ids)
            elif sizes:  # learned: products in other size systems (shoes, one size) still fit
                ok &= snapshot.size.mask_at(sizes, ids) | ~snapshot.size_all.mask_at(sizes, ids)
            if ok.sum() >= wanted or k >= snapshot.faiss.ntotal:
                break
            k = min(k * 4, snapshot.faiss.ntotal)
        hits = []
        for other, score in zip(ids[ok][:wanted].tolist(), scores[ok][:wanted].tolist(), strict=True):
            product = snapshot.products[other]
            if product is not None:
                hits.append(self.hit(product, float(score)))
        return hits

    def suggest(self, q: str, limit: int = 8) -> list[Suggestion]:
        """Completions for the search bar: catalog words, brands, categories, product titles."""
        return suggest(self._snapshot, q, limit, self.search)

    def index_info(self) -> dict[str, Any]:
        snapshot = self._snapshot
        return {
            "index_version": snapshot.version_dir.name,
            "format_version": snapshot.manifest.format_version,
            "model": snapshot.manifest.model,
            "built_at": snapshot.manifest.built_at.isoformat(),
            **snapshot.counts(),
            "changes_applied": snapshot.seq,
        }


def _freeze_gc() -> None:
    """Move everything allocated so far (the snapshot's ~15 objects per product) out of the
    cyclic garbage collector's sight: a full collection would otherwise walk all of them,
    over a second at 100k products, inside whichever request triggered it."""
    gc.freeze()
