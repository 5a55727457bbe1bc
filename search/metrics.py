"""Prometheus metrics of a running service (prometheus-client), served at /metrics.

Every metric is defined here, once. Labels are bounded: HTTP metrics carry the route's
template (`/products/{product_id}`), never the path, so a crawler cannot grow the label set.

With several worker processes (`vitrine serve --workers N`) prometheus-client runs in its
multiprocess mode: `PROMETHEUS_MULTIPROC_DIR` must be set before this module is imported (the
`serve` command sets it before it starts the workers); each process writes its values to
memory-mapped files there and /metrics, answered by any worker, adds up all of them. Gauges
declare how they combine across processes (`multiprocess_mode`).

Recording costs what prometheus-client costs (a dictionary lookup and an add under its
lock, about a microsecond); nothing here takes a lock of its own on the request path.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST

# Search answers in milliseconds on a warm process; the tail reaches seconds under overload.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

REQUEST_SECONDS = Histogram(
    "vitrine_http_request_duration_seconds", "Time to answer an HTTP request, by route template",
    ["method", "route"], buckets=LATENCY_BUCKETS,
)
REQUESTS = Counter(
    "vitrine_http_requests", "HTTP requests answered, by route template and status code", ["method", "route", "status"],
)
SEARCHES = Counter("vitrine_searches", "Searches answered (GET and POST /search)")
ZERO_RESULT_SEARCHES = Counter(
    "vitrine_zero_result_searches", "Searches that found nothing; share = rate(this) / rate(vitrine_searches_total)",
)
EVENTS_ACCEPTED = Counter("vitrine_events_accepted", "Behaviour events accepted by POST /events (answered 202)")
EVENTS_REJECTED = Counter("vitrine_events_rejected", "Behaviour events refused by validation")
STORE_ERRORS = Counter(
    "vitrine_store_errors", "Requests that failed because a store could not be used (answered 503)", ["store"],
)
INDEX_VERSION = Gauge(
    "vitrine_index_version_info", "1 for each index version a live process serves", ["version"], multiprocess_mode="livemax",
)
INDEX_BUILT = Gauge(
    "vitrine_index_built_timestamp_seconds",
    "Build time of the oldest index version a live process serves (age = time() - this)", multiprocess_mode="livemin",
)
SEARCH_LOG_QUEUE = Gauge(
    "vitrine_search_log_queue_depth", "Search log records waiting for the writer (all processes)", multiprocess_mode="livesum",
)
SEARCH_LOG_DROPPED = Gauge(
    "vitrine_search_log_dropped", "Search log records dropped because the queue was full (all processes)",
    multiprocess_mode="livesum",
)
READY = Gauge("vitrine_ready", "1 while a process's index is loaded and its stores answer", multiprocess_mode="livemin")

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Store names in STORE_ERRORS: the kind of store, never a message or a path.
STORE_KINDS = ("sqlite", "redis", "postgresql", "disk", "other")

_served_version: str | None = None


def multiprocess_dir() -> Path | None:
    value = os.environ.get(MULTIPROC_ENV)
    return Path(value) if value else None


def render() -> bytes:
    """The exposition text: this process's registry, or every worker's in multiprocess mode."""
    if multiprocess_dir() is None:
        return generate_latest(REGISTRY)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return generate_latest(registry)


# The labelled children per (method, route, status), looked up once: `labels()` takes a lock
# and builds its key on every call. A plain dict read needs neither (two threads missing at
# once both get the same child from prometheus-client).
_request_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    if method not in METHODS:
        method = "OTHER"  # any token is a method to the HTTP parser: keep the label set bounded
    key = (method, route, status)
    children = _request_children.get(key)
    if children is None:
        children = (REQUEST_SECONDS.labels(method, route), REQUESTS.labels(method, route, str(status)))
        _request_children[key] = children
    children[0].observe(seconds)
    children[1].inc()


def searched(total: int) -> None:
    SEARCHES.inc()
    if total == 0:
        ZERO_RESULT_SEARCHES.inc()


def events_ingested(accepted: int, rejected: int) -> None:
    if accepted:
        EVENTS_ACCEPTED.inc(accepted)
    if rejected:
        EVENTS_REJECTED.inc(rejected)


def store_error(kind: str) -> None:
    STORE_ERRORS.labels(kind if kind in STORE_KINDS else "other").inc()


def serving(version: str, built_at: float) -> None:
    """The index version this process answers from (called whenever it may have changed)."""
    global _served_version
    if version != _served_version:
        if _served_version is not None:
            INDEX_VERSION.labels(_served_version).set(0)
        INDEX_VERSION.labels(version).set(1)
        _served_version = version
    INDEX_BUILT.set(built_at)


def search_log_state(queued: int, dropped: int) -> None:
    SEARCH_LOG_QUEUE.set(queued)
    SEARCH_LOG_DROPPED.set(dropped)


def ready(flag: bool) -> None:
    READY.set(1 if flag else 0)


def process_exited(pid: int) -> None:
    """Forget a dead worker's live gauges (multiprocess mode only)."""
    if multiprocess_dir() is not None:
        multiprocess.mark_process_dead(pid)
