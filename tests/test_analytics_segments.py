"""Segment reports are consistent with the totals.

Properties checked:
  1. For random logs, the figures of each segment dimension's values add up to the unfiltered
     totals (searches, clicks, purchases, revenue, per query and overall).
  2. The issue's example: a visitor's purchase made through a desktop search is not handed to
     their earlier mobile search when the report is filtered to mobile.
  3. A search emptied only by its filters is reported apart from those whose words matched
     nothing (on a real index, through the API).
  4. Traffic source names the storefront sends (instagram, google, newsletter) map to our
     sources; unknown names are `referral`, never `direct`.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from indexer.embedding import Embedder
from search.analytics import reports
from search.analytics.event_log import LoggedEvent
from search.analytics.search_log import LoggedSearch
from search.api.app import create_app
from search.behaviour import EventContext, TrafficSource
from search.segments import traffic_source
from search.service import SearchService
from search.settings import Settings

T = 1_750_000_000.0
WINDOW = 1800.0
SOURCES = ("direct", "paid", "social")
KINDS = ("new", "returning")
DEVICES = ("mobile", "desktop")
QUERIES = ("red dress", "shoes", "hat")

search_rows = st.tuples(
    st.sampled_from(QUERIES), st.floats(0, 7200), st.integers(0, 3), st.sampled_from(["v1", "v2", "v3", None]),
    st.sampled_from(SOURCES), st.sampled_from(KINDS), st.sampled_from(DEVICES), st.integers(0, 5),
)
event_rows = st.tuples(
    st.sampled_from(["click", "add_to_cart", "purchase", "view"]), st.floats(0, 9000),
    st.sampled_from(["v1", "v2", "v3"]), st.integers(-1, 40), st.floats(0, 200),
)


def _log(raw_searches, raw_events) -> tuple[list[LoggedSearch], list[LoggedEvent]]:
    searches = [
        LoggedSearch(f"s{i}", T + dt, q, q, total, None, "[]", v, "sess", src, kind, dev, None, 1.0, 0)
        for i, (q, dt, _, v, src, kind, dev, total) in enumerate(raw_searches)
    ]
    events = []
    for kind, dt, visitor, ref, value in raw_events:
        # ref: -1 no search id, beyond the log an unknown id, else the id of a logged search.
        search_id = None if ref < 0 else f"s{ref}"
        events.append(LoggedEvent(T + dt, kind, visitor, "sess", "p1", None, search_id, None, None, value,
                                  None, None, None))
    return searches, events


def _figures(rows: list[dict]) -> dict[str, tuple[int, int, int, float]]:
    return {r["query"]: (r["searches"], r["with_click"], r["with_purchase"], r["revenue"]) for r in rows}


@settings(max_examples=150, deadline=None)
@given(st.lists(search_rows, max_size=30), st.lists(event_rows, max_size=40))
def test_segment_figures_add_up_to_the_totals(raw_searches, raw_events) -> None:
    searches, events = _log(raw_searches, raw_events)
    _, all_outcomes = reports.segment_outcomes(searches, events, WINDOW, {})
    totals = _figures(reports.top_queries(searches, all_outcomes, limit=100))
    for dimension, values in (("traffic_source", SOURCES), ("visitor", KINDS), ("device", DEVICES)):
        summed: dict[str, list[float]] = defaultdict(lambda: [0, 0, 0, 0.0])
        for value in values:
            current, outcomes = reports.segment_outcomes(searches, events, WINDOW, {dimension: value})
            for query, figures in _figures(reports.top_queries(current, outcomes, limit=100)).items():
                for i, x in enumerate(figures):
                    summed[query][i] += x
        assert set(summed) == set(totals)
        for query, (n, clicked, bought, revenue) in totals.items():
            got = summed[query]
            assert (got[0], got[1], got[2]) == (n, clicked, bought), (dimension, query)
            assert got[3] == pytest.approx(revenue, abs=0.01 * len(QUERIES) + 1e-9)
        by_value = {r["value"]: r for r in reports.conversion(searches, all_outcomes) if r["segment"] == dimension}
        assert sum(r["searches"] for r in by_value.values()) == len(searches)
        overall = reports.conversion(searches, all_outcomes)[0]
        assert sum(r["revenue"] for r in by_value.values()) == pytest.approx(overall["revenue"], abs=0.01 * len(values))


def test_a_desktop_purchase_is_not_counted_for_the_earlier_mobile_search() -> None:
    searches = [
        LoggedSearch("m", T, "red dress", "red dress", 8, None, "[]", "v1", "s", "direct", "new", "mobile", None, 1, 0),
        LoggedSearch("d", T + 60, "red dress", "red dress", 8, None, "[]", "v1", "s", "direct", "new", "desktop",
                     None, 1, 0),
    ]
    events = [LoggedEvent(T + 120, "purchase", "v1", "s", "p1", None, "d", None, None, 39.5, None, None, None)]
    mobile, outcomes = reports.segment_outcomes(searches, events, WINDOW, {"device": "mobile"})
    row = reports.top_queries(mobile, outcomes)[0]
    assert (row["searches"], row["with_purchase"], row["revenue"]) == (1, 0, 0.0)
    desktop, outcomes = reports.segment_outcomes(searches, events, WINDOW, {"device": "desktop"})
    row = reports.top_queries(desktop, outcomes)[0]
    assert (row["with_purchase"], row["revenue"]) == (1, 39.5)


@pytest.mark.parametrize(("sent", "expected"), [
    ("instagram", "social"), ("Facebook", "social"), ("tiktok", "social"), ("google", "organic"),
    ("newsletter", "email"), ("cpc", "paid"), ("paid", "paid"), ("myblog", "referral"),
])
def test_traffic_source_names_map_to_documented_sources(sent: str, expected: str) -> None:
    assert traffic_source(sent, None, None).value == expected
    assert EventContext(traffic_source=sent).traffic_source == TrafficSource(expected)


def test_an_unknown_source_name_with_a_referrer_uses_the_referrer() -> None:
    assert traffic_source("partner-x", None, "www.pinterest.com").value == "social"
    assert traffic_source(None, None, None).value == "direct"


ADMIN = {"X-Admin-Key": "k"}


@pytest.fixture
def live(mutable_index_dir: Path, embedder: Embedder) -> Iterator[tuple[SearchService, TestClient]]:
    settings = Settings(index_dir=mutable_index_dir, server={"admin_key": "k"})
    service = SearchService.open(mutable_index_dir, settings, embedder=embedder)
    with TestClient(create_app(settings, service=service)) as client:
        yield service, client
    service.close()


def test_a_search_emptied_by_its_filters_is_not_a_zero_result_query(live) -> None:
    engine, client = live
    visitor = f"v-{uuid.uuid4().hex}"
    emptied = client.get("/search", params={"q": "dress", "size": "XXXS-none", "visitor_id": visitor}).json()
    assert emptied["total"] == 0
    assert client.get("/search", params={"q": "zorbflake", "visitor_id": visitor}).json()["total"] == 0
    client.get("/search", params={"q": "dress", "visitor_id": visitor, "traffic_source": "instagram"})
    zero = client.get("/reports/zero-results", params={"since": "1h"}, headers=ADMIN).json()["rows"]
    assert [r["query"] for r in zero] == ["zorbflake"]
    filtered = client.get("/reports/filtered-to-zero", params={"since": "1h"}, headers=ADMIN).json()["rows"]
    assert len(filtered) == 1
    row = filtered[0]
    assert (row["query"], row["filters"], row["searches"]) == ("dress", {"size": ["XXXS-none"]}, 1)
    assert row["matched_without_filters"] > 0
    social = client.get("/reports/conversion", params={"since": "1h", "traffic_source": "social"}, headers=ADMIN)
    assert social.json()["rows"][0]["searches"] == 1
