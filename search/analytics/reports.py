"""Search reports computed from the search log and the event log.

Attribution: a click, add-to-cart or purchase belongs to the search named by its `search_id`;
without one (or naming a search we never logged), to the same visitor's latest search at most
`window` seconds earlier; otherwise to no search.

Every report is a list of plain dict rows (JSON and CSV alike). The functions here are pure:
they take logged searches and events and return rows, so tests check them against figures
computed by hand.
"""

from __future__ import annotations

import bisect
import csv
import io
import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from search.analytics.event_log import LoggedEvent
from search.analytics.search_log import LoggedSearch

OUTCOME_TYPES = ("click", "add_to_cart", "purchase")
SEGMENT_FIELDS = ("traffic_source", "visitor", "device")


@dataclass
class Outcome:
    clicks: int = 0
    carts: int = 0
    purchases: int = 0
    revenue: float = 0.0
    products: set[str] = field(default_factory=set)


def attribute(searches: Sequence[LoggedSearch], events: Iterable[LoggedEvent], window: float) -> dict[str, Outcome]:
    by_id = {s.search_id: s for s in searches}
    per_visitor: dict[str, list[LoggedSearch]] = defaultdict(list)
    for s in sorted(searches, key=lambda s: s.ts):
        if s.visitor_id:
            per_visitor[s.visitor_id].append(s)
    times = {visitor: [s.ts for s in items] for visitor, items in per_visitor.items()}
    outcomes: dict[str, Outcome] = defaultdict(Outcome)
    for event in events:
        if event.type not in OUTCOME_TYPES:
            continue
        search = by_id.get(event.search_id) if event.search_id else None
        if search is None and event.visitor_id in per_visitor:
            at = bisect.bisect_right(times[event.visitor_id], event.ts) - 1
            if at >= 0:
                candidate = per_visitor[event.visitor_id][at]
                if event.ts - candidate.ts <= window:
                    search = candidate
        if search is None:
            continue
        outcome = outcomes[search.search_id]
        if event.type == "click":
            outcome.clicks += 1
        elif event.type == "add_to_cart":
            outcome.carts += 1
        else:
            outcome.purchases += 1
            outcome.revenue += event.value or 0.0
        if event.product_id:
            outcome.products.add(event.product_id)
    return dict(outcomes)


def in_segment(search: LoggedSearch, segment: dict[str, str | None]) -> bool:
    return all(value is None or search.segment.get(name) == value for name, value in segment.items())


def segment_outcomes(
    searches: Sequence[LoggedSearch], events: Iterable[LoggedEvent], window: float, segment: dict[str, str | None]
) -> tuple[list[LoggedSearch], dict[str, Outcome]]:
    """The segment's searches and their outcomes. Outcomes are attributed over every search and
    only then is the segment kept: attributing within the segment would hand a desktop search's
    purchase to the visitor's last mobile search (so segments would not add up to the total)."""
    outcomes = attribute(searches, events, window)
    current = [s for s in searches if in_segment(s, segment)]
    return current, {s.search_id: outcomes[s.search_id] for s in current if s.search_id in outcomes}


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


def _trend(current: int, previous: int) -> float | None:
    """Change against the previous period of the same length (None: nothing to compare with)."""
    return None if previous == 0 else round((current - previous) / previous, 4)


