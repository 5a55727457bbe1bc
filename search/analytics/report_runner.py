"""Reports over a period, as the admin API, the CLI and the report page ask for them."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from search.analytics import reports
from search.analytics.event_log import EventLog
from search.analytics.search_log import SearchLog
from search.errors import InvalidInput
from search.models import SearchRequest, SearchResult

REPORTS = (
    "zero-results", "filtered-to-zero", "abandoned", "top", "low-ctr", "conversion", "zero-results-over-time",
)
_RELATIVE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([mhdw])\s*$")
_LATEST = 253402300799.0  # 9999-12-31T23:59:59Z, the last time datetime can show
_UNIT_SECONDS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_time(value: str | None, now: float, default: float | None = None) -> float | None:
    """'7d', '24h', '30m', '2w' (that long ago), an ISO date or time (UTC unless it says), or Unix seconds."""
    if value is None or not str(value).strip():
        return default
    text = str(value).strip()
    relative = _RELATIVE.match(text)
    if relative:
        return _in_range(now - float(relative.group(1)) * _UNIT_SECONDS[relative.group(2)], text)
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return _in_range(seconds, text)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"{text[:50]!r} is not a time: use 7d, 24h, 30m, 2w, 2026-11-01, 2026-11-01T12:00 or Unix seconds") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def _in_range(seconds: float, text: str) -> float:
    # NaN compares false with everything: it fails this check too.
    if not 0 <= seconds <= _LATEST:
        raise InvalidInput(f"{text[:50]!r} is outside 1970..9999: use 7d, 24h, an ISO date or Unix seconds")
    return seconds


@dataclass(frozen=True)
class Period:
    since: float
    until: float

    @classmethod
    def parse(cls, since: str | None, until: str | None, now: float | None = None) -> Period:
        now = time.time() if now is None else now
        start = parse_time(since, now, default=now - 7 * 86400)
        end = parse_time(until, now, default=now + 1)
        assert start is not None and end is not None
        if start >= end:
            raise InvalidInput("since must be before until")
        return cls(start, end)

    @property
    def previous(self) -> Period:
        return Period(self.since - (self.until - self.since), self.since)


@dataclass(frozen=True)
class ReportSources:
    """What the reports read: the two logs, and a search function (without logging) to tell
    whether a zero-result query finds products today, plus the pending synonyms for it."""

    search_log: SearchLog
    events: EventLog
    attribution_window_seconds: float
    search: Callable[[SearchRequest], SearchResult]
    pending_synonyms: Callable[[str], list[str]]


def fix_status(sources: ReportSources, query: str) -> dict[str, Any]:
    """Whether a zero-result query finds products today, and thanks to what."""
    result = sources.search(SearchRequest(q=query, limit=0))
    fixed_by = None
    if result.total:
        fixed_by = "synonym" if result.applied_synonyms else "spelling correction" if result.corrected_query else "catalog"
    status: dict[str, Any] = {
        "now_results": result.total, "fixed_by": fixed_by, "corrected_query": result.corrected_query,
        "synonyms": result.applied_synonyms,
    }
    status["pending_synonyms"] = sources.pending_synonyms(query)
    return status


def run_report(
    sources: ReportSources,
    name: str,
    period: Period,
    segment: dict[str, str | None] | None = None,
    limit: int = 100,
    min_searches: int = 5,
) -> list[dict[str, Any]]:
    if name not in REPORTS:
        raise InvalidInput(f"unknown report {name!r}; one of {', '.join(REPORTS)}")
    segment = segment or {}
    log = sources.search_log
    log.flush()  # include what was searched a moment ago
    window = sources.attribution_window_seconds

    def searches(p: Period) -> list:
        return [s for s in log.between(p.since, p.until) if reports.in_segment(s, segment)]

    if name in ("zero-results", "filtered-to-zero", "zero-results-over-time"):
        current = searches(period)
        if name == "zero-results":
            return reports.zero_results(current, searches(period.previous), lambda q: fix_status(sources, q), limit)
        if name == "filtered-to-zero":
            return reports.filtered_to_zero(current, limit)
        return reports.zero_results_over_time(current, period.since, period.until)
    # Outcomes may come up to one attribution window after the period's last search.
    events = list(sources.events.between(period.since, period.until + window))
    current, outcomes = reports.segment_outcomes(list(log.between(period.since, period.until)), events, window, segment)
    if name == "abandoned":
        return reports.abandoned(current, outcomes, limit)
    if name == "top":
        return reports.top_queries(current, outcomes, limit)
    if name == "low-ctr":
        return reports.low_ctr(current, outcomes, min_searches, limit)
    return reports.conversion(current, outcomes)
