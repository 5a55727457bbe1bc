"""One error format at the HTTP edge: `application/problem+json` (RFC 9457).

Every 4xx and 5xx the service sends is a problem object:
    {"type": "about:blank", "title": "Unprocessable Content", "status": 422,
     "detail": "query.limit: Input should be less than or equal to 100", "instance": "/search",
     "errors": [{"loc": ["query", "limit"], "msg": "...", "type": "less_than_equal"}]}
`detail` is always one sentence a person can act on; `errors` (validation only) lists each
field. Vitrine's own errors (search.errors) are mapped to status codes here, once. Failing
stores (a full disk, a locked database, Redis down) become 503 with Retry-After. Anything
unexpected is logged with its traceback and answered with a 500 that names no internals.
"""

from __future__ import annotations

import errno
import json
import secrets
import sqlite3
from http import HTTPStatus
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from search import metrics
from search.errors import (
    Unavailable,
    VitrineError,
)

log = structlog.get_logger("vitrine.api")

MEDIA_TYPE = "application/problem+json"

# Documented on every operation of the OpenAPI schema: any route can meet each of them
# (keys, rate limits and body limits apply everywhere; stores can fail under any write).
DOCUMENTED = {
    400: "The request cannot be read (e.g. a malformed body)",
    401: "Missing or wrong key: send `Authorization: Bearer <key>`",
    403: "The key does not open this route (the search key on an admin route)",
    404: "No such resource",
    409: "Conflicts with what is stored",
    413: "Body or batch larger than the server accepts",
    422: "Invalid input: `errors` lists each field",
    429: "Rate limit reached: retry after `Retry-After` seconds",
    500: "Unexpected server error (logged; no internals in the answer)",
    503: "A store cannot write right now; nothing was half-written: retry after `Retry-After` seconds",
}

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "type": "object",
    "description": "RFC 9457 problem details.",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["loc", "msg", "type"],
                "properties": {
                    "loc": {"type": "array", "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]}},
                    "msg": {"type": "string"},
                    "type": {"type": "string"},
                },
            },
        },
    },
}


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


class ProblemResponse(Response):
    media_type = MEDIA_TYPE

    def render(self, content: Any) -> bytes:
        # ASCII-escaped: a message that quotes hostile input (a lone surrogate) still renders.
        return json.dumps(content, ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode("ascii")


def problem_response(
    status: int,
    detail: str,
    instance: str | None = None,
    *,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
    retry_after: float | None = None,
    extra: dict[str, Any] | None = None,
) -> ProblemResponse:
    """`extra`: extension members (RFC 9457 §3.2), e.g. the rejected events of a batch."""
    body: dict[str, Any] = {**(extra or {}), "type": "about:blank", "title": _phrase(status), "status": status, "detail": detail}
    if instance:
        body["instance"] = instance
    if errors is not None:
        body["errors"] = errors
    headers = dict(headers or {})
    if retry_after is not None:
        headers["Retry-After"] = str(max(1, int(retry_after + 0.999)))
    return ProblemResponse(body, status_code=status, headers=headers)


def _plain(value: Any) -> Any:
    return value if isinstance(value, str | int) else str(value)


def field_errors(raw: list[Any]) -> list[dict[str, Any]]:
    """Validation errors without the offending input (it may be NaN, huge or personal)."""
    out = []
    for error in raw:
        if isinstance(error, dict):
            loc = [_plain(part) for part in error.get("loc", ())]
            out.append({"loc": loc, "msg": str(error.get("msg", "invalid")), "type": str(error.get("type", "value_error"))})
        else:
            out.append({"loc": [], "msg": str(error), "type": "value_error"})
    return out


def summary(errors: list[dict[str, Any]]) -> str:
    parts = [f"{'.'.join(str(p) for p in e['loc']) or 'request'}: {e['msg']}" for e in errors[:5]]
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return "; ".join(parts) + more if parts else "the request is invalid"


def store_unavailable(error: BaseException) -> Unavailable | None:
    """A storage failure that retrying later may fix, as Unavailable; None for anything else."""
    if isinstance(error, Unavailable):
        return error
    if isinstance(error, sqlite3.OperationalError):
        text = str(error).lower()
        if any(s in text for s in ("full", "disk i/o", "locked", "busy", "readonly", "unable to open")):
            return Unavailable(f"storage cannot write right now ({error}); nothing was half-written, retry later")
    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):
        return Unavailable("storage is full or read-only; nothing was half-written, retry later")
    if type(error).__module__.startswith("redis"):
        return Unavailable("the profile store (Redis) cannot be reached; retry later")
    return None