def zero_results(
    current: Sequence[LoggedSearch],
    previous: Sequence[LoggedSearch],
    fix_status: Callable[[str], dict[str, Any]] | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Queries whose words matched nothing. Searches left empty only by the shopper's filters
    (the words found products, size XXS removed them) are not here: see `filtered_to_zero`."""
    groups: dict[str, list[LoggedSearch]] = defaultdict(list)
    for s in current:
        if s.total == 0 and not s.filters_left_nothing:
            groups[s.normalized].append(s)
    before: dict[str, int] = defaultdict(int)
    for s in previous:
        if s.total == 0 and not s.filters_left_nothing:
            before[s.normalized] += 1
    rows = []
    for query, items in groups.items():
        row: dict[str, Any] = {
            "query": query,
            "searches": len(items),
            "visitors": len({s.visitor_id for s in items if s.visitor_id}),
            "first_seen": _iso(min(s.ts for s in items)),
            "last_seen": _iso(max(s.ts for s in items)),
            "previous_period": before.get(query, 0),
            "trend": _trend(len(items), before.get(query, 0)),
        }
        rows.append(row)
    rows.sort(key=lambda r: (-r["searches"], -r["visitors"], r["query"]))
    rows = rows[:limit]
    if fix_status is not None:
        for row in rows:
            row.update(fix_status(row["query"]))
    return rows


def filtered_to_zero(current: Sequence[LoggedSearch], limit: int = 100) -> list[dict[str, Any]]:
    """Searches whose words found products but whose filters left none, per query and filters:
    a catalog gap (no XXS in stock) rather than a vocabulary gap."""
    groups: dict[tuple[str, str], list[LoggedSearch]] = defaultdict(list)
    for s in current:
        if s.filters_left_nothing:
            groups[(s.normalized, s.filters or "{}")].append(s)
    rows = []
    for (query, filters), items in groups.items():
        rows.append({
            "query": query,
            "filters": json.loads(filters),
            "searches": len(items),
            "visitors": len({s.visitor_id for s in items if s.visitor_id}),
            "matched_without_filters": max(s.matched or 0 for s in items),
            "last_seen": _iso(max(s.ts for s in items)),
        })
    rows.sort(key=lambda r: (-r["searches"], r["query"]))
    return rows[:limit]


def _per_query(searches: Sequence[LoggedSearch], outcomes: dict[str, Outcome]) -> dict[str, dict[str, Any]]:
    stats: dict[str, dict[str, Any]] = {}
    for s in searches:
        row = stats.setdefault(s.normalized, {
            "query": s.normalized, "searches": 0, "_visitors": set(), "zero_results": 0, "with_click": 0,
            "with_purchase": 0, "revenue": 0.0, "abandoned": 0,
        })
        outcome = outcomes.get(s.search_id)
        row["searches"] += 1
        if s.visitor_id:
            row["_visitors"].add(s.visitor_id)
        row["zero_results"] += s.total == 0
        clicked = outcome is not None and (outcome.clicks or outcome.carts or outcome.purchases)
        row["with_click"] += bool(clicked)
        row["abandoned"] += s.total > 0 and not clicked
        if outcome is not None and outcome.purchases:
            row["with_purchase"] += 1
            row["revenue"] += outcome.revenue
    for row in stats.values():
        row["visitors"] = len(row.pop("_visitors"))
        shown = row["searches"] - row["zero_results"]
        row["ctr"] = round(row["with_click"] / shown, 4) if shown else None
        row["conversion_rate"] = round(row["with_purchase"] / row["searches"], 4)
        row["revenue"] = round(row["revenue"], 2)
    return stats


def top_queries(searches: Sequence[LoggedSearch], outcomes: dict[str, Outcome], limit: int = 100) -> list[dict[str, Any]]:
    rows = list(_per_query(searches, outcomes).values())
    rows.sort(key=lambda r: (-r["searches"], r["query"]))
    return rows[:limit]


def low_ctr(
    searches: Sequence[LoggedSearch], outcomes: dict[str, Outcome], min_searches: int = 5, limit: int = 100
) -> list[dict[str, Any]]:
    """Queries that show results but rarely get a click (with enough searches to tell)."""
    rows = [r for r in _per_query(searches, outcomes).values() if r["ctr"] is not None and r["searches"] >= min_searches]
    rows.sort(key=lambda r: (r["ctr"], -r["searches"], r["query"]))
    return rows[:limit]


def abandoned(searches: Sequence[LoggedSearch], outcomes: dict[str, Outcome], limit: int = 100) -> list[dict[str, Any]]:
    """Searches that showed results and got no click, cart or purchase, per query."""
    rows = []
    for row in _per_query(searches, outcomes).values():
        shown = row["searches"] - row["zero_results"]
        if row["abandoned"]:
            rows.append({
                "query": row["query"], "searches": row["searches"], "with_results": shown,
                "abandoned": row["abandoned"], "abandonment_rate": round(row["abandoned"] / shown, 4),
                "visitors": row["visitors"],
            })
    rows.sort(key=lambda r: (-r["abandoned"], r["query"]))
    return rows[:limit]


def abandoned_searches(searches: Sequence[LoggedSearch], outcomes: dict[str, Outcome]) -> list[LoggedSearch]:
    return [s for s in searches if s.total > 0 and s.search_id not in outcomes]


def conversion(searches: Sequence[LoggedSearch], outcomes: dict[str, Outcome]) -> list[dict[str, Any]]:
    """Search conversion overall, then per value of each segment dimension."""

    def row(dimension: str, value: str, items: list[LoggedSearch]) -> dict[str, Any]:
        n = len(items)
        got = [outcomes.get(s.search_id) for s in items]
        clicked = sum(1 for o in got if o is not None and (o.clicks or o.carts or o.purchases))
        bought = sum(1 for o in got if o is not None and o.purchases)
        revenue = round(sum(o.revenue for o in got if o is not None), 2)
        return {
            "segment": dimension, "value": value, "searches": n,
            "zero_result_rate": round(sum(s.total == 0 for s in items) / n, 4) if n else None,
            "ctr": round(clicked / n, 4) if n else None,
            "conversion_rate": round(bought / n, 4) if n else None,
            "revenue": revenue, "revenue_per_search": round(revenue / n, 4) if n else None,
        }

    rows = [row("all", "all", list(searches))]
    for dimension in SEGMENT_FIELDS:
        groups: dict[str, list[LoggedSearch]] = defaultdict(list)
        for s in searches:
            groups[s.segment.get(dimension) or "unknown"].append(s)
        rows.extend(row(dimension, value, items) for value, items in sorted(groups.items()))
    return rows


def zero_results_over_time(
    searches: Sequence[LoggedSearch], since: float | None = None, until: float | None = None
) -> list[dict[str, Any]]:
    """Per UTC day: searches and zero-result searches (the report page's line chart); every day
    of the period is listed, quiet days with zeros."""
    days: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    if since is not None and until is not None and until - since <= 400 * 86400:
        day = datetime.fromtimestamp(since, UTC).date()
        last = datetime.fromtimestamp(until - 1e-6, UTC).date()
        while day <= last:
            days[day.isoformat()]
            day += timedelta(days=1)
    for s in searches:
        label = datetime.fromtimestamp(s.ts, UTC).date().isoformat()
        days[label][0] += 1
        days[label][1] += s.total == 0
    return [{"day": label, "searches": n, "zero_results": z} for label, (n, z) in sorted(days.items())]


# A spreadsheet runs a cell starting with one of these as a formula (`=cmd|' /c calc'!A1`):
# shoppers type the queries these reports list, so text cells are defused (OWASP's advice).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """Text that a spreadsheet would run as a formula, prefixed with a quote; numbers unchanged."""
    if isinstance(value, list):
        value = "; ".join(map(str, value))
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def to_csv(rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    if rows:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]), extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: safe_cell(v) for k, v in row.items()})
    return out.getvalue()
