"""Visitors: events in, profiles and segments out, erasure on request.

The engine owns one `Visitors` (opened on first use). Ingestion folds a batch of events into
the event log and into each visitor's profile; searches read the profile once per request.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog

from search.analytics.event_log import EventLog
from search.analytics.search_log import ANALYTICS_FILE
from search.behaviour import Event, Rejected, parse_batch
from search.buffer import LocalBuffer
from search.database import Database
from search.errors import Unavailable
from search.personalization.profile import (
    Affinities,
    affinities,
    apply_event,
    new_profile,
    product_signals,
)
from search.personalization.profile_stores import ProfileStore, open_profile_store
from search.settings import Settings
from search.snapshot import Snapshot

log = structlog.get_logger("vitrine.visitors")


@dataclass
class IngestResult:
    accepted: int
    rejected: list[Rejected] = field(default_factory=list)
    # Accepted (kept in the log) but about products the index does not know (yet).
    unknown_products: list[str] = field(default_factory=list)
    # Already stored (same visitor_id and event_id): a retried batch, not counted again.
    duplicates: int = 0
    # Accepted while a store was down: kept in the local buffer, stored when it is back.
    buffered: int = 0


class Visitors:
    def __init__(
        self, settings: Settings, snapshot: Callable[[], Snapshot], database: Database | None = None,
        buffer: LocalBuffer | None = None,
    ) -> None:
        self.settings = settings
        self._snapshot = snapshot
        state = settings.state_dir
        retention = settings.personalization.retention_days * 86400.0
        self.profiles: ProfileStore = open_profile_store(settings.personalization.profile_store, state, retention, database)
        self.events = EventLog.on_postgres(database) if database is not None else EventLog(state / ANALYTICS_FILE)
        self._cache: dict[tuple[str, str | None], tuple[float, Affinities]] = {}
        # With shared stores (PostgreSQL, Redis), batches accepted during an outage wait here.
        self._buffer = buffer

    def ingest(self, raw_events: list[Any], now: float | None = None) -> IngestResult:
        now = time.time() if now is None else now
        accepted, rejected = parse_batch(raw_events)
        retention = self.settings.personalization.retention_days * 86400.0
        timed: list[tuple[Event, float]] = []
        for index, event in enumerate(accepted):
            ts = event.ts if event.ts is not None else now
            if ts < now - retention:
                rejected.append(Rejected(index=index, reason="ts is older than the retention period"))
                continue
            timed.append((event, ts))
        snapshot = self._snapshot()
        unknown: set[str] = set()
        per_visitor: dict[str, list[tuple[Event, float]]] = defaultdict(list)
        for event, ts in timed:
            per_visitor[event.visitor_id].append((event, ts))
            if event.product_id and snapshot.product(event.product_id) is None:
                unknown.add(event.product_id)
        try:
            stored, fresh = self._store(timed, snapshot)
        except Unavailable as error:
            if self._buffer is None:
                raise
            # A store is down: the batch waits on local disk and is stored when it is back
            # (`deliver_buffered`); past the buffer's bound this raises and the batch is refused.
            self._buffer.put("events", [[event.model_dump(mode="json"), ts] for event, ts in timed], items=len(timed))
            self._forget(per_visitor)
            rejected.sort(key=lambda r: r.index)
            log.warning("events buffered until the store is back", events=len(timed), error=str(error))
            return IngestResult(accepted=len(timed), rejected=rejected, unknown_products=sorted(unknown), buffered=len(timed))
        self._forget(per_visitor)
        rejected.sort(key=lambda r: r.index)
        duplicates = len(timed) - len(stored)
        log.info("events ingested", accepted=len(stored), duplicates=duplicates, rejected=len(rejected), visitors=len(fresh))
        return IngestResult(accepted=len(stored), rejected=rejected, unknown_products=sorted(unknown), duplicates=duplicates)

    def _store(
        self, timed: list[tuple[Event, float]], snapshot: Snapshot
    ) -> tuple[list[tuple[int, int]], dict[str, list[tuple[Event, float]]]]:
        """The batch and its profile updates commit together or not at all: events first (one
        transaction), then profiles (atomic per store); if profiles fail, the events go too."""
        stored = self.events.append(timed)
        fresh: dict[str, list[tuple[Event, float]]] = defaultdict(list)
        for position, _row in stored:
            event, ts = timed[position]
            fresh[event.visitor_id].append((event, ts))
        try:
            self.profiles.update({visitor: self._updater(items, snapshot) for visitor, items in fresh.items()})
        except Exception as error:
            self._undo([row for _, row in stored], error)
        return stored, fresh

    def deliver_buffered(self) -> int:
        """Store the batches that waited out an outage, oldest first; returns how many events.
        Raises `Unavailable` while the store is still down (the rest keep waiting)."""
        if self._buffer is None:
            return 0

        def store(body: list) -> None:
            timed = [(Event.model_validate(event), float(ts)) for event, ts in body]
            _stored, fresh = self._store(timed, self._snapshot())
            self._forget(fresh)

        return self._buffer.drain("events", store)

    @property
    def buffered(self) -> int:
        """Events accepted during an outage, not yet stored."""
        return self._buffer.waiting("events") if self._buffer is not None else 0

    def _undo(self, row_ids: list[int], error: Exception) -> None:
        try:
            self.events.remove(row_ids)
        except Exception as undo_error:
            log.error("events kept without their profile update", events=len(row_ids), error=str(undo_error))
            raise Unavailable(
                f"the profile store failed ({error}) and the events could not be taken back: "
                "resend the batch with event_id on each event so it counts once"
            ) from error
        raise Unavailable(f"the profile store cannot write right now ({error}); nothing of the batch was stored: "
                          "send it again") from error

    def _updater(self, items: list[tuple[Event, float]], snapshot: Snapshot) -> Callable[[dict | None], dict]:
        personalization = self.settings.personalization
        items = sorted(items, key=lambda item: item[1])

        def update(profile: dict | None) -> dict:
            profile = profile or new_profile(items[0][1])
            for event, ts in items:
                product = snapshot.product(event.product_id) if event.product_id else None
                signals = {}
                if product is not None:
                    ord_ = snapshot.id_to_ord[product.id]
                    price = float(snapshot.price[ord_])
                    signals = product_signals(product, event, personalization.profile_attributes, price)
                apply_event(profile, event, ts, signals, personalization)
            return profile

        return update

    def affinities(self, visitor_id: str, session_id: str | None = None, now: float | None = None) -> Affinities:
        """The visitor's affinities, reused for `profile_cache_seconds`: a shopper typing in the
        search bar sends a search per keystroke, and their profile cannot change in between
        except through events this process ingests (which drop the cached copy at once)."""
        now = time.time() if now is None else now
        key = (visitor_id, session_id)
        cached = self._cache.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        result = affinities(self.profiles.get(visitor_id), now, session_id, self.settings.personalization)
        ttl = self.settings.personalization.profile_cache_seconds
        if ttl > 0:
            if len(self._cache) > 50_000:
                self._cache.clear()
            self._cache[key] = (now + ttl, result)
        return result

    def _forget(self, visitors) -> None:
        visitors = set(visitors)
        for key in [k for k in self._cache if k[0] in visitors]:
            self._cache.pop(key, None)

    def recent(self, visitor_id: str) -> list[tuple[str, float]]:
        profile = self.profiles.get(visitor_id) or {}
        return [(product_id, ts) for product_id, ts in profile.get("recent", [])]

    def erase(self, visitor_id: str) -> dict[str, int]:
        """Everything kept about one visitor: their profile and every event they sent."""
        profile = self.profiles.delete(visitor_id)
        self._forget([visitor_id])
        events = self.events.delete_visitor(visitor_id)
        log.info("visitor erased", profile=profile, events=events)
        return {"profiles": int(profile), "events": events}

    def purge_expired(self, now: float | None = None) -> dict[str, int]:
        cutoff = (time.time() if now is None else now) - self.settings.personalization.retention_days * 86400.0
        return {"profiles": self.profiles.purge(cutoff), "events": self.events.purge(cutoff)}

    def close(self) -> None:
        self.profiles.close()
        self.events.close()
