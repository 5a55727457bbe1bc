"""SearchEngine: the library entry point. `engine.search(SearchRequest) -> SearchResult`.

It owns the current Snapshot (swapped atomically when a new index version is published), the
query embedder, the caches and the ranking pipeline assembled from settings. It has no HTTP
code: the FastAPI app, the CLI, benchmarks and tests all call it the same way.
"""

from __future__ import annotations

import gc
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Hashable, Iterator, Mapping, Set
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import structlog

from indexer import format as fmt
from indexer.catalog import Product
from indexer.embedding import Embedder
from indexer.updates import CatalogUpdater
from search.columns import price_counts
from search.models import Filters, Hit, Mode, SearchRequest, SearchResult, StageExplain, Suggestion
from search.personalization.events import referrer_host
from search.personalization.profile import Affinities
from search.personalization.segments import Segment, segment_of
from search.pipeline import Candidates, SearchContext, Stage
from search.query import QueryPlan, SynonymIndex, normalize, plan_query, words
from search.settings import Settings
from search.snapshot import Snapshot, faiss_threads
from search.stages import STAGES
from search.stages.filter import assemble, fresh

log = structlog.get_logger("vitrine.engine")

FACETS = ("brand", "category", "colour", "size")
# Stages that still apply to a category page (empty query): no relevance to fuse.
BROWSE_STAGES = ("personalize", "stock", "sort")
PURGE_EVERY_SECONDS = 3600.0


class LRUCache:
    def __init__(self, size: int) -> None:
        self.size = size
        self._data: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Any:
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def put(self, key: Hashable, value: Any) -> None:
        if self.size <= 0:
            return
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.size:
                self._data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


class _OrdScores(Mapping[int, float]):
    """A retriever's ordinal -> score output kept as two arrays (a fifth of a dict's memory).

    Read-only; a dict for lookups is built only if a stage asks for one.
    """

    __slots__ = ("ords", "scores", "_dict")

    def __init__(self, hits: Mapping[int, float]) -> None:
        self.ords = np.fromiter(hits.keys(), dtype=np.int64, count=len(hits))
        self.scores = np.fromiter(hits.values(), dtype=np.float64, count=len(hits))
        self._dict: dict[int, float] | None = None

    def _lookup(self) -> dict[int, float]:
        if self._dict is None:
            self._dict = dict(zip(self.ords.tolist(), self.scores.tolist(), strict=True))
        return self._dict

    def __getitem__(self, key: int) -> float:
        return self._lookup()[key]

    def __contains__(self, key: object) -> bool:
        return key in self._lookup()

    def __iter__(self) -> Iterator[int]:
        return iter(self.ords.tolist())

    def __len__(self) -> int:
        return len(self.ords)


class _OrdSet(Set[int]):
    """A set of ordinals kept as an array; read-only, hashed only if a stage asks."""

    __slots__ = ("ords", "_set")

    def __init__(self, ords: Set[int]) -> None:
        self.ords = np.fromiter(ords, dtype=np.int64, count=len(ords))
        self._set: frozenset[int] | None = None

    def __contains__(self, key: object) -> bool:
        if self._set is None:
            self._set = frozenset(self.ords.tolist())
        return key in self._set

    def __iter__(self) -> Iterator[int]:
        return iter(self.ords.tolist())

    def __len__(self) -> int:
        return len(self.ords)


@dataclass(frozen=True)
class _Retrieved:
    """What the retrievers found for one query text: cached, since shoppers repeat queries.

    `assembled` is the candidate set built from them (ordinals, BM25, full match, cosine,
    semantic hit) with read-only arrays: stages only read these signals (the pipeline
    contract), so each request starts its own result set over the same arrays.
    """

    lexical_hits: _OrdScores
    lexical_full: _OrdSet
    lexical_total: int
    semantic_hits: _OrdScores
    query_vector: np.ndarray | None
    assembled: Candidates