def _redis_errors() -> tuple[type[Exception], ...]:
    try:
        from redis.exceptions import RedisError
    except ImportError:  # Redis profiles are optional
        return ()
    return (RedisError,)


def store_kind(error: BaseException) -> str:
    """Which kind of store failed (a label of the vitrine_store_errors metric)."""
    module = type(error).__module__
    if isinstance(error, sqlite3.Error):
        return "sqlite"
    if module.startswith("redis"):
        return "redis"
    if module.startswith(("psycopg", "asyncpg")):
        return "postgresql"
    if isinstance(error, OSError):
        return "disk"
    return "other"


async def _vitrine_error(request: Request, error: Exception, cause: BaseException | None = None) -> Response:
    assert isinstance(error, VitrineError)
    status = error.status  # each class says its status once (search/errors.py)
    if status == 503:
        metrics.store_error(store_kind(cause if cause is not None else error.__cause__ or error))
    if status >= 500:
        log.warning("store unavailable", path=request.scope.get("route", request).path, error=error.message)
    return problem_response(status, error.message, request.url.path, retry_after=error.retry_after)


async def _http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, StarletteHTTPException)
    detail = error.detail
    errors = None
    if isinstance(detail, list):
        errors = field_errors(detail)
        detail = summary(errors)
    elif isinstance(detail, dict):
        detail = str(detail.get("detail") or detail)
    elif detail is None:
        detail = _phrase(error.status_code)
    return problem_response(error.status_code, str(detail), request.url.path, errors=errors, headers=error.headers)


async def _validation_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, RequestValidationError)
    errors = field_errors(list(error.errors()))
    # A batch (the body's top-level list) longer than the route allows is "too large", as
    # for every other batch route, not a field mistake.
    if errors and all(e["type"] == "too_long" and e["loc"] == ["body"] for e in errors):
        return problem_response(413, f"{summary(errors)}: split the batch", request.url.path, errors=errors)
    return problem_response(422, summary(errors), request.url.path, errors=errors)


async def _unexpected(request: Request, error: Exception) -> Response:
    unavailable = store_unavailable(error)
    if unavailable is not None:
        return await _vitrine_error(request, unavailable, cause=error)
    incident = secrets.token_hex(6)
    log.error("unexpected error", incident=incident, method=request.method, exc_info=error)
    return problem_response(500, f"unexpected server error; the server log has it as incident {incident}", request.url.path)


def install(app: FastAPI) -> None:
    """Map every error to a problem once, and document problems on every operation."""
    app.add_exception_handler(VitrineError, _vitrine_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    for kind in (sqlite3.Error, OSError, *_redis_errors()):
        app.add_exception_handler(kind, _unexpected)
    app.add_exception_handler(Exception, _unexpected)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title, version=app.version, summary=app.summary, description=app.description, routes=app.routes
        )
        document(schema)
        for hook in getattr(app.state, "openapi_hooks", []):
            hook(schema, app.routes)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def document(schema: dict[str, Any]) -> None:
    schemas = schema.setdefault("components", {}).setdefault("schemas", {})
    schemas["Problem"] = PROBLEM_SCHEMA
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    ref = {"$ref": "#/components/schemas/Problem"}
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            for status, description in DOCUMENTED.items():
                responses[str(status)] = {"description": description, "content": {MEDIA_TYPE: {"schema": ref}}}
