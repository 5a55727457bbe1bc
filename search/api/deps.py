"""Dependencies of the routes, aliased once with Annotated so routes stay one-liners."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request, status

from search.engine import SearchEngine
from search.settings import Settings


def get_engine(request: Request) -> SearchEngine:
    return request.app.state.engine


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def require_admin(
    request: Request,
    x_admin_key: Annotated[str | None, Header(description="Admin key (when the server sets one)")] = None,
) -> None:
    expected = request.app.state.settings.server.admin_key
    if expected and not (x_admin_key and secrets.compare_digest(x_admin_key, expected)):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "admin endpoint: send the server's admin key in the X-Admin-Key header",
        )


EngineDep = Annotated[SearchEngine, Depends(get_engine)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
AdminDep = Depends(require_admin)
