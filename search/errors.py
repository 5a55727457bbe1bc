"""Vitrine's own error types. The core raises these; the HTTP edge maps each class once to a
status code and a problem+json body, the CLI to a message and an exit code.

Each carries a message a person can act on (what was wrong, and what to do instead).
"""

from __future__ import annotations


class VitrineError(Exception):
    """Base of every error Vitrine raises on purpose."""

    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


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


class Unavailable(VitrineError):
    """A store or the index cannot be reached right now; retrying later may work."""

    status = 503


class ConfigError(VitrineError):
    """The settings describe something that cannot run (an unknown ranking stage...)."""

    status = 500


class ProductNotFound(NotFound):
    def __init__(self, product_id: str) -> None:
        super().__init__(f"no product with id {product_id!r}")
        self.product_id = product_id
