"""Who may call what: API keys, admin page sessions and the development-mode warning.

Three kinds of route (decided here, in one place, so a new route is admin-only unless listed):
  - open: health and readiness, the API documentation and the admin login form;
  - public: what a storefront calls (search, suggest, events, product pages, similar, recently
    viewed); needs the search key or the admin key once a search key is set;
  - admin: everything else; needs the admin key, or the signed session cookie the login form
    issues to a browser. /metrics also opens to `server.metrics_key` (for a Prometheus scraper).

Keys travel as `Authorization: Bearer <key>` (or the older `X-Admin-Key`). They are compared
as bytes in constant time, so any header value, ASCII or not, is an answer and never a 500.
No key configured at all is development mode: everything is open, said loudly at start-up and
in /health. `VITRINE_ENV=production` refuses that, and refuses CORS left at "*".
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from enum import StrEnum
from typing import Any

import structlog
from fastapi import HTTPException, Request
from fastapi.routing import APIRoute

from search.api.limits import RateLimiter
from search.settings import Settings

log = structlog.get_logger("vitrine.security")

SESSION_COOKIE = "vitrine_session"


class Access(StrEnum):
    open = "open"
    public = "public"
    admin = "admin"


# (method, route template) of the storefront's routes. Anything not listed here or in OPEN
# is admin-only: forgetting to list a new route closes it rather than opening it.
PUBLIC: frozenset[tuple[str, str]] = frozenset({
    ("GET", "/search"),
    ("POST", "/search"),
    ("GET", "/suggest"),
    ("POST", "/events"),
    ("GET", "/products/{product_id}"),
    ("GET", "/products/{product_id}/similar"),
    ("GET", "/visitors/{visitor_id}/recent"),
})
OPEN: frozenset[str] = frozenset({
    # /health and /ready answer load balancers and orchestrators, which hold no key.
    "/health", "/ready", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc", "/admin/login", "/admin/logout",
    # The offline API docs' patched ReDoc bundle (search.api.docs_offline).
    "/docs-assets/redoc.standalone.js",
    # The demo shop's pages (registered only when server.demo_shop is on; search.api.routes_storefront).
    "/", "/shop/products/{product_id}", "/shop/cart", "/shop/img/{product_id}.svg",
})
# HTML pages answer an unauthenticated browser with the login form instead of a JSON problem.
ADMIN_PAGES: frozenset[str] = frozenset({"/admin", "/admin/synonyms", "/admin/merchandising"})
# Admin routes that `server.metrics_key` opens too (a scraper's key opens nothing else).
METRICS: frozenset[str] = frozenset({"/metrics"})


class ConfigurationError(RuntimeError):
    """The server refuses to start as configured; the message says what to set."""


class LoginRequired(Exception):
    """An admin HTML page without a valid session: the app answers with the login form."""


def access_of(method: str, path_template: str) -> Access:
    if path_template in OPEN:
        return Access.open
    if (method.upper(), path_template) in PUBLIC or (method.upper() == "HEAD" and ("GET", path_template) in PUBLIC):
        return Access.public
    return Access.admin


def mode(settings: Settings) -> str:
    """"development" when no key is set (everything open), else "protected"."""
    return "protected" if settings.server.admin_key or settings.server.search_key else "development"


def check_configuration(settings: Settings) -> None:
    """At start-up: refuse an unsafe production configuration, warn loudly in development."""
    server = settings.server
    if settings.env == "production":
        problems = []
        if not server.admin_key:
            problems.append("set VITRINE_SERVER__ADMIN_KEY (a long random string: python -c 'import secrets; print(secrets.token_urlsafe(32))')")
        if "*" in server.cors_origins:
            problems.append("set VITRINE_SERVER__CORS_ORIGINS to the shop's origins, e.g. https://shop.example (not *)")
        if problems:
            raise ConfigurationError("VITRINE_ENV=production refuses to start: " + "; ".join(problems))
    if mode(settings) == "development":
        log.warning(
            "DEVELOPMENT MODE: no admin or search key is set, so ANYONE who can reach this server can "
            "change the catalog, erase visitors and read reports. Set VITRINE_SERVER__ADMIN_KEY "
            "(and VITRINE_SERVER__SEARCH_KEY) before exposing it.",
        )
    if server.admin_key and server.search_key and server.admin_key == server.search_key:
        raise ConfigurationError("VITRINE_SERVER__SEARCH_KEY must differ from the admin key: it ships in storefront pages")
    if server.metrics_key and server.metrics_key in (server.admin_key, server.search_key):
        raise ConfigurationError("VITRINE_SERVER__METRICS_KEY must differ from the admin and search keys")


def matches(candidate: str, expected: str | None) -> bool:
    """Constant-time comparison of any header, cookie or form value against a configured key.

    Starlette decodes header bytes as latin-1: encoding back gives the bytes the client sent,
    so a UTF-8 key sent raw in a header matches, as does the same key typed in the login form
    (decoded as UTF-8). Hashing first makes the comparison independent of length."""
    if not expected:
        return False
    want = hashlib.sha256(expected.encode("utf-8")).digest()
    as_text = hashlib.sha256(candidate.encode("utf-8", "surrogatepass")).digest()
    try:
        as_header = hashlib.sha256(candidate.encode("latin-1")).digest()
    except UnicodeEncodeError:
        as_header = as_text
    # Both comparisons always run: the time taken does not say which form was close.
    header_ok = hmac.compare_digest(as_header, want)
    text_ok = hmac.compare_digest(as_text, want)
    return header_ok or text_ok


def presented_key(request: Request) -> str | None:
    authorization = request.headers.get("authorization")
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    legacy = request.headers.get("x-admin-key")
    return legacy if legacy else None


# ---- admin page sessions ------------------------------------------------------------------


def _session_secret(admin_key: str) -> bytes:
    # Derived from the admin key: changing the key ends every session.
    return hashlib.sha256(b"vitrine-admin-session\x00" + admin_key.encode("utf-8")).digest()


def issue_session(settings: Settings, now: float | None = None) -> str:
    """A signed, expiring session token: `<expires>.<nonce>.<signature>`; never the key itself."""
    assert settings.server.admin_key, "sessions exist only when an admin key is set"
    expires = int((time.time() if now is None else now) + settings.server.session_hours * 3600)
    payload = f"{expires}.{secrets.token_urlsafe(12)}"
    signature = hmac.new(_session_secret(settings.server.admin_key), payload.encode(), hashlib.sha256).hexdigest()
    return f"{payload}.{signature}"


def valid_session(settings: Settings, token: str | None, now: float | None = None) -> bool:
    key = settings.server.admin_key
    if not key or not token:
        return False
    payload, _, signature = token.rpartition(".")
    expires, _, _nonce = payload.partition(".")
    expected = hmac.new(_session_secret(key), payload.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()
    if not matches(signature, expected):
        return False
    try:
        return int(expires) > (time.time() if now is None else now)
    except ValueError:
        return False


def is_https(request: Request) -> bool:
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return request.url.scheme == "https" or forwarded == "https"


# ---- the guard every route passes ---------------------------------------------------------


def _route_template(request: Request) -> str:
    route = request.scope.get("route")
    return route.path if isinstance(route, APIRoute) or hasattr(route, "path") else request.url.path


def client_of(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _unauthorized(message: str) -> HTTPException:
    return HTTPException(401, message, headers={"WWW-Authenticate": 'Bearer realm="vitrine"'})


async def authorize(request: Request) -> None:
    """FastAPI dependency on every route: rate limits first, then keys. A coroutine: it never
    blocks (hashing and a lock held for a dictionary update), and FastAPI would run a plain
    function in its thread pool, a hand-over to a worker thread and back on every request."""
    settings: Settings = request.app.state.settings
    limiter: RateLimiter = request.app.state.rate_limiter
    template = _route_template(request)
    access = access_of(request.method, template)
    client = client_of(request)
    key = presented_key(request)
    if access is Access.public:
        limiter.check_public(client, key)
    if access is Access.open:
        return
    server = settings.server
    if mode(settings) == "development":
        return
    is_admin_key = key is not None and matches(key, server.admin_key)
    if is_admin_key:
        return
    if template in METRICS and key is not None and matches(key, server.metrics_key):
        return
    if access is Access.public:
        if not server.search_key or (key is not None and matches(key, server.search_key)):
            return
        if key is not None:
            limiter.failed_login(client)
        raise _unauthorized("this route needs the search key (or the admin key): send 'Authorization: Bearer <key>'")
    # Admin routes: the key, or the session cookie of the admin pages.
    if valid_session(settings, request.cookies.get(SESSION_COOKIE)):
        return
    if key is not None and matches(key, server.search_key):
        raise HTTPException(403, "the search key only opens the public routes; this one needs the admin key")
    if key is not None:
        limiter.failed_login(client)
    if template in ADMIN_PAGES:
        raise LoginRequired()
    if not server.admin_key:
        # Only a search key is set: admin routes have no key that could open them.
        raise HTTPException(403, "admin routes are closed: set VITRINE_SERVER__ADMIN_KEY on the server to use them")
    raise _unauthorized("admin route: send the server's admin key as 'Authorization: Bearer <key>' (or X-Admin-Key)")


def is_admin(request: Request) -> bool:
    """For pages that show more to admins; the guard has already let the request in."""
    settings: Settings = request.app.state.settings
    if not settings.server.admin_key:
        return mode(settings) == "development"
    key = presented_key(request)
    return (key is not None and matches(key, settings.server.admin_key)) or valid_session(
        settings, request.cookies.get(SESSION_COOKIE)
    )


def openapi_security(schema: dict[str, Any], routes: list[Any]) -> None:
    """Declare the bearer key in the OpenAPI schema, per operation, so clients (and schema
    testers) know which routes need which key."""
    schema.setdefault("components", {}).setdefault("securitySchemes", {})["bearerKey"] = {
        "type": "http",
        "scheme": "bearer",
        "description": "The admin key (every route) or the search key (public routes).",
    }
    for route in routes:
        if not isinstance(route, APIRoute) or not route.include_in_schema:
            continue
        for method in route.methods:
            operation = schema.get("paths", {}).get(route.path_format, {}).get(method.lower())
            if operation is not None and access_of(method, route.path) is not Access.open:
                operation["security"] = [{"bearerKey": []}]
