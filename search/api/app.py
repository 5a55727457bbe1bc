"""The FastAPI application: thin over SearchEngine (parse, call, shape)."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from fastapi import Depends, FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from search import metrics
from search.api import (
    admin_login,
    problems,
    routes_catalog,
    routes_merchandising,
    routes_operations,
    routes_reports,
    routes_search,
    routes_storefront,
    routes_synonyms,
    routes_visitors,
)
from search.api.docs_offline import mount_offline_docs
from search.api.limits import BodyGuard, RateLimiter
from search.api.security import LoginRequired, authorize, check_configuration, openapi_security
from search.api.strict_query import reject_unknown_query_params
from search.logs import configure_logging
from search.service import SearchService
from search.settings import Settings

log = structlog.get_logger("vitrine.api")

GAUGE_SAMPLE_SECONDS = 1.0


class RequestLog:
    """One structured log line and the HTTP metrics per request (pure ASGI: no per-request
    task or body copy). A search's line carries its `search_id`, so a shopper's later events
    (which send it back) can be followed to the request that served them."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            # The route's template (/visitors/{visitor_id}), never the path itself: access
            # logs must not hold visitor ids, product ids or anything sent in a URL.
            seconds = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", None) or "(unmatched)"
            metrics.observe_request(scope["method"], route, status, seconds)
            search_id = scope.get("state", {}).get("search_id")
            extra = {"search_id": search_id} if search_id else {}
            log.info("request", method=scope["method"], path=route, status=status, took_ms=round(seconds * 1000, 2), **extra)


async def _sample_gauges(service: SearchService, every: float = GAUGE_SAMPLE_SECONDS) -> None:
    """Keep this process's gauges (index version and age, search log queue) current, so a
    scrape answered by any worker reports every worker (search.metrics)."""
    failing = False
    while True:
        try:
            snapshot = service.engine.snapshot
            metrics.serving(snapshot.version_dir.name, snapshot.manifest.built_at.timestamp())
            search_log = service.search_log
            metrics.search_log_state(search_log.queue_depth, search_log.dropped)
            failing = False
        except Exception:  # a gauge must never take the server down; said once per failure
            if not failing:
                log.exception("metrics sampling failed")
            failing = True
        await asyncio.sleep(every)


def app_from_environment() -> FastAPI:
    """The app factory `vitrine serve` hands uvicorn (`search.api.app:app_from_environment`):
    each worker process builds its own settings (from VITRINE_* variables) and service."""
    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)
    return create_app(settings)


def create_app(settings: Settings | None = None, service: SearchService | None = None) -> FastAPI:
    """The HTTP API over a service (one is opened from `settings` when none is given; a given
    one stays open when the app stops: its owner closes it)."""
    settings = settings or (service.settings if service is not None else Settings())
    # Refuses an unsafe production configuration before anything is opened.
    check_configuration(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = service is None
        app.state.service = service or SearchService(settings)
        app.state.service.warm_up()
        app.state.service.start_watching()
        log.info("ready", index_version=app.state.service.engine.snapshot.version_dir.name)
        sampler = asyncio.create_task(_sample_gauges(app.state.service))
        try:
            yield
        finally:
            sampler.cancel()
            metrics.process_exited(os.getpid())
            if owned:
                app.state.service.close()

    app = FastAPI(
        title="Vitrine",
        version="0.1.0",
        summary="Site search for online shops: hybrid BM25 + semantic search, explainable ranking.",
        lifespan=lifespan,
        docs_url=None,  # served from packaged assets below, not from a CDN
        redoc_url=None,
        # Keys and rate limits on every route (search.api.security decides which kind it is).
        dependencies=[Depends(authorize)],
    )
    app.state.settings = settings
    app.state.rate_limiter = RateLimiter(settings.limits)
    app.state.openapi_hooks = [openapi_security]
    problems.install(app)

    async def login_required(request: Request, _: Exception):
        return admin_login.login_form(request.url.path)

    app.add_exception_handler(LoginRequired, login_required)
    # Innermost: bodies are bounded (413) before routing or parsing.
    app.add_middleware(BodyGuard, settings=settings.limits)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.server.cors_origins,
        allow_methods=["GET", "POST"],
        allow_headers=["content-type", "x-personalize", "authorization"],
        expose_headers=["retry-after"],
    )

    app.add_middleware(RequestLog)
    strict_query = [Depends(reject_unknown_query_params)]
    app.include_router(routes_operations.router)
    app.include_router(routes_search.router, dependencies=strict_query)
    app.include_router(routes_catalog.router)
    app.include_router(routes_visitors.router, dependencies=strict_query)
    app.include_router(routes_reports.router)
    app.include_router(routes_synonyms.router)
    app.include_router(routes_merchandising.router)
    app.include_router(routes_merchandising.pages)
    mount_offline_docs(app)
    routes_storefront.mount(app, settings)
    app.include_router(admin_login.router)
    return app
