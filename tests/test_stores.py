"""The event log and the search log: one suite, run on SQLite and on PostgreSQL.

1. Events are stored in one transaction; a retried event (same visitor_id and event_id) counts once.
2. `remove` takes back exactly the rows of a batch; reads by visitor and by time see the rest.
3. Erasure and retention delete by visitor and by age; `trace_of` finds sessions and queries.
4. Searches recorded on the request path are written by the writer thread and read back whole.
5. Session searches without a visitor id are erased with the visitor's sessions.
6. Merchandising: objects versioned, every change audited, keys unique even when two stores
   (two replicas) create at once, one running experiment at a time.
7. Every store answers `ping`.
8. The search log names the most searched query texts of a period, most searched first.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from search.analytics.event_log import EventLog
from search.analytics.search_log import SearchLog
from search.behaviour import Event
from search.database import Database
from search.merchandising.experiments import ExperimentBody
from search.merchandising.profiles import ProfileBody
from search.merchandising.rules import RuleBody
from search.merchandising.store import Conflict, MerchandisingStore, NotFound
from search.models import SearchRequest, SearchResult

T0 = 1_700_000_000.0


@pytest.fixture(params=["sqlite", "postgres"])
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[type], object]]:
    """Opens an EventLog or SearchLog on the parametrized backend; closes them afterwards."""
    opened: list = []
    database: Database | None = None
    if request.param == "postgres":
        database = Database.open(request.getfixturevalue("pg_url"))

    def make(kind: type) -> object:
        if kind is MerchandisingStore:
            store = kind.on_postgres(database) if database is not None else kind(tmp_path / "merchandising.db")
        elif database is not None:
            store = kind.on_postgres(database, flush_interval=0.05) if kind is SearchLog else kind.on_postgres(database)
        else:
            store = kind(tmp_path / "analytics.db", flush_interval=0.05) if kind is SearchLog else kind(tmp_path / "analytics.db")
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()
    if database is not None:
        database.close()


def _event(visitor: str, event_id: str | None = None, **fields) -> Event:
    kind = fields.pop("type", "view")
    if kind != "search":
        fields.setdefault("product_id", "p0")
    return Event(type=kind, visitor_id=visitor, event_id=event_id, **fields)


def test_a_retried_event_counts_once(open_store) -> None:
    events: EventLog = open_store(EventLog)
    first = events.append([(_event("v1", "e1", product_id="p1"), T0), (_event("v1", "e2"), T0 + 1)])
    again = events.append([(_event("v1", "e1", product_id="p1"), T0), (_event("v1", None), T0 + 2)])
    assert [position for position, _ in first] == [0, 1]
    assert [position for position, _ in again] == [1]  # e1 was stored already
    assert events.count() == 3
    assert [e.product_id for e in events.of_visitor("v1")] == ["p1", "p0", "p0"]


def test_remove_takes_back_exactly_one_batch(open_store) -> None:
    events: EventLog = open_store(EventLog)
    events.append([(_event("v1"), T0)])
    batch = events.append([(_event("v2"), T0 + 1), (_event("v2"), T0 + 2)])
    assert events.remove([row for _, row in batch]) == 2
    assert [e.visitor_id for e in events.between()] == ["v1"]
    assert list(events.between(T0 + 1)) == []


def test_erasure_and_retention_delete_by_visitor_and_by_age(open_store) -> None:
    events: EventLog = open_store(EventLog)
    events.append([
        (_event("old", session_id="s0", type="search", query="red shoes"), T0),
        (_event("new", session_id="s1", type="search", query="blue hat"), T0 + 100),
        (_event("new", session_id="s2"), T0 + 200),
    ])
    assert events.trace_of("new") == ({"s1", "s2"}, {"blue hat"})
    assert events.purge(T0 + 50) == 1
    assert events.delete_visitor("new") == 2
    events.checkpoint()
    assert events.count() == 0


def _search(q: str, visitor: str | None, session: str | None, search_id: str) -> tuple[SearchRequest, SearchResult]:
    request = SearchRequest(q=q, visitor_id=visitor, session_id=session)
    result = SearchResult(query=q, total=3, hits=[], facets={}, search_id=search_id, took_ms=1.5)
    return request, result


def test_recorded_searches_are_written_and_read_back_whole(open_store) -> None:
    searches: SearchLog = open_store(SearchLog)
    for i in range(20):
        searches.record(*_search(f"query {i % 4}", "v1" if i % 2 else None, f"s{i % 3}", f"id{i}"))
    searches.flush()
    assert searches.count() == 20
    rows = list(searches.between(time.time() - 60))
    assert {r.search_id for r in rows} == {f"id{i}" for i in range(20)}
    assert all(r.total == 3 and r.latency_ms == 1.5 for r in rows)
    assert searches.searched_by_others({"query 1", "nobody typed this"}) == {"query 1"}


def test_top_queries_are_the_most_searched_texts_of_the_period(open_store) -> None:
    searches: SearchLog = open_store(SearchLog)
    for q, times in (("dress", 3), ("red shoes", 2), ("hat", 1), ("", 4)):
        for i in range(times):
            searches.record(*_search(q, None, "s", f"{q}-{i}"))
    searches.flush()
    assert searches.top_queries(time.time() - 60, 2) == ["dress", "red shoes"]
    assert searches.top_queries(time.time() + 60, 10) == []


def test_session_searches_go_with_the_visitor(open_store) -> None:
    searches: SearchLog = open_store(SearchLog)
    searches.record(*_search("mine", "v1", "s1", "a"))
    searches.record(*_search("mine too", None, "s1", "b"))
    searches.record(*_search("theirs", "v2", "s1", "c"))
    searches.flush()
    assert searches.trace_of("v1") == ({"s1"}, {"mine"})
    assert searches.delete_visitor("v1") == 1
    deleted, queries = searches.delete_sessions({"s1"}, "v1")
    assert (deleted, queries) == (1, {"mine too"})
    assert [s.search_id for s in searches.between()] == ["c"]
    assert searches.purge(time.time() + 1) == 1


RULE = RuleBody.model_validate({"name": "pin", "actions": [{"type": "pin", "product_id": "p1", "position": 1}]})


def test_merchandising_changes_are_versioned_and_audited(open_store) -> None:
    store: MerchandisingStore = open_store(MerchandisingStore)
    start = store.version()
    rule = store.create_rule(RULE, "maria")
    renamed = store.update_rule(rule.id, RULE.model_copy(update={"name": "pin two"}), "tom")
    assert (renamed.version, renamed.name) == (2, "pin two")
    store.put_profile("margin", ProfileBody(margin=0.5), "maria")
    assert [p.name for p in store.profiles()] == ["default", "margin"]
    store.delete_rule(rule.id, "tom")
    assert store.rules() == [] and store.version() == start + 4
    with pytest.raises(NotFound):
        store.rule(rule.id)
    trail = store.audit("rule", str(rule.id))
    assert [(a["action"], a["actor"]) for a in trail] == [("created", "maria"), ("updated", "tom"), ("deleted", "tom")]


def test_two_stores_creating_at_once_never_share_a_rule_id(open_store) -> None:
    first: MerchandisingStore = open_store(MerchandisingStore)
    second: MerchandisingStore = open_store(MerchandisingStore)
    ids: list[int] = []

    def create(store: MerchandisingStore) -> None:
        for _ in range(10):
            ids.append(store.create_rule(RULE, "bot").id)

    threads = [threading.Thread(target=create, args=(s,)) for s in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(ids) == list(range(1, 21))
    assert [r.id for r in first.rules()] == list(range(1, 21))  # in creation order


def test_one_experiment_runs_at_a_time(open_store) -> None:
    store: MerchandisingStore = open_store(MerchandisingStore)
    body = ExperimentBody.model_validate({"name": "ab", "variants": [{"name": "a", "share": 50}, {"name": "b", "share": 50}]})
    running = store.start_experiment(body, "maria")
    with pytest.raises(Conflict):
        store.start_experiment(body, "maria")
    assert store.stop_experiment(running.id, "maria").status == "stopped"
    assert store.running() is None


def test_every_store_answers_ping(open_store) -> None:
    open_store(EventLog).ping()
    open_store(SearchLog).ping()
    open_store(MerchandisingStore).ping()
