"""Keys, admin sessions, rate limits and the start-up checks, through a real ASGI client.

Properties checked:
  1. the admin key opens every route, by `Authorization: Bearer` or `X-Admin-Key`;
  2. with a search key set, public routes need it (or the admin key): missing/wrong → 401;
  3. the search key on an admin route → 403; without a search key public routes stay open;
  4. any header or cookie bytes (non-ASCII included) get 401, never 500;
  5. no key at all is development mode: /health says so and a warning is logged;
  6. VITRINE_ENV=production refuses to start without an admin key or with CORS `*`;
  7. CORS origins come from settings;
  8. the admin login form issues a signed, expiring, HttpOnly, SameSite=strict cookie that
     does not contain the key, Secure behind HTTPS; no key is taken from a URL;
  9. rate limits answer 429 with Retry-After, per client, per key and on failed logins.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from search.api.app import create_app
from search.api.limits import TokenBucket
from search.api.security import ConfigurationError, issue_session, valid_session
from search.service import SearchService
from search.settings import Settings

ADMIN = "admin-key-\u00e9t\u00e9"  # a non-ASCII key works, sent as raw UTF-8 bytes
SEARCH = "search-key-123"


def _client(service: SearchService, index_dir: Path, **server) -> TestClient:
    settings = Settings(index_dir=index_dir, server=server)
    return TestClient(create_app(settings, service=service))


@pytest.fixture(scope="module")
def client(service: SearchService, index_dir: Path) -> Iterator[TestClient]:
    with _client(service, index_dir, admin_key=ADMIN, search_key=SEARCH) as client:
        yield client


def _bearer(key: str) -> dict[str, bytes]:
    # httpx would refuse a non-ASCII str header; send the UTF-8 bytes as a browser would.
    return {"Authorization": b"Bearer " + key.encode()}


PUBLIC_CALLS = [
    ("GET", "/search?q=dress", None),
    ("POST", "/search", {"q": "dress"}),
    ("GET", "/suggest?q=dre", None),
    ("POST", "/events", {"events": [{"type": "search", "visitor_id": "sec-v", "query": "dress"}]}),
    ("GET", "/visitors/sec-v/recent", None),
]
ADMIN_CALLS = [
    ("GET", "/reports/top", None),
    ("GET", "/synonyms", None),
    ("PATCH", "/catalog/stock", []),
    ("DELETE", "/visitors/nobody", None),
]


def _call(client: TestClient, method: str, url: str, body, headers=None):
    return client.request(method, url, json=body, headers=headers or {})


@pytest.mark.parametrize(("method", "url", "body"), PUBLIC_CALLS)
def test_public_route_needs_the_search_key_or_the_admin_key(client, method, url, body) -> None:
    assert _call(client, method, url, body).status_code == 401
    assert _call(client, method, url, body, {"Authorization": "Bearer nope"}).status_code == 401
    assert _call(client, method, url, body, _bearer(SEARCH)).status_code < 400
    assert _call(client, method, url, body, _bearer(ADMIN)).status_code < 400


@pytest.mark.parametrize(("method", "url", "body"), ADMIN_CALLS)
def test_admin_route_needs_the_admin_key_and_refuses_the_search_key_with_403(client, method, url, body) -> None:
    missing = _call(client, method, url, body)
    assert missing.status_code == 401
    assert missing.headers["content-type"] == "application/problem+json"
    assert missing.headers["www-authenticate"].startswith("Bearer")
    assert _call(client, method, url, body, {"Authorization": "Bearer wrong"}).status_code == 401
    forbidden = _call(client, method, url, body, _bearer(SEARCH))
    assert forbidden.status_code == 403 and "admin key" in forbidden.json()["detail"]
    assert _call(client, method, url, body, _bearer(ADMIN)).status_code < 400
    assert _call(client, method, url, body, {"X-Admin-Key": ADMIN.encode()}).status_code < 400


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Admin-Key": "cl\u00e9".encode("latin-1")},
        {"X-Admin-Key": "\u043a\u043b\u044e\u0447".encode()},
        {"Authorization": b"Bearer \xff\xfe\x00garbage"[:-8] + b"\xc3\x28"},
        {"Authorization": b"Basic \xe2\x82\xac"},
        {"Cookie": "vitrine_session=\u00e9\u00e9.\u00e9".encode()},
        {"Cookie": b"vitrine_session=9999999999.x.\xff\xff"},
    ],
)
def test_non_ascii_keys_and_cookies_get_401_never_500(client, headers) -> None:
    response = client.get("/reports/top", headers=headers)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"


def test_without_a_search_key_public_routes_are_open_and_admin_routes_are_not(service, index_dir) -> None:
    with _client(service, index_dir, admin_key=ADMIN) as client:
        assert client.get("/search", params={"q": "dress"}).status_code == 200
        assert client.get("/reports/top").status_code == 401
        assert client.get("/health").json()["mode"] == "protected"


def test_only_a_search_key_keeps_admin_routes_closed(service, index_dir) -> None:
    with _client(service, index_dir, search_key=SEARCH) as client:
        assert client.get("/reports/top", headers=_bearer(SEARCH)).status_code == 403
        assert client.get("/reports/top").status_code == 403


def test_no_key_is_development_mode_said_in_health_and_in_the_log(service, index_dir, capsys) -> None:
    with _client(service, index_dir) as client:
        assert client.get("/health").json()["mode"] == "development"
        assert client.get("/reports/top").status_code == 200
    assert "DEVELOPMENT MODE" in capsys.readouterr().err


def test_health_needs_no_key(client) -> None:
    body = client.get("/health").json()
    assert body["status"] == "ok" and body["mode"] == "protected"


@pytest.mark.parametrize(
    ("server", "needs"),
    [
        ({"cors_origins": ["https://shop.example"]}, "ADMIN_KEY"),
        ({"admin_key": ADMIN}, "CORS_ORIGINS"),
    ],
)
def test_production_refuses_to_start_unsafe(index_dir, monkeypatch, server, needs) -> None:
    monkeypatch.setenv("VITRINE_ENV", "production")
    with pytest.raises(ConfigurationError, match=needs):
        create_app(Settings(index_dir=index_dir, server=server))


def test_production_starts_with_a_key_and_explicit_origins(service, index_dir, monkeypatch) -> None:
    monkeypatch.setenv("VITRINE_ENV", "production")
    monkeypatch.setenv("VITRINE_SERVER__CORS_ORIGINS", "https://shop.example, https://www.shop.example")
    settings = Settings(index_dir=index_dir, server={"admin_key": ADMIN})
    assert settings.server.cors_origins == ["https://shop.example", "https://www.shop.example"]
    with TestClient(create_app(settings, service=service)) as client:
        allowed = client.options("/search", headers={"Origin": "https://shop.example", "Access-Control-Request-Method": "GET"})
        assert allowed.headers["access-control-allow-origin"] == "https://shop.example"
        other = client.options("/search", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"})
        assert "access-control-allow-origin" not in other.headers


def test_the_search_key_must_differ_from_the_admin_key(index_dir) -> None:
    with pytest.raises(ConfigurationError):
        create_app(Settings(index_dir=index_dir, server={"admin_key": "same", "search_key": "same"}))


# ---- admin pages --------------------------------------------------------------------------


def test_admin_page_shows_a_post_login_form_and_no_key_in_urls(client) -> None:
    page = client.get("/admin")
    assert page.status_code == 401
    assert "method='post'" in page.text and "action='/admin/login'" in page.text
    # The old `?key=` login is gone: a key in a URL does not log anybody in.
    response = client.get("/admin/login", params={"key": ADMIN}, follow_redirects=False)
    assert response.status_code == 200 and "set-cookie" not in response.headers


def test_login_issues_a_signed_expiring_cookie_that_is_not_the_key(service, index_dir) -> None:
    with _client(service, index_dir, admin_key=ADMIN, search_key=SEARCH) as client:
        wrong = client.post("/admin/login", data={"key": "guess", "next": "/admin"}, follow_redirects=False)
        assert wrong.status_code == 401 and "Wrong admin key" in wrong.text
        response = client.post("/admin/login", data={"key": ADMIN, "next": "/admin/synonyms"}, follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"] == "/admin/synonyms"
        cookie = response.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Max-Age=" in cookie
        assert "Secure" not in cookie  # plain HTTP here
        token = client.cookies["vitrine_session"]
        assert ADMIN not in token and ADMIN.encode().hex() not in token
        assert client.get("/admin").status_code == 200
        assert client.get("/admin/synonyms").status_code == 200
        # The pages' own JSON calls ride on the same cookie.
        assert client.get("/synonyms").status_code == 200
        client.cookies.set("vitrine_session", token[:-2] + ("00" if not token.endswith("00") else "11"))
        assert client.get("/admin").status_code == 401


def test_login_behind_https_sets_a_secure_cookie_and_never_redirects_off_site(client) -> None:
    response = client.post(
        "/admin/login", data={"key": ADMIN, "next": "//evil.example/admin"},
        headers={"X-Forwarded-Proto": "https"}, follow_redirects=False,
    )
    assert response.status_code == 303 and response.headers["location"] == "/admin"
    assert "Secure" in response.headers["set-cookie"]


def test_sessions_expire_and_die_with_the_key(index_dir) -> None:
    settings = Settings(index_dir=index_dir, server={"admin_key": ADMIN, "session_hours": 1})
    token = issue_session(settings, now=1000.0)
    assert valid_session(settings, token, now=1000.0 + 3599)
    assert not valid_session(settings, token, now=1000.0 + 3601)
    rotated = Settings(index_dir=index_dir, server={"admin_key": "another"})
    assert not valid_session(rotated, token, now=1000.0)


# ---- rate limits --------------------------------------------------------------------------


def test_public_routes_are_rate_limited_per_client_with_retry_after(service, index_dir) -> None:
    settings = Settings(index_dir=index_dir, limits={"per_client_per_second": 0.01, "burst": 3})
    with TestClient(create_app(settings, service=service)) as client:
        statuses = [client.get("/suggest", params={"q": "dr"}).status_code for _ in range(5)]
        assert statuses[:3] == [200, 200, 200] and statuses[-1] == 429
        limited = client.get("/suggest", params={"q": "dr"})
        assert limited.status_code == 429
        assert limited.headers["content-type"] == "application/problem+json"
        assert 1 <= int(limited.headers["retry-after"]) <= 100  # one token per 100 s
        # Health and admin routes are not on the public bucket.
        assert client.get("/health").status_code == 200


def test_one_key_is_rate_limited_across_clients(service, index_dir) -> None:
    settings = Settings(index_dir=index_dir, server={"search_key": SEARCH},
                        limits={"per_client_per_second": 0, "per_key_per_second": 0.01, "burst": 1})
    with TestClient(create_app(settings, service=service)) as client:
        statuses = [client.get("/suggest", params={"q": "dr"}, headers=_bearer(SEARCH)).status_code for _ in range(15)]
        assert statuses[:10] == [200] * 10 and statuses[-1] == 429


def test_wrong_keys_and_logins_are_rate_limited(service, index_dir) -> None:
    settings = Settings(index_dir=index_dir, server={"admin_key": ADMIN}, limits={"logins_per_minute": 5})
    with TestClient(create_app(settings, service=service)) as client:
        statuses = [client.get("/reports/top", headers={"Authorization": f"Bearer guess-{i}"}).status_code for i in range(8)]
        assert statuses[:5] == [401] * 5 and set(statuses[5:]) == {429}
        # The login form shares the bucket: even the right key waits now.
        response = client.post("/admin/login", data={"key": ADMIN}, follow_redirects=False)
        assert response.status_code == 429 and int(response.headers["retry-after"]) >= 1


def test_token_bucket_refills_at_its_rate_and_says_how_long_to_wait() -> None:
    bucket = TokenBucket(rate=2.0, capacity=2, now=0.0)
    assert [bucket.take(0.0), bucket.take(0.0)] == [0.0, 0.0]
    assert bucket.take(0.0) == pytest.approx(0.5)
    assert bucket.take(0.5) == 0.0  # one token back after half a second
    assert bucket.take(10.0) == 0.0 and bucket.take(10.0) == 0.0 and bucket.take(10.0) > 0  # never above capacity
