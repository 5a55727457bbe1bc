"""What an operator and a load balancer ask: /health (alive), /ready (fit to take traffic),
/metrics (Prometheus).

- /health answers while the process runs: index version and counts, the process id.
- /ready says whether this process should get traffic: 200 with `"status": "ok"` or
  `"degraded"` (a store is down but its writes are buffered and searches still answer), 503
  with `"status": "unavailable"` when no index is loaded or a store fails with no fallback.
  It names the index version and its age, and each store's state.
- /metrics is the Prometheus exposition of every worker (search.metrics). Admin route: the
  admin key opens it, and so does `server.metrics_key` (that key opens nothing else), so a
  scraper never holds the admin key.
"""

from __future__ import annotations

import os
import sqlite3
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from search import metrics
from search.analytics.search_log import ANALYTICS_FILE
from search.api import security
from search.api.deps import ServiceDep, SettingsDep
from search.merchandising.store import MERCHANDISING_FILE
from search.service import SearchService
from search.settings import Settings
from synonyms.synonym_store import SYNONYMS_FILE

router = APIRouter(tags=["operations"])

OK = "ok"
PROBE_TIMEOUT_SECONDS = 1.0


@router.get("/health")
def health(service: ServiceDep, settings: SettingsDep) -> dict[str, Any]:
    """Alive: index version and counts; `mode` is \"development\" while no key protects the server."""
    return {**service.health(), "mode": security.mode(settings), "pid": os.getpid()}


@router.get(
    "/ready",
    responses={503: {"description": "Not fit for traffic: no index loaded, or a store fails with no fallback"}},
)
def ready(service: ServiceDep) -> JSONResponse:
    """Fit to take traffic: the index is loaded and every store answers (or is degraded with its
    writes buffered). Names the index version, its age and each store's state."""
    body = readiness(service)
    metrics.ready(body["status"] == OK)
    return JSONResponse(body, status_code=503 if body["status"] == "unavailable" else 200)


@router.get("/metrics", response_class=Response, responses={200: {"content": {metrics.CONTENT_TYPE: {}}}})
def prometheus_metrics() -> Response:
    """Prometheus exposition text (every worker of this server added up)."""
    return Response(metrics.render(), media_type=metrics.CONTENT_TYPE)


def readiness(service: SearchService) -> dict[str, Any]:
    info = service.engine.index_info()
    built_at = datetime.fromisoformat(info["built_at"]).timestamp()
    stores = store_states(service)
    states = list(stores.values())
    if all(state == OK for state in states):
        status = OK
    elif all(state == OK or state.startswith("degraded") for state in states):
        status = "degraded"
    else:
        status = "unavailable"
    return {
        "status": status,
        "pid": os.getpid(),
        "index": {
            "version": info["index_version"],
            "built_at": info["built_at"],
            "age_seconds": round(time.time() - built_at, 1),
            "products": info.get("products"),
        },
        "stores": stores,
    }


def store_states(service: SearchService) -> dict[str, str]:
    """Each store's state: "ok", "degraded: <reason>" or "down: <reason>".

    The service reports its own (`store_health`, which also knows about write buffers) when
    it has it; otherwise the stores' files and servers are probed from here."""
    store_health = getattr(service, "store_health", None)
    if callable(store_health):
        return dict(store_health())
    return probe_stores(service.settings)


def probe_stores(settings: Settings) -> dict[str, str]:
    state = settings.state_dir
    stores = {
        "search_log": _probe_sqlite(state / ANALYTICS_FILE),
        "synonyms": _probe_sqlite(state / SYNONYMS_FILE),
        "merchandising": _probe_sqlite(state / MERCHANDISING_FILE),
    }
    spec = settings.personalization.profile_store
    if spec.startswith(("redis://", "rediss://", "unix://")):
        stores["profiles"] = _probe_redis(spec)
    elif spec.startswith("sqlite:///"):
        stores["profiles"] = _probe_sqlite(Path(spec.removeprefix("sqlite:///")))
    else:
        stores["profiles"] = _probe_sqlite(state / "profiles.db")
    return stores


def _probe_sqlite(path: Path) -> str:
    """The file opens and answers a query (a store not created yet is fine: it will be)."""
    if not path.exists():
        return OK if os.access(path.parent if path.parent.exists() else path.parent.parent, os.W_OK) else (
            f"down: {path.parent} is not writable"
        )
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=PROBE_TIMEOUT_SECONDS)
        try:
            db.execute("SELECT count(*) FROM sqlite_master").fetchone()
        finally:
            db.close()
    except sqlite3.Error as error:
        return f"down: {path.name}: {error}"
    return OK


def _probe_redis(url: str) -> str:
    import redis  # optional: only with Redis profiles

    client = redis.Redis.from_url(url, socket_timeout=PROBE_TIMEOUT_SECONDS, socket_connect_timeout=PROBE_TIMEOUT_SECONDS)
    try:
        client.ping()
    except redis.RedisError as error:
        return f"down: redis: {error}"
    finally:
        client.close()
    return OK
