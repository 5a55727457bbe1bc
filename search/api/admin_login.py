"""The admin pages' login: a form POSTed once, answered with a signed, expiring session cookie.

The key never travels in a URL (where proxies and browser history keep it) and never sits in
the cookie: the cookie holds an expiry and an HMAC signature derived from the key
(search.api.security.issue_session). HttpOnly (no script reads it), SameSite=strict (no other
site's page sends it) and Secure when the request came over HTTPS. Failed attempts count
against the client's login rate limit.
"""

from __future__ import annotations

import html
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from search.api.security import (
    SESSION_COOKIE,
    client_of,
    is_https,
    issue_session,
    matches,
)
from search.settings import Settings

router = APIRouter(include_in_schema=False)


def _safe_next(target: str | None) -> str:
    # Only back to an admin page of this server: never an open redirect.
    if target and target.startswith("/admin") and not target.startswith("//") and "\\" not in target:
        return target
    return "/admin"


def login_form(next_path: str = "/admin", message: str | None = None, status_code: int = 401) -> HTMLResponse:
    note = f"<p role='alert'>{html.escape(message)}</p>" if message else ""
    return HTMLResponse(
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Vitrine admin: log in</title>"
        "<link rel='icon' href='data:,'></head><body><main>"
        f"<h1>Vitrine admin</h1>{note}"
        "<form method='post' action='/admin/login'>"
        "<label>Admin key <input name='key' type='password' autocomplete='current-password' required></label>"
        f"<input type='hidden' name='next' value='{html.escape(_safe_next(next_path), quote=True)}'>"
        "<button type='submit'>Log in</button></form></main></body></html>",
        status_code=status_code,
    )


@router.get("/admin/login")
def login_page(next: str = "/admin") -> Response:
    return login_form(next, status_code=200)


@router.post("/admin/login")
async def login(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    limiter = request.app.state.rate_limiter
    client = client_of(request)
    limiter.check_login(client)
    form = parse_qs((await request.body()).decode("utf-8", errors="replace"), max_num_fields=10)
    key = (form.get("key") or [""])[0]
    target = _safe_next((form.get("next") or [None])[0])
    if not settings.server.admin_key:
        return login_form(target, "This server has no admin key (VITRINE_SERVER__ADMIN_KEY); the admin pages are "
                          "open in development mode and closed otherwise.", status_code=403)
    if not matches(key, settings.server.admin_key):
        limiter.failed_login(client)
        return login_form(target, "Wrong admin key.")
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        issue_session(settings),
        max_age=int(settings.server.session_hours * 3600),
        httponly=True,
        samesite="strict",
        secure=is_https(request),
        path="/",
    )
    return response


@router.post("/admin/logout")
def logout() -> Response:
    response = RedirectResponse("/admin/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return response
