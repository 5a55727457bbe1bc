"""SearchService: the running shop. Built from the settings, it owns everything with a
lifetime — the search library (`SearchEngine`), the stores (visitor profiles and events, the
search log, synonyms), the catalog writer, the watcher thread and the background jobs
(index refresh, synonym reload, abandoned-search webhook, retention purge) — and opens and
closes them in one place.

Each consumer gets the narrow thing it needs: the API routes and the CLI get this service,
the report runner a `ReportSources` (the logs it reads and a search function), the webhook the
two logs, the synonym generators `SynonymInputs`. Nothing is handed the whole engine to reach
a store.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog

from indexer.catalog import Product
from indexer.embedding import Embedder
from indexer.normalize import normalize, words
from indexer.publish import pull_published
from indexer.updates import CatalogUpdater
from search.affinities import Affinities
from search.analytics.report_runner import Period, ReportSources, run_report
from search.analytics.search_log import ANALYTICS_FILE, SearchLog
from search.analytics.webhook import AbandonedSearchWebhook
from search.behaviour import referrer_host
from search.buffer import BUFFER_FILE, LocalBuffer
from search.database import Database
from search.engine import SearchEngine
from search.erasure import erase_visitor
from search.errors import Unavailable
from search.merchandising.plan import MerchPlan, annotate
from search.merchandising.service import Merchandising, impressions_from
from search.merchandising.store import MERCHANDISING_FILE, MerchandisingStore
from search.models import Hit, SearchRequest, SearchResult, Suggestion
from search.personalization.visitors import Visitors
from search.query import SynonymIndex
from search.replication import CatalogFeed, ReplicatedCatalog
from search.segments import Segment, segment_of
from search.settings import Settings
from synonyms.generators import SynonymInputs
from synonyms.synonym_store import SYNONYMS_FILE, Status, SynonymStore

log = structlog.get_logger("vitrine.service")

PURGE_EVERY_SECONDS = 3600.0


class SearchService:
    def __init__(self, settings: Settings, engine: SearchEngine | None = None, embedder: Embedder | None = None) -> None:
        self.settings = settings
        # Opening the index fails loudly (IndexNotFound / UnsupportedIndexFormat with the
        # command that fixes it) rather than serving errors.
        self.engine = engine or SearchEngine(settings.index_dir, settings, embedder=embedder)
        self._lock = threading.Lock()
        self._updater: CatalogUpdater | None = None
        self._updater_lock = threading.Lock()
        self._visitors: Visitors | None = None
        self._search_log: SearchLog | None = None
        self._synonym_store: SynonymStore | None = None
        self._webhook: AbandonedSearchWebhook | None = None
        self._merchandising: Merchandising | None = None
        self._catalog: ReplicatedCatalog | None = None
        self._failing: set[str] = set()  # watcher jobs whose store is down (logged once)
        self._watcher: threading.Thread | None = None
        self._stop = threading.Event()
        # Shared state in PostgreSQL when configured (migrated here, at start-up); else SQLite files.
        self.database: Database | None = Database.open(settings.database_url) if settings.database_url else None
        self._buffer: LocalBuffer | None = None
        # Looked for on every search until merchandising is first configured (by any process).
        self._merchandising_file = str(settings.state_dir / MERCHANDISING_FILE)
        # A database down at start-up does not stop the service: synonyms load when it answers.
        self._guarded("synonym reload", lambda: self.reload_synonyms(only_if_exists=True))

    @classmethod
    def open(cls, index_dir: str | Path, settings: Settings | None = None, embedder: Embedder | None = None) -> SearchService:
        return cls(settings or Settings(index_dir=Path(index_dir)), embedder=embedder)

    # ---- stores, opened on first use ---------------------------------------------------------

    @property
    def visitors(self) -> Visitors:
        """Events, profiles and erasure."""
        with self._lock:
            if self._visitors is None:
                self._visitors = Visitors(self.settings, lambda: self.engine.snapshot, self.database, self._local_buffer())
            return self._visitors

    @property
    def search_log(self) -> SearchLog:
        with self._lock:
            if self._search_log is None:
                analytics = self.settings.analytics
                if self.database is not None:
                    self._search_log = SearchLog.on_postgres(
                        self.database, analytics.flush_interval_seconds, analytics.queue_size, self._local_buffer()
                    )
                else:
                    self._search_log = SearchLog(
                        self.settings.state_dir / ANALYTICS_FILE, analytics.flush_interval_seconds, analytics.queue_size
                    )
            return self._search_log

    def _local_buffer(self) -> LocalBuffer | None:
        """Where writes wait while a shared store (PostgreSQL, Redis) is down; None when every
        store is a local file (a local disk that fails is an error to report, not to wait out).
        Called with `self._lock` held."""
        shared = self.database is not None or self.settings.personalization.profile_store.startswith(("redis", "unix"))
        if shared and self._buffer is None:
            self._buffer = LocalBuffer(self.settings.state_dir / BUFFER_FILE, self.settings.analytics.buffer_size)
        return self._buffer

    @property
    def synonyms(self) -> SynonymStore:
        with self._lock:
            if self._synonym_store is None:
                self._synonym_store = (
                    SynonymStore.on_postgres(self.database) if self.database is not None
                    else SynonymStore(self.settings.state_dir / SYNONYMS_FILE)
                )
            return self._synonym_store

    @property
    def merchandising(self) -> Merchandising:
        """Rules, ranking profiles and A/B tests (their store, and the popularity learned from
        the last 30 days of impressions and events)."""
        with self._lock:
            if self._merchandising is None:
                def impressions() -> tuple[list, list]:
                    since = time.time() - 30 * 86400
                    self.search_log.flush()
                    return impressions_from(self.search_log.between(since), self.visitors.events.between(since))

                store = MerchandisingStore.on_postgres(self.database) if self.database is not None else None
                self._merchandising = Merchandising(self.settings.state_dir, impressions, store)
            return self._merchandising

    def _merch_plan(self, request: SearchRequest, segment: Segment, preview: dict[str, Any] | None) -> MerchPlan | None:
        """The rules, profile and experiment variant for this request; None while no
        merchandising store exists (nothing was ever configured) and nothing is previewed."""
        if (preview is None and self._merchandising is None and self.database is None
                and not os.path.exists(self._merchandising_file)):
            return None
        return self.merchandising.plan(request, segment, **(preview or {}))

    @property
    def webhook(self) -> AbandonedSearchWebhook:
        search_log, events = self.search_log, self.visitors.events
        with self._lock:
            if self._webhook is None:
                self._webhook = AbandonedSearchWebhook(
                    search_log, events, self.settings.analytics, self.settings.state_dir / ANALYTICS_FILE
                )
            return self._webhook

    @property
    def updater(self) -> CatalogUpdater:
        """Writes catalog changes into the current version (admin endpoints use it)."""
        with self._updater_lock:
            version_dir = self.engine.snapshot.version_dir
            if self._updater is None or self._updater.version_dir != version_dir:
                if self._updater is not None:
                    self._updater.close()
                self._updater = CatalogUpdater(self.engine.index_dir, self.settings.index, self.engine.embedder)
            return self._updater

    @property
    def catalog(self) -> ReplicatedCatalog:
        """Catalog changes go through here: the local index, then (with a database) the feed
        every replica follows (search/replication.py)."""
        with self._lock:
            if self._catalog is None:
                feed = CatalogFeed(self.database) if self.database is not None else None
                self._catalog = ReplicatedCatalog(lambda: self.updater, feed)
            return self._catalog

    def catch_up(self) -> int:
        """Apply the catalog changes other replicas accepted (nothing without a database)."""
        if self.database is None:
            return 0
        applied = self.catalog.catch_up()
        if applied:
            self.refresh()
        return applied

    # ---- searching ---------------------------------------------------------------------------

    def search(
        self, request: SearchRequest, record: bool = True, synonyms: SynonymIndex | None = None,
        preview: dict[str, Any] | None = None,
    ) -> SearchResult:
        """Answer one search for a visitor (their affinities, their segment) and log it.
        `record=False` keeps it out of the search log (warm-up, tools); `preview` adds unsaved
        merchandising (`extra_rules`, `profile`) to see its effect before saving it."""
        started = time.perf_counter()
        affinities, segment = self._visitor(request)
        merch = self._merch_plan(request, segment, preview)
        if merch is not None:
            request = merch.request  # with the filters rules add
            if not merch.personalize:  # the visitor's experiment variant turns it off
                affinities = Affinities()
        result = self.engine.search(request, affinities=affinities, synonyms=synonyms, merchandising=merch)
        if merch is not None:
            annotate(result, merch)
        result.segment = segment.key()
        if result.debug is not None:
            result.debug["segment"] = segment.model_dump(mode="json")
        result.took_ms = round((time.perf_counter() - started) * 1000, 3)
        if record and self.settings.analytics.search_log:
            self.search_log.record(request, result)
        return result

    def _visitor(self, request: SearchRequest) -> tuple[Affinities, Segment]:
        """The visitor's affinities (empty when anonymous) and the request's segment."""
        affinities = Affinities()
        if request.visitor_id:
            try:
                affinities = self.visitors.affinities(request.visitor_id, request.session_id)
            except Unavailable as error:
                # The profile store is down: answer without personalization rather than not at all.
                self._degraded("profiles", error)
        context = request.context
        segment = segment_of(
            returning=affinities.returning,
            explicit_source=context.traffic_source,
            utm_medium=context.utm_medium,
            referrer_host=referrer_host(context.referrer),
            explicit_device=context.device,
            user_agent=context.user_agent,
        )
        return affinities, segment

    def suggest(self, q: str, limit: int = 8) -> list[Suggestion]:
        return self.engine.suggest(q, limit)

    def get_product(self, product_id: str) -> Product | None:
        return self.engine.get_product(product_id)

    def similar(self, product_id: str, visitor_id: str | None = None, size: list[str] | None = None, limit: int = 12) -> list[Hit]:
        affinities = None
        if visitor_id:
            try:
                affinities = self.visitors.affinities(visitor_id)
            except Unavailable as error:
                self._degraded("profiles", error)
        return self.engine.similar(product_id, size=size, affinities=affinities, limit=limit)

    def recently_viewed(self, visitor_id: str, limit: int = 20) -> list[Hit]:
        hits = []
        for product_id, _ts in self.visitors.recent(visitor_id):
            product = self.engine.get_product(product_id)
            if product is not None:  # deleted since it was viewed
                hits.append(self.engine.hit(product))
            if len(hits) >= limit:
                break
        return hits

    def erase_visitor(self, visitor_id: str) -> dict[str, int]:
        """Right to erasure: everything kept about the visitor (see search/erasure.py)."""
        return erase_visitor(self.visitors, self.search_log, self.synonyms if self._has_synonyms() else None, visitor_id)

    # ---- synonyms ------------------------------------------------------------------------------

    def _has_synonyms(self) -> bool:
        """Whether a synonym store exists (opened here, written by another process, or shared)."""
        return (self._synonym_store is not None or self.database is not None
                or (self.settings.state_dir / SYNONYMS_FILE).exists())

    def reload_synonyms(self, only_if_exists: bool = False) -> bool:
        """Hand the engine the approved synonyms when a decision was made (by any process)."""
        if only_if_exists and not self._has_synonyms():
            return False
        store = self.synonyms
        version = store.version()
        if version == self.engine.synonyms.version:
            return False
        pairs = [pair for entry in store.approved() for pair in entry.pairs()]
        self.engine.use_synonyms(SynonymIndex(pairs, version))
        log.info("synonyms loaded", version=version, pairs=len(pairs))
        return True

    def pending_synonyms_for(self, query: str) -> list[str]:
        if not self._has_synonyms():
            return []
        typed = words(normalize(query))
        phrases = {" ".join(typed[i : i + n]) for n in (1, 2, 3) for i in range(len(typed) - n + 1)}
        return [entry.solr() for entry in self.synonyms.list(Status.pending) if phrases & set(entry.terms)]

    def synonym_inputs(self) -> SynonymInputs:
        """What the synonym generators read: the logs, the engine's index and a what-if search."""
        return SynonymInputs(
            engine=self.engine,
            search_log=self.search_log,
            events=self.visitors.events,
            store=self.synonyms,
            settings=self.settings,
        )

    # ---- reports --------------------------------------------------------------------------------

    def report_sources(self) -> ReportSources:
        return ReportSources(
            search_log=self.search_log,
            events=self.visitors.events,
            attribution_window_seconds=self.settings.analytics.attribution_window_minutes * 60.0,
            search=lambda request: self.search(request, record=False),
            pending_synonyms=self.pending_synonyms_for,
        )

    def run_report(
        self, name: str, period: Period, segment: dict[str, str | None] | None = None, limit: int = 100, min_searches: int = 5
    ) -> list[dict[str, Any]]:
        return run_report(self.report_sources(), name, period, segment, limit, min_searches)

    # ---- lifecycle --------------------------------------------------------------------------------

    def warm_up(self) -> None:
        """Load the model, then encode the head queries' vectors (settings.warm_queries)."""
        self.engine.warm_up()
        if self.settings.warm_queries and self.settings.analytics.search_log:
            try:
                head = self.search_log.top_queries(time.time() - 30 * 86400, self.settings.warm_queries)
            except (Unavailable, OSError, sqlite3.Error) as error:
                # The shared database is down, or the state volume is unusable: start cold rather
                # than not at all (warming is a speed-up; /ready reports the store).
                self._degraded("search log", error)
                return
            encoded = self.engine.encode_queries(head, self.settings.warm_query_seconds)
            log.info("head query vectors encoded", queries=encoded, of=len(head))

    def refresh(self) -> bool:
        """A newly published version or logged catalog changes (from any process)."""
        return self.engine.refresh()

    def pull_published_index(self) -> str | None:
        """Copy a version newly published to `index.publish_dir` (by `vitrine index build
        --publish` on another machine) into this index directory and point CURRENT at it; the
        next refresh swaps to it. Returns the version pulled, None when nothing was new."""
        publish_dir = self.settings.index.publish_dir
        if publish_dir is None:
            return None
        version = pull_published(publish_dir, self.engine.index_dir, keep=self.settings.index.keep_versions)
        if version is not None:
            log.info("published index version pulled", version=version, publish_dir=str(publish_dir))
        return version

    def start_watching(self, interval: float | None = None) -> None:
        interval = interval or self.settings.server.refresh_interval_seconds

        def loop() -> None:
            next_purge = time.monotonic() + PURGE_EVERY_SECONDS
            next_webhook = time.monotonic()
            next_pull = time.monotonic()
            while not self._stop.wait(interval):
                # Each job on its own: a database that is down must not stop the local index
                # from refreshing (and the other way round).
                if self.settings.index.publish_dir is not None and time.monotonic() >= next_pull:
                    next_pull = time.monotonic() + self.settings.index.publish_poll_seconds
                    self._guarded("published index pull", self.pull_published_index)
                self._guarded("catalog feed", self.catch_up)
                self._guarded("refresh", self.refresh)
                self._guarded("synonym reload", lambda: self.reload_synonyms(only_if_exists=True))
                if self._buffer is not None:
                    self._guarded("buffered events", self.deliver_buffered)
                if self.settings.analytics.abandoned_webhook_url and time.monotonic() >= next_webhook:
                    next_webhook = time.monotonic() + self.settings.analytics.webhook_check_every_seconds
                    self._guarded("webhook", self.webhook.run_once)
                if time.monotonic() >= next_purge:
                    next_purge = time.monotonic() + PURGE_EVERY_SECONDS
                    self._guarded("retention purge", self.purge_expired_behaviour)

        self._stop.clear()
        self._watcher = threading.Thread(target=loop, name="vitrine-refresh", daemon=True)
        self._watcher.start()

    def _degraded(self, store: str, error: Exception) -> None:
        if store not in self._failing:
            log.warning("store down: answering without it", store=store, error=str(error))
        self._failing.add(store)

    def deliver_buffered(self) -> int:
        """Store the event batches that waited out an outage (the search log delivers its own)."""
        if self._visitors is None:
            return 0
        delivered = self._visitors.deliver_buffered()
        self._failing.discard("profiles")
        return delivered

    def store_health(self) -> dict[str, str]:
        """Each store's state for /ready: "ok", or "degraded: <reason>" (searches still answer;
        writes wait in the local buffer). Cheap: one trivial query per store."""
        checks: dict[str, Callable[[], None]] = {}
        if self.database is not None:
            checks["database"] = self.database.ping
        with self._lock:
            visitors, search_log, synonyms = self._visitors, self._search_log, self._synonym_store
            merchandising = self._merchandising
        if visitors is not None:
            checks["profiles"] = visitors.profiles.ping
            checks["events"] = visitors.events.ping
        if search_log is not None:
            checks["search_log"] = search_log.ping
        if synonyms is not None:
            checks["synonyms"] = synonyms.ping
        if merchandising is not None:
            checks["merchandising"] = merchandising.store.ping
        health: dict[str, str] = {}
        for name, ping in checks.items():
            try:
                ping()
                health[name] = "ok"
            except Exception as error:  # whatever the store raises, /ready reports it
                health[name] = f"degraded: {error}"
        if self._buffer is not None:
            waiting = self._buffer.waiting()
            health["buffer"] = f"degraded: {waiting} writes waiting for the store" if waiting else "ok"
        if self._catalog is not None and self._catalog.waiting:
            health["catalog_feed"] = f"degraded: {self._catalog.waiting} catalog changes waiting for the database"
        return health

    def _guarded(self, job: str, run: Callable[[], object]) -> None:
        """Run one watcher job; keep serving the current snapshot whatever happens. A store
        that is down is reported once per outage, not four times a second."""
        try:
            run()
            self._failing.discard(job)
        except Unavailable as error:
            if job not in self._failing:
                log.warning("background job waiting for a store", job=job, error=str(error))
            self._failing.add(job)
        except Exception:
            log.exception("background job failed", job=job)

    def purge_expired_behaviour(self) -> dict[str, int]:
        """Retention: behaviour older than personalization.retention_days is deleted."""
        purged: dict[str, int] = {}
        if self._visitors is not None:
            purged = self._visitors.purge_expired()
            if self._search_log is not None:
                cutoff = time.time() - self.settings.personalization.retention_days * 86400.0
                purged["searches"] = self._search_log.purge(cutoff)
            if any(purged.values()):
                log.info("expired behaviour purged", **purged)
        return purged

    def health(self) -> dict[str, Any]:
        return {"status": "ok", **self.engine.index_info()}

    def close(self) -> None:
        self._stop.set()
        if self._watcher:
            self._watcher.join(timeout=5)
        with self._updater_lock:
            if self._updater is not None:
                self._updater.close()
                self._updater = None
        with self._lock:
            if self._webhook is not None:
                self._webhook.close()
                self._webhook = None
            if self._visitors is not None:
                self._visitors.close()
                self._visitors = None
            if self._search_log is not None:
                self._search_log.close()  # writes every queued record first
                self._search_log = None
            if self._synonym_store is not None:
                self._synonym_store.close()
                self._synonym_store = None
            if self._merchandising is not None:
                self._merchandising.close()
                self._merchandising = None
            if self._buffer is not None:
                self._buffer.close()
                self._buffer = None
            if self.database is not None:
                self.database.close()  # after every store that borrows its connections
        self.engine.close()
