"""What an operator and a load balancer ask: /health (alive), /ready (fit to take traffic),
/metrics (Prometheus).

- /health answers while the process runs: index version and counts, the process id.
- /ready says whether this process should get traffic: 200 with `"status": "ok"` or
  `"degraded"` (PostgreSQL or Redis is down: searches still answer, without personalization,
  and accepted writes wait in the local buffer), 503 with `"status": "unavailable"` when a
  store cannot even be opened. A process without a loaded index does not answer at all (it
  refuses to start).
  It names the index version and its age, and each store's state.
- /metrics is the Prometheus exposition of every worker (search.metrics). Admin route: the
  admin key opens it, and so does `server.metrics_key` (that key opens nothing else), so a
  scraper never holds the admin key.
"""

from __future__ import annotations

import os
import time
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from search import metrics
from search.api import security
from search.api.deps import ServiceDep, SettingsDep
from search.service import SearchService

router = APIRouter(tags=["operations"])

OK = "ok"


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
    """Each store's state: "ok", "degraded: <reason>" (searches answer, writes wait in the
    local buffer: SearchService.store_health) or "down: <reason>" (it cannot even be opened).

    The stores every request path uses are opened first (as the first search or event would),
    so a fresh process reports them rather than nothing."""
    opened: dict[str, str] = {}
    for name, open_store in (("search_log", lambda: service.search_log), ("events", lambda: service.visitors)):
        try:
            open_store()
        except Exception as error:  # whatever opening raises, /ready reports it
            opened[name] = f"down: {error}"
    return {**service.store_health(), **opened}
