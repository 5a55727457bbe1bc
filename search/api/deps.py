"""Dependencies of the routes, aliased once with Annotated so routes stay one-liners.

Each is a coroutine: none of them blocks, and FastAPI runs a plain `def` dependency in its
thread pool, one hand-over to a worker thread and back per dependency and request (a
measurable share of a cached search's time, more so on a loaded machine)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request, status

from search.api import security
from search.service import SearchService
from search.settings import Settings


async def get_service(request: Request) -> SearchService:
    return request.app.state.service


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def require_admin(request: Request) -> None:
    # The app-wide guard (search.api.security.authorize) has already checked keys and
    # sessions; checking again keeps an admin router closed even if mounted without it.
    if not security.is_admin(request):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "admin route: send the server's admin key as 'Authorization: Bearer <key>' (or X-Admin-Key)",
        )


ServiceDep = Annotated[SearchService, Depends(get_service)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
AdminDep = Depends(require_admin)
