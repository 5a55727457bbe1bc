"""Vitrine's own error types. The core raises these; the HTTP edge maps each class once to a
status code and a problem+json body (search/api/problems.py), the CLI to a message and an
exit code.

Each carries a message a person can act on (what was wrong, and what to do instead), and
`retry_after` when trying again later may succeed (a full disk, a busy store).
"""

from __future__ import annotations


class VitrineError(Exception):
    """Base of every error Vitrine raises on purpose."""

    status = 500
    title = "Vitrine error"

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


class InvalidInput(VitrineError, ValueError):
    """The caller sent something that cannot be used (a bad filter, an unknown field...).

    Also a ValueError, so pydantic validators that raise it report a validation error."""

    status = 422


class NotFound(VitrineError, LookupError):
    """The named thing (product, synonym, visitor...) does not exist."""

    status = 404


class Conflict(VitrineError):
    """The request contradicts what is stored (a duplicate, a stale version...)."""

    status = 409


class LimitExceeded(VitrineError):
    """A batch, a body or a page is larger than this server accepts."""

    status = 413


class RateLimited(VitrineError):
    """Too many requests from one client or with one key; try again after `retry_after`."""

    status = 429


class Unavailable(VitrineError):
    """A store or the index cannot be reached or written right now (disk full, database locked,
    Redis down); nothing was half-written, and retrying after `retry_after` seconds may work."""

    status = 503

    def __init__(self, message: str, *, retry_after: float | None = 5.0) -> None:
        super().__init__(message, retry_after=retry_after)


class ConfigError(VitrineError):
    """The settings describe something that cannot run (an unknown ranking stage...)."""

    status = 500


class ProductNotFound(NotFound):
    def __init__(self, product_id: str) -> None:
        super().__init__(f"no product with id {product_id!r}")
        self.product_id = product_id
