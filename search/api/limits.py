"""Limits checked before any work is done: body size, JSON that Python would accept but the rest
of the system cannot hold (NaN, ±Infinity, lone surrogates), and request rates.

`BodyGuard` is pure ASGI and runs before routing: a body is read at most up to the limit
(Content-Length or chunked, it makes no difference) and refused with 413 beyond it, so a
50 MB upload costs 10 MB of reading, not a parse. The body is then replayed to the app.

`RateLimiter` keeps one token bucket per client (IP) and per presented key, in process:
each service process limits on its own, which bounds what one client costs each process.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from search.api.problems import problem_response
from search.errors import RateLimited
from search.settings import LimitSettings

_BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


class TokenBucket:
    __slots__ = ("capacity", "rate", "tokens", "updated")

    def __init__(self, rate: float, capacity: float, now: float) -> None:
        self.rate, self.capacity, self.tokens, self.updated = rate, capacity, capacity, now

    def take(self, now: float) -> float:
        """0 when a token was available (and taken), else the seconds until one will be."""
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


class RateLimiter:
    """Per client and per key buckets for the public routes, and a slow bucket of failed
    logins per client (wrong keys, wrong login form submissions)."""

    MAX_BUCKETS = 100_000  # beyond this, idle buckets are dropped (a full bucket is no state)

    def __init__(self, settings: LimitSettings) -> None:
        self.settings = settings
        self._buckets: dict[tuple[str, str], TokenBucket] = {}
        self._lock = threading.Lock()

    def _take(self, kind: str, who: str, rate: float, capacity: float) -> float:
        now = time.monotonic()
        with self._lock:
            bucket = self._buckets.get((kind, who))
            if bucket is None:
                if len(self._buckets) >= self.MAX_BUCKETS:
                    self._evict(now)
                bucket = self._buckets[(kind, who)] = TokenBucket(rate, capacity, now)
            return bucket.take(now)

    def _evict(self, now: float) -> None:
        idle = [k for k, b in self._buckets.items() if b.tokens + (now - b.updated) * b.rate >= b.capacity]
        for key in idle or list(self._buckets)[: len(self._buckets) // 2]:
            del self._buckets[key]

    def check_public(self, client: str, key: str | None) -> None:
        limits = self.settings
        if limits.per_client_per_second > 0:
            wait = self._take("client", client, limits.per_client_per_second, limits.burst)
            if wait:
                raise RateLimited(f"too many requests from this client: at most {limits.per_client_per_second:g} per second", retry_after=wait)
        if key is not None and limits.per_key_per_second > 0:
            # Keys are bucketed by a digest: the limiter never holds a key itself.
            digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:32]
            wait = self._take("key", digest, limits.per_key_per_second, limits.burst * 10)
            if wait:
                raise RateLimited(f"too many requests with this key: at most {limits.per_key_per_second:g} per second", retry_after=wait)

    def failed_login(self, client: str) -> None:
        """Counts a wrong key or password; raises once the client has used up its attempts."""
        per_minute = self.settings.logins_per_minute
        if per_minute <= 0:
            return
        wait = self._take("login", client, per_minute / 60.0, max(per_minute, 1.0))
        if wait:
            raise RateLimited(f"too many failed logins from this client: at most {per_minute:g} per minute", retry_after=wait)

    def check_login(self, client: str) -> None:
        """Before checking a login attempt: refuse while the client's failed attempts are used up."""
        per_minute = self.settings.logins_per_minute
        if per_minute <= 0:
            return
        with self._lock:
            bucket = self._buckets.get(("login", client))
            if bucket is None:
                return
            now = time.monotonic()
            tokens = min(bucket.capacity, bucket.tokens + (now - bucket.updated) * bucket.rate)
        if tokens < 1:
            raise RateLimited(
                f"too many failed logins from this client: at most {per_minute:g} per minute", retry_after=(1 - tokens) / bucket.rate
            )


# ---- request bodies -----------------------------------------------------------------------


class UnsafeJSON(ValueError):
    pass


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise UnsafeJSON(f"the number {text[:40]} is too large: numbers must be finite")
    return value


def _refuse_constant(name: str) -> Any:
    raise UnsafeJSON(f"{name} is not a number JSON allows: send a finite number (or leave the field out)")


def _check_strings(value: Any) -> None:
    """Lone UTF-16 surrogates (\\ud800) decode in Python but cannot be stored or sent back."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise UnsafeJSON("a string holds a lone UTF-16 surrogate (e.g. \\ud800): send valid Unicode text") from None
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def check_json(body: bytes) -> None:
    """Raises UnsafeJSON for NaN, ±Infinity, overflowing numbers or lone surrogates; malformed
    JSON is left to the route (which says where it is malformed)."""
    try:
        parsed = json.loads(body, parse_constant=_refuse_constant, parse_float=_finite)
    except UnsafeJSON:
        raise
    except ValueError:
        return
    _check_strings(parsed)


def _is_json(scope: Scope) -> bool:
    for name, value in scope.get("headers", ()):
        if name == b"content-type":
            media = value.split(b";")[0].strip().lower()
            return media == b"application/json" or media.endswith(b"+json")
    return False


class BodyGuard:
    """413 for bodies above the limit (before parsing), 422 for JSON the system cannot hold."""

    def __init__(self, app: ASGIApp, settings: LimitSettings) -> None:
        self.app = app
        self.max_bytes = settings.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        def too_large() -> ASGIApp:  # built only when refusing: every search is a POST
            return problem_response(
                413, f"the request body is larger than {self.max_bytes} bytes: split the batch "
                "(or raise VITRINE_LIMITS__MAX_BODY_BYTES)", scope["path"],
            )
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > self.max_bytes:
                    await too_large()(scope, receive, send)
                    return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await too_large()(scope, receive, send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        if body and _is_json(scope):
            try:
                check_json(body)
            except UnsafeJSON as error:
                await problem_response(422, str(error), scope["path"], errors=[
                    {"loc": ["body"], "msg": str(error), "type": "value_error"}
                ])(scope, receive, send)
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
