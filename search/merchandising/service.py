"""What merchandising applies to one request: the engine's hook.

`Merchandising.plan(request, segment)` resolves, before ranking: the running experiment's
variant for the visitor, the rules that fire (unless the variant turns rules off), the filters
they add, and the ranking profile (a rule's `profile` action, else the variant's, else
`default`). The merchandise stages read the plan from the search context.

Rules, profiles and experiments are re-read from the store when its version changes (checked
at most once a second, so another process's change is live within a second). Popularity is
re-learned from the analytics log every `POPULARITY_TTL` seconds.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

from search.analytics.reports import attribute
from search.errors import Unavailable
from search.merchandising.experiments import Experiment, assign
from search.merchandising.experiments import report as experiment_stats
from search.merchandising.plan import MerchPlan, annotate, merge_filters
from search.merchandising.profiles import DEFAULT_PROFILE, Popularity, Profile, learn_popularity
from search.merchandising.rules import AddFilter, Rule, UseProfile, fires
from search.merchandising.store import MERCHANDISING_FILE, MerchandisingStore, NotFound
from search.models import SearchRequest
from search.segments import Segment

log = structlog.get_logger("vitrine.merchandising")

POPULARITY_TTL = 300.0
CHECK_EVERY = 1.0


class Merchandising:
    def __init__(
        self, state_dir: Path, impressions: Callable[[], tuple[list, list]] | None = None,
        store: MerchandisingStore | None = None,
    ) -> None:
        self.store = store or MerchandisingStore(Path(state_dir) / MERCHANDISING_FILE)
        self._impressions = impressions
        self._lock = threading.Lock()
        self._version = -1
        self._checked = 0.0
        self._rules: list[Rule] = []
        self._profiles: dict[str, Profile] = {}
        self._running: Experiment | None = None
        self._popularity = Popularity()
        self._popularity_at = -float("inf")
        self._learning = threading.Lock()

    def _current(self) -> None:
        now = time.monotonic()
        if now - self._checked < CHECK_EVERY:
            return
        with self._lock:
            self._checked = now
            try:
                version = self.store.version()
            except Unavailable as error:
                # The shared database is down: keep steering with what was loaded last.
                log.warning("merchandising store unreachable: keeping the loaded rules", error=str(error))
                return
            if version == self._version:
                return
            self._rules = self.store.rules()
            self._profiles = {p.name: p for p in self.store.profiles()}
            self._running = self.store.running()
            self._version = version
            log.info("merchandising loaded", version=version, rules=len(self._rules),
                     experiment=self._running.id if self._running else None)

    def changed(self) -> None:
        """Re-read on the next search (the admin API calls this after a change)."""
        self._checked = 0.0

    def popularity(self, force: bool = False) -> Popularity:
        """The learned popularity. When stale, it is re-learned in a background thread and the
        current table keeps serving (a search never waits for a scan of the log), except the
        first time and when forced."""
        if self._impressions is None:
            return self._popularity
        stale = time.monotonic() - self._popularity_at > POPULARITY_TTL
        if force or self._popularity_at == -float("inf"):
            self._learn()
        elif stale and self._learning.acquire(blocking=False):
            threading.Thread(target=self._learn, args=(True,), name="vitrine-popularity", daemon=True).start()
        return self._popularity

    def _learn(self, release: bool = False) -> None:
        try:
            assert self._impressions is not None
            impressions, events = self._impressions()
            self._popularity = learn_popularity(impressions, events)  # one reference assignment
            self._popularity_at = time.monotonic()
            log.info("popularity learned", products=len(self._popularity), mean_ctr=round(self._popularity.mean_ctr, 4))
        except Exception:  # keep the previous table
            log.exception("popularity learning failed")
        finally:
            if release:
                self._learning.release()

    def plan(
        self,
        request: SearchRequest,
        segment: Segment,
        *,
        extra_rules: list[Rule] | None = None,
        profile: Profile | None = None,
        now: float | None = None,
    ) -> MerchPlan:
        """What applies to this request. `extra_rules` / `profile` preview unsaved ones."""
        self._current()
        moment = datetime.fromtimestamp(time.time() if now is None else now, UTC)
        plan = MerchPlan(request=request)
        experiment = self._running
        use_rules = True
        chosen = None
        if experiment is not None and request.visitor_id:
            variant = assign(experiment, experiment.id, request.visitor_id)
            plan.experiment, plan.variant = experiment, variant
            use_rules, plan.personalize, chosen = variant.rules, variant.personalize, variant.profile
        rules = [r for r in [*(self._rules if use_rules else []), *(extra_rules or [])] if fires(r, request, segment, moment)]
        plan.rules = rules
        filters = request.filters
        for rule in rules:
            for action in rule.actions:
                if isinstance(action, AddFilter):
                    filters = merge_filters(filters, action.filters)
                    plan.did(rule, f"filter {action.filters.model_dump_json(exclude_defaults=True)}")
                elif isinstance(action, UseProfile):
                    chosen = action.name
                    plan.did(rule, f"profile {action.name}")
        plan.resolved = {rule_id: list(done) for rule_id, done in plan.effects.items()}
        if filters != request.filters:
            plan.request = request.model_copy(update={"filters": filters})
        if profile is not None:
            plan.profile = profile
        else:
            name = chosen or DEFAULT_PROFILE
            plan.profile = self._profiles.get(name) or self._profiles.get(DEFAULT_PROFILE)
            if name not in self._profiles:
                log.warning("unknown ranking profile: using default", profile=name)
        if plan.profile is not None and not plan.profile.is_neutral():
            plan.popularity = self.popularity()
        return plan

    def fired_ids(self, plan: MerchPlan) -> list[str]:
        return [str(r.id) for r in plan.rules]

    def close(self) -> None:
        self.store.close()


def experiment_report(store: MerchandisingStore, search_log: Any, events: Any, window: float, experiment_id: str) -> dict:
    """The A/B report of one experiment from the search log and the event log (raises NotFound).

    Outcomes are attributed over every search of the period (analytics' attribution), then
    only the experiment's searches are summed per variant and per visitor."""
    experiment = store.experiment(experiment_id)
    search_log.flush()
    until = (experiment.stopped_at or time.time()) + 1
    searches = list(search_log.between(experiment.started_at, until))
    outcomes = attribute(searches, events.between(experiment.started_at, until + window), window)
    return experiment_stats(experiment, searches, outcomes)


def impressions_from(searches, events) -> tuple[list, list]:
    """(search id, shown product ids, offset) per logged search, and the events, for popularity."""
    return [(s.search_id, json.loads(s.shown or "[]"), s.page_offset) for s in searches], list(events)


__all__ = ["Merchandising", "MerchPlan", "NotFound", "annotate", "experiment_report", "merge_filters", "impressions_from"]
