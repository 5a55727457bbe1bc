"""Dependencies of the routes, aliased once with Annotated so routes stay one-liners."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request, status

from search.service import SearchService
from search.settings import Settings


def get_service(request: Request) -> SearchService:
    return request.app.state.service


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


ADMIN_COOKIE = "vitrine_admin"


def is_admin(request: Request, key: str | None) -> bool:
    expected = request.app.state.settings.server.admin_key
    if not expected:
        return True
    for candidate in (key, request.cookies.get(ADMIN_COOKIE)):
        if candidate and secrets.compare_digest(candidate, expected):
            return True
    return False


def require_admin(
    request: Request,
    x_admin_key: Annotated[str | None, Header(description="Admin key (when the server sets one)")] = None,
) -> None:
    # Browsers on the admin pages send the key as a cookie set by /admin/login.
    if not is_admin(request, x_admin_key):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "admin endpoint: send the server's admin key in the X-Admin-Key header",
        )


ServiceDep = Annotated[SearchService, Depends(get_service)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
AdminDep = Depends(require_admin)
