"""The FastAPI application: thin over SearchEngine (parse, call, shape)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware

from search.api import routes_catalog, routes_search
from search.engine import SearchEngine
from search.settings import Settings

log = structlog.get_logger("vitrine.api")


def create_app(settings: Settings | None = None, engine: SearchEngine | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Opening the index fails loudly (IndexNotFound / UnsupportedIndexFormat with the
        # command that fixes it) rather than serving errors.
        owned = engine is None
        app.state.engine = engine or SearchEngine(settings.index_dir, settings)
        app.state.engine.warm_up()
        app.state.engine.start_watching()
        log.info("ready", index_version=app.state.engine.snapshot.version_dir.name)
        try:
            yield
        finally:
            if owned:
                app.state.engine.close()

    app = FastAPI(
        title="Vitrine",
        version="0.1.0",
        summary="Site search for online shops: hybrid BM25 + semantic search, explainable ranking.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.server.cors_origins,
        allow_methods=["GET", "POST"],
        allow_headers=["content-type"],
    )

    @app.middleware("http")
    async def request_log(request: Request, call_next):  # noqa: ANN001 - Starlette callable
        started = time.perf_counter()
        response = await call_next(request)
        log.info(
            "request",
            method=request.method,
            path=request.url.path,
            status=response.status_code,
            took_ms=round((time.perf_counter() - started) * 1000, 2),
        )
        return response

    app.include_router(routes_search.router)
    app.include_router(routes_catalog.router)
    return app