class SearchEngine:
    def __init__(self, index_dir: str | Path, settings: Settings | None = None, embedder: Embedder | None = None) -> None:
        self.settings = settings or Settings(index_dir=Path(index_dir))
        self.index_dir = Path(index_dir)
        faiss_threads(1)
        self._snapshot = self._open_current()
        _freeze_gc()
        self._embedder = embedder or Embedder(self._index_config(self._snapshot))
        self.stages: list[Stage] = [STAGES[name]() for name in self.settings.ranking.stages]
        self._vectors = LRUCache(self.settings.query_cache_size)
        self._retrieved = LRUCache(self.settings.query_cache_size)
        self._plans = LRUCache(self.settings.query_cache_size)
        # Encodes the query while the lexical retriever runs (both release the GIL).
        self._encoder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vitrine-encode")
        self._updater: CatalogUpdater | None = None
        self._updater_lock = threading.Lock()
        self._visitors = None
        self._visitors_lock = threading.Lock()
        self._search_log = None
        self._synonym_store = None
        self._webhook = None
        self._synonym_index = SynonymIndex()
        self._load_synonyms(only_if_exists=True)
        self._watcher: threading.Thread | None = None
        self._stop = threading.Event()

    # ---- lifecycle -----------------------------------------------------------------------

    def _open_current(self) -> Snapshot:
        return self._open_snapshot(fmt.current_version_dir(self.index_dir))

    def _open_snapshot(self, version_dir: Path) -> Snapshot:
        return Snapshot(
            version_dir,
            ef_search=self.settings.index.hnsw_ef_search,
            profile_attributes=tuple(self.settings.personalization.profile_attributes),
        )

    def _index_config(self, snapshot: Snapshot):
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
        self.search(SearchRequest(q="warm up"), record=False)
        self._vectors.clear()
        self._retrieved.clear()
        self._plans.clear()

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
            if (new.manifest.model, new.manifest.backend) != (old.manifest.model, old.manifest.backend):
                self._embedder = Embedder(self._index_config(new))
            # One reference assignment: requests in flight finish on the old snapshot.
            self._snapshot = new
            with self._updater_lock:
                if self._updater is not None:
                    self._updater.close()
                    self._updater = None
            self._vectors.clear()
            self._retrieved.clear()
            self._plans.clear()
            _freeze_gc()
            log.info("index version swapped", old=old.version_dir.name, new=current.name)
            changed = True
        if self._snapshot.refresh():
            changed = True
        return changed

    def start_watching(self, interval: float | None = None) -> None:
        interval = interval or self.settings.server.refresh_interval_seconds

        def loop() -> None:
            next_purge = time.monotonic() + PURGE_EVERY_SECONDS
            next_webhook = time.monotonic()
            while not self._stop.wait(interval):
                try:
                    self.refresh()
                    self._load_synonyms(only_if_exists=True)
                    if self.settings.analytics.abandoned_webhook_url and time.monotonic() >= next_webhook:
                        next_webhook = time.monotonic() + self.settings.analytics.webhook_check_every_seconds
                        self.webhook.run_once()
                    if time.monotonic() >= next_purge:
                        next_purge = time.monotonic() + PURGE_EVERY_SECONDS
                        self._purge_expired_behaviour()
                except Exception:  # keep serving the current snapshot whatever happens
                    log.exception("refresh failed")

        self._stop.clear()
        self._watcher = threading.Thread(target=loop, name="vitrine-refresh", daemon=True)
        self._watcher.start()

    def _purge_expired_behaviour(self) -> None:
        """Retention: behaviour older than personalization.retention_days is deleted."""
        if self._visitors is not None:
            purged = self._visitors.purge_expired()
            if self._search_log is not None:
                cutoff = time.time() - self.settings.personalization.retention_days * 86400.0
                purged["searches"] = self._search_log.purge(cutoff)
            if any(purged.values()):
                log.info("expired behaviour purged", **purged)

    def close(self) -> None:
        self._stop.set()
        if self._watcher:
            self._watcher.join(timeout=5)
        with self._updater_lock:
            if self._updater is not None:
                self._updater.close()
                self._updater = None
        self._encoder.shutdown(wait=False)
        with self._visitors_lock:
            if self._visitors is not None:
                self._visitors.close()
                self._visitors = None
            if self._search_log is not None:
                self._search_log.close()  # writes every queued record first
                self._search_log = None
            if self._synonym_store is not None:
                self._synonym_store.close()
                self._synonym_store = None
            if self._webhook is not None:
                self._webhook.close()
                self._webhook = None

    @property
    def search_log(self):  # -> SearchLog, opened on first use
        from search.analytics.store import ANALYTICS_FILE, SearchLog

        with self._visitors_lock:
            if self._search_log is None:
                analytics = self.settings.analytics
                self._search_log = SearchLog(
                    self.settings.state_dir / ANALYTICS_FILE, analytics.flush_interval_seconds, analytics.queue_size
                )
            return self._search_log

    @property
    def webhook(self):  # -> AbandonedSearchWebhook, opened on first use
        from search.analytics.webhook import AbandonedSearchWebhook

        with self._visitors_lock:
            if self._webhook is None:
                self._webhook = AbandonedSearchWebhook(self)
        return self._webhook

    # ---- synonyms ------------------------------------------------------------------------

    @property
    def synonyms(self):  # -> synonyms.store.SynonymStore, opened on first use
        from synonyms.store import SYNONYMS_FILE, SynonymStore

        with self._visitors_lock:
            if self._synonym_store is None:
                self._synonym_store = SynonymStore(self.settings.state_dir / SYNONYMS_FILE)
            return self._synonym_store

    def _has_synonyms(self) -> bool:
        """Whether a synonym store exists (opened here, or written by another process)."""
        from synonyms.store import SYNONYMS_FILE

        return self._synonym_store is not None or (self.settings.state_dir / SYNONYMS_FILE).exists()

    def _load_synonyms(self, only_if_exists: bool = False) -> bool:
        """Rebuild the approved-synonym lookups when a decision was made (by any process)."""
        if only_if_exists and not self._has_synonyms():
            return False
        store = self.synonyms
        version = store.version()
        if version == self._synonym_index.version:
            return False
        pairs = [pair for entry in store.approved() for pair in entry.pairs()]
        # One reference assignment; caches key on the index's identity.
        self._synonym_index = SynonymIndex(pairs, version)
        log.info("synonyms loaded", version=version, pairs=len(pairs))
        return True

    def reload_synonyms(self) -> bool:
        return self._load_synonyms()

    def synonym_index_with(self, extra_pairs: list[tuple[str, str]]) -> SynonymIndex:
        """The approved synonyms plus some more (to measure a suggestion before approving it)."""
        current = self._synonym_index
        pairs = [(" ".join(k), t) for k, targets in current.targets.items() for t in targets]
        return SynonymIndex(pairs + list(extra_pairs), version=-1)

    def pending_synonyms_for(self, query: str) -> list[str]:
        from synonyms.store import Status

        if not self._has_synonyms():
            return []
        typed = words(normalize(query))
        phrases = {" ".join(typed[i : i + n]) for n in (1, 2, 3) for i in range(len(typed) - n + 1)}
        return [entry.solr() for entry in self.synonyms.list(Status.pending) if phrases & set(entry.terms)]

    def erase_visitor(self, visitor_id: str) -> dict[str, int]:
        """Right to erasure: the visitor's profile, events and searches."""
        erased = self.visitors.erase(visitor_id)
        erased["searches"] = self.search_log.delete_visitor(visitor_id)
        return erased

    @property
    def visitors(self):  # -> Visitors (events, profiles, erasure), opened on first use
        from search.personalization.service import Visitors

        with self._visitors_lock:
            if self._visitors is None:
                self._visitors = Visitors(self.settings, lambda: self._snapshot)
            return self._visitors

    @property
    def updater(self) -> CatalogUpdater:
        """Writes catalog changes into the current version (admin endpoints use it)."""
        with self._updater_lock:
            if self._updater is None or self._updater.version_dir != self._snapshot.version_dir:
                self._updater = CatalogUpdater(self.index_dir, self.settings.index, self._embedder)
            return self._updater

    # ---- search --------------------------------------------------------------------------

    def search(self, request: SearchRequest, record: bool = True, synonyms: SynonymIndex | None = None) -> SearchResult:
        """Answer one search. `record=False` keeps it out of the search log (warm-up, tools);
        `synonyms` replaces the approved ones (what-if: the impact of a suggestion)."""
        started = time.perf_counter()
        snapshot = self._snapshot
        affinities, segment = self._visitor(request)
        with snapshot._lock:
            ctx = self._run(request, snapshot, correct_short_words=False, affinities=affinities, synonyms=synonyms)
            corrected = ctx.plan.corrected_text
            if not ctx.candidates.member.any() and ctx.plan.terms and request.q.strip():
                # Zero results: correct short words too ("did you mean"), then search again.
                retry = self._run(request, snapshot, correct_short_words=True, affinities=affinities, synonyms=synonyms)
                if retry.plan.corrected_text and retry.candidates.member.any():
                    ctx, corrected = retry, retry.plan.corrected_text
            result = self._shape(ctx, corrected)
        result.segment = segment.key()
        result.applied_synonyms = list(ctx.plan.applied_synonyms)
        result.personalized = bool(affinities)
        if result.debug is not None:
            result.debug["segment"] = segment.model_dump(mode="json")
            result.debug["personalized"] = bool(affinities)
            if affinities:
                result.debug["affinities"] = {a: dict(affinities.top(a)) for a in sorted(affinities.prefs)}
        result.took_ms = round((time.perf_counter() - started) * 1000, 3)
        if record and self.settings.analytics.search_log:
            self.search_log.record(request, result)
        return result

    def _plan(
        self, request: SearchRequest, snapshot: Snapshot, correct_short_words: bool, synonyms: SynonymIndex
    ) -> QueryPlan:
        # The plan depends on the text, the snapshot's vocabulary and terms (generation), the
        # approved synonyms (version) and settings fixed for the engine's life; stages only read it.
        key = (request.q, request.prefix, correct_short_words, snapshot.generation, id(snapshot), id(synonyms))
        plan: QueryPlan | None = self._plans.get(key)
        if plan is None:
            plan = plan_query(
                request.q, snapshot.vocabulary, snapshot.searcher, self.settings.ranking, request.prefix,
                correct_short_words, synonyms,
            )
            self._plans.put(key, plan)
        return plan

    def _visitor(self, request: SearchRequest) -> tuple[Affinities, Segment]:
        """The visitor's affinities (empty when anonymous or opted out) and the request's segment."""
        affinities = Affinities()
        if request.visitor_id:
            affinities = self.visitors.affinities(request.visitor_id, request.session_id)
        context = request.context
        segment = segment_of(
            returning=affinities.returning,
            explicit_source=context.traffic_source,
            utm_medium=context.utm_medium,
            referrer_host=referrer_host(context.referrer),
            explicit_device=context.device,
            user_agent=context.user_agent,
        )
        return (affinities if request.personalize else Affinities()), segment

    def _run(
        self,
        request: SearchRequest,
        snapshot: Snapshot,
        correct_short_words: bool,
        affinities: Affinities | None = None,
        synonyms: SynonymIndex | None = None,
    ) -> SearchContext:
        synonyms = synonyms if synonyms is not None else self._synonym_index
        plan = self._plan(request, snapshot, correct_short_words, synonyms)
        ctx = SearchContext(request=request, settings=self.settings, snapshot=snapshot, plan=plan)
        if affinities is not None:
            ctx.affinities = affinities
        if not request.q.strip():
            self._browse(ctx)
            return ctx
        if not plan.terms and request.mode != Mode.vector and not words(normalize(request.q)):
            # Nothing searchable (only punctuation or emoji): an honest empty page.
            ctx.candidates = Candidates.empty()
            return ctx
        key = (plan.text, plan.prefix, request.mode, correct_short_words, snapshot.generation, id(snapshot), id(synonyms))
        cached: _Retrieved | None = self._retrieved.get(key)
        skip = ("lexical", "semantic")
        if cached is None:
            # The query is encoded in the background while the lexical retriever (which does not
            # use the vector) runs; any other retrieval stage waits for it.
            vector = self._start_query_vector(plan) if request.mode != Mode.bm25 else None
            for stage in self.stages:
                if stage.name not in skip:
                    continue
                if stage.name != "lexical" and isinstance(vector, Future):
                    vector = vector.result()
                ctx.query_vector = None if isinstance(vector, Future) else vector
                self._timed(stage, ctx)
            ctx.query_vector = vector.result() if isinstance(vector, Future) else vector
            cached = _Retrieved(
                _OrdScores(ctx.lexical_hits), _OrdSet(ctx.lexical_full), ctx.lexical_total,
                _OrdScores(ctx.semantic_hits), ctx.query_vector, _read_only(assemble(ctx)),
            )
            self._retrieved.put(key, cached)
        else:
            ctx.lexical_hits, ctx.lexical_full = cached.lexical_hits, cached.lexical_full  # type: ignore[assignment]
            ctx.lexical_total, ctx.semantic_hits = cached.lexical_total, cached.semantic_hits  # type: ignore[assignment]
            ctx.query_vector = cached.query_vector
            ctx.notes["cache"] = "hit"
        # The filter stage's assemble() starts the result set from these (see its docstring).
        ctx.candidates = fresh(cached.assembled)
        for stage in self.stages:
            if stage.name not in skip:
                self._timed(stage, ctx)
        return ctx

    def _browse(self, ctx: SearchContext) -> None:
        """An empty query lists the catalog (category pages): every live product, filtered."""
        from search.stages.filter import filter_masks

        s = ctx.snapshot
        ords = np.flatnonzero(s.live).astype(np.int64)
        n = len(ords)
        zeros = np.zeros(n)
        c = Candidates(ords, zeros, np.ones(n, bool), np.full(n, np.nan), np.zeros(n, bool), np.ones(n, bool))
        ctx.candidates = c
        ctx.matched = c.member.copy()
        ctx.strong = c.member.copy()  # every product is as relevant as any other to no query
        ctx.filter_masks = filter_masks(ctx, c, ctx.request.filters)
        for mask in ctx.filter_masks.values():
            c.member &= mask
        for stage in self.stages:
            if stage.name in BROWSE_STAGES:
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

    # ---- shaping the result --------------------------------------------------------------

    def _shape(self, ctx: SearchContext, corrected: str | None) -> SearchResult:
        request = ctx.request
        c = ctx.candidates
        snapshot = ctx.snapshot
        page = ctx.order[request.offset : request.offset + request.limit]
        scores = c.score()[page] if len(page) else np.zeros(0)
        page_ords = c.ords[page]
        prices = snapshot.price[page_ords]
        hits = []
        for i, ord_, price, score in zip(page.tolist(), page_ords.tolist(), prices.tolist(), scores.tolist(), strict=True):
            product = snapshot.products[ord_]
            if product is None:
                continue
            hit = Hit(
                id=product.id,
                title=product.title,
                brand=product.brand,
                price=None if price != price else price,  # nan: no price
                url=product.url,
                image=product.image,
                in_stock=product.in_stock,
                available_sizes=product.available_sizes,
                score=score,
            )
            if request.explain:
                hit.explain = {
                    name: StageExplain(
                        contribution=float(values[i]),
                        details={k: _plain(v[i]) for k, v in c.details.get(name, {}).items()},
                    )
                    for name, values in c.contributions.items()
                }
            hits.append(hit)
        result = SearchResult(
            search_id=uuid.uuid4().hex,
            query=request.q,
            corrected_query=corrected,
            relaxed=ctx.relaxed,
            total=int(len(ctx.order)),
            hits=hits,
            facets=self._facets(ctx),
            took_ms=0.0,
        )
        if request.explain:
            result.debug = {
                "terms": [
                    {"word": t.word, "alternatives": [(a.word, a.kind, round(a.weight, 3)) for a in t.alternatives]}
                    for t in ctx.plan.terms
                ],
                "prefix": ctx.plan.prefix,
                "synonyms": ctx.plan.applied_synonyms,
                "stages": [s.name for s in self.stages],
                "timings_ms": ctx.timings_ms,
                "lexical_matches": ctx.lexical_total,
                "index_version": snapshot.version_dir.name,
                **ctx.notes,
            }
        return result

    def _facets(self, ctx: SearchContext) -> dict[str, dict[str, int]]:
        """Counts per value, each facet ignoring its own filter (so shoppers can add values)."""
        c = ctx.candidates
        s = ctx.snapshot
        facets: dict[str, dict[str, int]] = {}
        members: np.ndarray | None = None  # the result set's ordinals, shared by most facets
        for name in (*FACETS, "price"):
            if len(c) == 0:
                facets[name] = {}
                continue
            if name in ctx.filter_masks:
                ords = c.ords[ctx.matched & _passes_all_but(ctx.filter_masks, name, len(c))]
            else:
                if members is None:
                    members = c.ords[c.member]
                ords = members
            facets[name] = price_counts(s.price[ords]) if name == "price" else getattr(s, name).counts(ords)
        return facets

    # ---- other reads ---------------------------------------------------------------------

    def get_product(self, product_id: str) -> Product | None:
        return self._snapshot.product(product_id)

    def hit(self, product: Product, score: float = 0.0) -> Hit:
        ord_ = self._snapshot.id_to_ord.get(product.id)
        price = float(self._snapshot.price[ord_]) if ord_ is not None else float("nan")
        return Hit(
            id=product.id, title=product.title, brand=product.brand, price=None if price != price else price,
            url=product.url, image=product.image, in_stock=product.in_stock,
            available_sizes=product.available_sizes, score=score,
        )

    def similar(self, product_id: str, visitor_id: str | None = None, size: list[str] | None = None, limit: int = 12) -> list[Hit]:
        """Nearest products in meaning, in stock, and available in the visitor's size (a `size`
        given, else the sizes their profile learned): the block shown when a size is sold out."""
        from search.stages.stock import preferred_sizes

        snapshot = self._snapshot
        ord_ = snapshot.id_to_ord.get(product_id)
        if ord_ is None:
            raise KeyError(product_id)
        request = SearchRequest(visitor_id=visitor_id, filters=Filters(size=size or []))
        affinities, _segment = self._visitor(request)
        ctx = SearchContext(request=request, settings=self.settings, snapshot=snapshot, plan=QueryPlan(text="", terms=[], prefix=False))
        ctx.affinities = affinities
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

    def recently_viewed(self, visitor_id: str, limit: int = 20) -> list[Hit]:
        hits = []
        for product_id, _ts in self.visitors.recent(visitor_id):
            product = self._snapshot.product(product_id)
            if product is not None:  # deleted since it was viewed
                hits.append(self.hit(product))
            if len(hits) >= limit:
                break
        return hits

    def suggest(self, q: str, limit: int = 8) -> list[Suggestion]:
        """Completions for the search bar: catalog words, brands, categories, product titles."""
        from search.suggest import suggest

        return suggest(self, q, limit)

    def health(self) -> dict[str, Any]:
        snapshot = self._snapshot
        return {
            "status": "ok",
            "index_version": snapshot.version_dir.name,
            "format_version": snapshot.manifest.format_version,
            "model": snapshot.manifest.model,
            "built_at": snapshot.manifest.built_at.isoformat(),
            **snapshot.counts(),
            "changes_applied": snapshot.seq,
        }


def _read_only(c: Candidates) -> Candidates:
    for array in (c.ords, c.bm25, c.full_match, c.cosine, c.semantic_hit, c.proximity, c.coverage):
        array.flags.writeable = False
    return c


def _freeze_gc() -> None:
    """Move everything allocated so far (the snapshot's ~15 objects per product) out of the
    cyclic garbage collector's sight: a full collection would otherwise walk all of them,
    over a second at 100k products, inside whichever request triggered it."""
    gc.freeze()


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
