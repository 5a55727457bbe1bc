"""/docs and /redoc without internet: Swagger UI and ReDoc assets come from the fastapi-offline
package instead of FastAPI's default CDN links (a demo on a train shows a blank page otherwise)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

ASSETS = Path(fastapi_offline.__file__).parent / "static"
ASSETS_URL = "/docs-assets"
# The one address ReDoc's bundle fetches by itself: the logo beside "API docs by Redocly".
REDOC_CDN_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"


@cache
def _redoc_bundle() -> bytes:
    # Offline, that logo request fails and logs an error in the browser console; the bundle is
    # served with the logo pointed at a packaged image instead (read once, kept in memory).
    text = (ASSETS / "redoc.standalone.js").read_text(encoding="utf-8")
    return text.replace(REDOC_CDN_LOGO, f"{ASSETS_URL}/favicon.png").encode()


def mount_offline_docs(app: FastAPI) -> None:
    """Serve /docs and /redoc from packaged assets. The app must be created with
    docs_url=None and redoc_url=None so FastAPI's CDN pages are not registered first."""
    @app.get(f"{ASSETS_URL}/redoc.standalone.js", include_in_schema=False)
    def redoc_bundle() -> Response:
        return Response(_redoc_bundle(), media_type="text/javascript", headers={"Cache-Control": "public, max-age=86400"})

    # After the route above, so that the patched bundle wins over the packaged file.
    app.mount(ASSETS_URL, StaticFiles(directory=ASSETS), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"
    oauth_redirect = app.swagger_ui_oauth2_redirect_url or "/docs/oauth2-redirect"

    @app.get("/docs", include_in_schema=False)
    def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{openapi_url}",
            title=f"{app.title} - API",
            oauth2_redirect_url=f"{root}{oauth_redirect}",
            swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
        )

    @app.get(oauth_redirect, include_in_schema=False)
    def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        # No Google Fonts: the page must not reach outside the server.
        return get_redoc_html(
            openapi_url=f"{root}{openapi_url}",
            title=f"{app.title} - API reference",
            redoc_js_url=f"{root}{ASSETS_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
            with_google_fonts=False,
        )
