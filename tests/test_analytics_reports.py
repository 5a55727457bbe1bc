"""Search reports against hand-computed figures: attribution, counts, visitors, trend, CTR,
conversion and revenue; then the same reports through the service, the API and the CLI."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from indexer.embedding import Embedder
from search.analytics import reports
from search.analytics.event_log import LoggedEvent
from search.analytics.report_runner import Period, parse_time
from search.analytics.search_log import LoggedSearch
from search.api.app import create_app
from search.models import SearchRequest
from search.service import SearchService
from search.settings import Settings

T = 1_750_000_000.0  # a fixed "now" for the pure report tests
MIN = 60.0
WINDOW = 30 * MIN


def _search(sid: str, q: str, ts: float, total: int, visitor: str | None = "v1", session: str = "s",
            source: str = "direct", kind: str = "new", device: str = "desktop") -> LoggedSearch:
    return LoggedSearch(sid, ts, q, q, total, None, "[]", visitor, session, source, kind, device, None, 5.0, 0)


def _event(kind: str, ts: float, visitor: str = "v1", search_id: str | None = None, value: float | None = None,
           product: str = "p1") -> LoggedEvent:
    return LoggedEvent(ts, kind, visitor, "s", product, None, search_id, None, None, value, None, None, None)


# ---- attribution ---------------------------------------------------------------------------


def test_an_event_naming_its_search_is_attributed_to_it_even_hours_later() -> None:
    searches = [_search("a", "dress", T, 10), _search("b", "shoes", T + 10 * MIN, 10)]
    outcomes = reports.attribute(searches, [_event("click", T + 5 * 3600, search_id="a")], WINDOW)
    assert set(outcomes) == {"a"} and outcomes["a"].clicks == 1


def test_an_event_without_search_id_goes_to_the_visitors_last_search_within_30_minutes() -> None:
    searches = [_search("a", "dress", T, 10), _search("b", "shoes", T + 10 * MIN, 10),
                _search("c", "hat", T + 12 * MIN, 10, visitor="v2")]
    events = [
        _event("click", T + 20 * MIN),                        # -> b (last search of v1, 10 min before)
        _event("purchase", T + 39 * MIN, value=80.0),         # -> b (29 min after b)
        _event("add_to_cart", T + 41 * MIN),                  # 31 min after b: nobody's
        _event("click", T + 5 * MIN, search_id="unknown"),    # unknown id: last search -> a
        _event("view", T + 1 * MIN),                          # views are not outcomes
    ]
    outcomes = reports.attribute(searches, events, WINDOW)
    assert set(outcomes) == {"a", "b"}
    assert (outcomes["b"].clicks, outcomes["b"].purchases, outcomes["b"].revenue, outcomes["b"].carts) == (1, 1, 80.0, 0)
    assert outcomes["a"].clicks == 1


# ---- the reports ---------------------------------------------------------------------------


@pytest.fixture
def seeded() -> tuple[list[LoggedSearch], list[LoggedSearch], list[LoggedEvent]]:
    day = 86400.0
    current = [
        _search("z1", "unicorn", T - 3 * day, 0, visitor="v1"),
        _search("z2", "unicorn", T - 2 * day, 0, visitor="v2"),
        _search("z3", "unicorn", T - 1 * day, 0, visitor="v1"),
        _search("z4", "plaid", T - 1 * day, 0, visitor=None),
        _search("d1", "dress", T - 3 * day, 40, visitor="v1", source="paid", device="mobile"),
        _search("d2", "dress", T - 2 * day, 40, visitor="v2", kind="returning"),
        _search("d3", "dress", T - 2 * day + 600, 40, visitor="v3", source="paid", device="mobile"),
        _search("d4", "dress", T - 1 * day, 40, visitor="v4"),
        _search("s1", "shoes", T - 1 * day + 60, 12, visitor="v4"),
    ]
    previous = [_search("p1", "unicorn", T - 10 * day, 0), _search("p2", "plaid", T - 9 * day, 0),
                _search("p3", "plaid", T - 9 * day, 0), _search("p4", "plaid", T - 8 * day, 0)]
    events = [
        _event("click", T - 3 * day + 30, visitor="v1", search_id="d1"),
        _event("purchase", T - 3 * day + 600, visitor="v1", value=50.0),          # -> d1 (window)
        _event("click", T - 2 * day + 700, visitor="v3"),                         # -> d3
        _event("add_to_cart", T - 1 * day + 120, visitor="v4"),                   # -> s1 (latest)
        _event("purchase", T - 1 * day + 120 + 3600, visitor="v4", value=30.0),   # outside window
    ]
    return current, previous, events


def test_zero_results_report_groups_counts_visitors_and_trend(seeded) -> None:
    current, previous, _ = seeded
    rows = reports.zero_results(current, previous)
    assert [(r["query"], r["searches"], r["visitors"], r["previous_period"], r["trend"]) for r in rows] == [
        ("unicorn", 3, 2, 1, 2.0),    # 3 vs 1 before: +200%
        ("plaid", 1, 0, 3, -0.6667),  # 1 vs 3 before; no visitor id: 0 unique visitors
    ]
    assert rows[0]["first_seen"] < rows[0]["last_seen"]


def test_top_queries_ctr_conversion_and_revenue(seeded) -> None:
    current, _, events = seeded
    outcomes = reports.attribute(current, events, WINDOW)
    rows = {r["query"]: r for r in reports.top_queries(current, outcomes)}
    dress = rows["dress"]
    assert (dress["searches"], dress["visitors"], dress["with_click"], dress["ctr"]) == (4, 4, 2, 0.5)
    assert (dress["with_purchase"], dress["conversion_rate"], dress["revenue"]) == (1, 0.25, 50.0)
    assert rows["shoes"]["ctr"] == 1.0 and rows["shoes"]["revenue"] == 0.0
    assert rows["unicorn"]["ctr"] is None  # never showed a result: no click-through to speak of
    assert list(rows) == ["dress", "unicorn", "plaid", "shoes"]  # by searches, then query


def test_abandoned_searches_are_those_with_results_and_no_outcome(seeded) -> None:
    current, _, events = seeded
    outcomes = reports.attribute(current, events, WINDOW)
    rows = reports.abandoned(current, outcomes)
    assert [(r["query"], r["with_results"], r["abandoned"], r["abandonment_rate"]) for r in rows] == [("dress", 4, 2, 0.5)]
    assert {s.search_id for s in reports.abandoned_searches(current, outcomes)} == {"d2", "d4"}


def test_low_ctr_needs_enough_searches(seeded) -> None:
    current, _, events = seeded
    outcomes = reports.attribute(current, events, WINDOW)
    assert [r["query"] for r in reports.low_ctr(current, outcomes, min_searches=2)] == ["dress"]
    assert reports.low_ctr(current, outcomes, min_searches=5) == []


def test_conversion_overall_and_per_segment(seeded) -> None:
    current, _, events = seeded
    outcomes = reports.attribute(current, events, WINDOW)
    rows = {(r["segment"], r["value"]): r for r in reports.conversion(current, outcomes)}
    everything = rows[("all", "all")]
    # 9 searches; d1, d3, s1 got outcomes; d1 bought for 50.
    assert (everything["searches"], everything["ctr"], everything["conversion_rate"]) == (9, 0.3333, 0.1111)
    assert (everything["revenue"], everything["revenue_per_search"], everything["zero_result_rate"]) == (50.0, 5.5556, 0.4444)
    paid = rows[("traffic_source", "paid")]
    assert (paid["searches"], paid["ctr"], paid["revenue_per_search"]) == (2, 1.0, 25.0)
    assert rows[("device", "mobile")]["searches"] == 2
    assert rows[("visitor", "returning")]["searches"] == 1


def test_segment_filter_keeps_only_that_segment(seeded) -> None:
    current, _, _ = seeded
    kept = [s.search_id for s in current if reports.in_segment(s, {"traffic_source": "paid", "device": None})]
    assert kept == ["d1", "d3"]


def test_csv_has_a_header_and_one_line_per_row(seeded) -> None:
    current, previous, _ = seeded
    text = reports.to_csv(reports.zero_results(current, previous))
    lines = text.strip().splitlines()
    assert lines[0].startswith("query,searches,visitors") and len(lines) == 3


@pytest.mark.parametrize(("text", "expected"), [("7d", T - 7 * 86400), ("24h", T - 86400), ("30m", T - 1800),
                                                ("2026-11-01", 1_793_491_200.0), (str(T - 5), T - 5)])
def test_periods_accept_relative_and_absolute_times(text, expected) -> None:
    assert parse_time(text, T) == pytest.approx(expected)


def test_bad_period_is_explained() -> None:
    with pytest.raises(ValueError, match="is not a time"):
        Period.parse("last tuesday", None)
    with pytest.raises(ValueError, match="before"):
        Period.parse("1d", "2d")


# ---- through the service, the API and the CLI -----------------------------------------------


@pytest.fixture
def live(mutable_index_dir: Path, embedder: Embedder) -> Iterator[tuple[SearchService, TestClient]]:
    settings = Settings(index_dir=mutable_index_dir, server={"admin_key": "k"})
    service = SearchService.open(mutable_index_dir, settings, embedder=embedder)
    with TestClient(create_app(settings, service=service)) as client:
        yield service, client
    service.close()


ADMIN = {"X-Admin-Key": "k"}


def test_every_search_is_logged_with_its_segment_and_latency(live) -> None:
    service, client = live
    visitor = f"v-{uuid.uuid4().hex}"
    client.get("/search", params={"q": "Linen Dress ", "visitor_id": visitor, "session_id": "s", "utm_medium": "cpc"})
    client.get("/search", params={"q": "qqqzzz", "visitor_id": visitor})
    service.search_log.flush()
    logged = [s for s in service.search_log.between() if s.visitor_id == visitor]
    assert [(s.query, s.normalized, s.total > 0, s.traffic_source) for s in logged] == [
        ("Linen Dress ", "linen dress", True, "paid"), ("qqqzzz", "qqqzzz", False, "direct"),
    ]
    assert all(s.latency_ms > 0 for s in logged)


def test_zero_result_report_through_the_api_and_a_catalog_fix(live) -> None:
    service, client = live
    for _ in range(3):
        client.get("/search", params={"q": "zorbflake", "visitor_id": "v1"})
    response = client.get("/reports/zero-results", params={"since": "1h"}, headers=ADMIN)
    assert response.status_code == 200
    row = next(r for r in response.json()["rows"] if r["query"] == "zorbflake")
    assert (row["searches"], row["visitors"], row["now_results"], row["fixed_by"]) == (3, 1, 0, None)
    # The merchandiser adds a product with that word: the report now says it is fixed.
    product = {"id": "zf1", "title": "Zorbflake winter hat", "price": 20, "variants": [{"sku": "zf1-1", "stock": 3}]}
    assert client.put("/catalog/products", json=[product], headers=ADMIN).status_code == 200
    row = next(r for r in client.get("/reports/zero-results", headers=ADMIN).json()["rows"] if r["query"] == "zorbflake")
    assert (row["now_results"], row["fixed_by"]) == (1, "catalog")
    csv = client.get("/reports/zero-results", params={"format": "csv"}, headers=ADMIN)
    assert csv.headers["content-type"].startswith("text/csv") and "zorbflake,3,1" in csv.text


def test_reports_need_the_admin_key_and_explain_bad_parameters(live) -> None:
    _, client = live
    assert client.get("/reports/top").status_code == 401
    assert client.get("/reports/nope", headers=ADMIN).status_code == 404
    bad = client.get("/reports/top", params={"since": "soon"}, headers=ADMIN)
    assert bad.status_code == 422 and "is not a time" in bad.json()["detail"]


def test_clicks_from_the_api_make_top_queries_and_conversion(live) -> None:
    service, client = live
    visitor = f"v-{uuid.uuid4().hex}"
    result = client.get("/search", params={"q": "dress", "visitor_id": visitor, "session_id": "s", "device": "mobile"}).json()
    hit = result["hits"][0]["id"]
    client.post("/events", json={"events": [
        {"type": "click", "visitor_id": visitor, "session_id": "s", "product_id": hit, "search_id": result["search_id"]},
        {"type": "purchase", "visitor_id": visitor, "session_id": "s", "product_id": hit, "value": 99.5},
    ]})
    rows = client.get("/reports/conversion", params={"device": "mobile"}, headers=ADMIN).json()["rows"]
    overall = rows[0]
    assert (overall["searches"], overall["ctr"], overall["conversion_rate"], overall["revenue"]) == (1, 1.0, 1.0, 99.5)


def test_clean_shutdown_writes_every_queued_search(mutable_index_dir: Path, embedder: Embedder) -> None:
    settings = Settings(index_dir=mutable_index_dir, analytics={"flush_interval_seconds": 5})
    service = SearchService.open(mutable_index_dir, settings, embedder=embedder)
    for i in range(300):
        service.search(SearchRequest(q=f"dress {i}", limit=1))
    service.close()  # long flush interval: nothing would be written yet without a clean close
    reopened = SearchService.open(mutable_index_dir, settings, embedder=embedder)
    try:
        assert reopened.search_log.count() == 300
    finally:
        reopened.close()


def test_cli_report_prints_table_csv_and_json(live, mutable_index_dir: Path, capsys) -> None:
    from search.cli import main

    service, client = live
    client.get("/search", params={"q": "glorpwidget", "visitor_id": "v9"})
    service.search_log.flush()
    capsys.readouterr()
    assert main(["report", "zero-results", "--since", "1d", "--format", "json", "--index-dir", str(mutable_index_dir)]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert any(r["query"] == "glorpwidget" and r["searches"] == 1 for r in rows)
    assert main(["report", "top", "--format", "csv", "--index-dir", str(mutable_index_dir)]) == 0
    assert capsys.readouterr().out.startswith("query,searches")
    assert main(["report", "zero-results", "--index-dir", str(mutable_index_dir)]) == 0
    assert "glorpwidget" in capsys.readouterr().out
