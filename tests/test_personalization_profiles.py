"""Visitor profiles: weighting, decay, visits, caps, and the three stores behind one interface.

The store tests run against a real SQLite file, the PostgreSQL server (VITRINE_TEST_DATABASE_URL,
a schema per test) and the Redis server (VITRINE_TEST_REDIS_URL) of the machine
(tests/services.py); without a reachable server they are skipped, and in CI that skip fails.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from indexer.catalog import Product
from search.behaviour import Event
from search.database import Database
from search.personalization.profile import affinities, apply_event, new_profile, product_signals
from search.personalization.profile_stores import (
    PostgresProfileStore,
    ProfileStore,
    RedisProfileStore,
    SQLiteProfileStore,
)
from search.settings import PersonalizationSettings
from tests.services import redis_url, unavailable

DAY = 86400.0
T0 = 1_700_000_000.0
SETTINGS = PersonalizationSettings()


def _product(pid: str, colour: str = "Red", brand: str = "Corvo", category: str = "Dresses") -> Product:
    return Product.model_validate({
        "id": pid, "title": f"{brand} {colour} thing", "brand": brand, "categories": ["Women", category],
        "attributes": {"colour": colour, "material": "linen"}, "price": 40,
        "variants": [{"sku": f"{pid}-M", "size": "M", "colour": colour, "stock": 3},
                     {"sku": f"{pid}-L", "size": "L", "colour": colour, "stock": 0}],
    })


def _fold(profile: dict, kind: str, product: Product, ts: float, session: str = "s1", sku: str | None = None,
          settings: PersonalizationSettings = SETTINGS) -> None:
    event = Event(type=kind, visitor_id="v", session_id=session, product_id=product.id, variant_sku=sku, ts=ts)
    apply_event(profile, event, ts, product_signals(product, event, settings.profile_attributes, 40.0), settings)


def test_purchase_counts_more_than_a_view() -> None:
    profile = new_profile(T0)
    _fold(profile, "view", _product("a", colour="Blue"), T0)
    _fold(profile, "purchase", _product("b", colour="Red"), T0)
    prefs = affinities(profile, T0, "s2", SETTINGS).of("colour")  # another visit: history only
    assert prefs["red"] > prefs["blue"]
    weights = SETTINGS.event_weights
    assert prefs["blue"] / prefs["red"] == pytest.approx(weights["view"] / weights["purchase"])


def test_history_halves_every_half_life_and_recent_interest_wins() -> None:
    settings = PersonalizationSettings(half_life_days=7)
    profile = new_profile(T0)
    # Earbuds a month ago (many clicks), headphones this week (fewer).
    for i in range(6):
        _fold(profile, "click", _product(f"e{i}", category="Earbuds"), T0, session="old", settings=settings)
    now = T0 + 28 * DAY
    for i in range(2):
        _fold(profile, "click", _product(f"h{i}", category="Headphones"), now - DAY, session="new", settings=settings)
    prefs = affinities(profile, now, "later", settings).of("category")
    assert prefs["headphones"] > prefs["earbuds"]
    # 6 clicks four half-lives old weigh 6/16; 2 clicks one day old weigh 2 * 0.5**(1/7).
    expected = (6 / 16) / (2 * 0.5 ** (1 / 7))
    assert prefs["earbuds"] / prefs["headphones"] == pytest.approx(expected, rel=1e-6)


def test_current_visit_outweighs_history() -> None:
    profile = new_profile(T0)
    for i in range(3):
        _fold(profile, "click", _product(f"b{i}", colour="Blue"), T0, session="yesterday")
    _fold(profile, "click", _product("r", colour="Red"), T0 + DAY, session="today")
    now = T0 + DAY + 60
    in_visit = affinities(profile, now, "today", SETTINGS).of("colour")
    assert in_visit["red"] > in_visit["blue"]  # 1 click x (1 + session weight 2) vs 3 decayed
    next_visit = affinities(profile, now + DAY, "tomorrow", SETTINGS).of("colour")
    assert next_visit["blue"] > next_visit["red"]


def test_a_burst_of_clicks_is_capped() -> None:
    profile = new_profile(T0)
    for i in range(3):
        _fold(profile, "click", _product(f"b{i}", colour="Blue"), T0, session="s0")
    for i in range(200):
        _fold(profile, "click", _product(f"r{i}", colour="Red"), T0 + 1, session="s0")
    prefs = affinities(profile, T0 + DAY, "s1", SETTINGS).of("colour")
    assert prefs["blue"] >= 3 / SETTINGS.cap * 0.9  # not drowned: 200 clicks count as `cap`


def test_size_is_learned_only_from_variants_put_in_the_cart_or_bought() -> None:
    profile = new_profile(T0)
    product = _product("a")
    _fold(profile, "view", product, T0, sku="a-L")
    _fold(profile, "click", product, T0, sku="a-L")
    assert not affinities(profile, T0, "s1", SETTINGS).of("size")
    _fold(profile, "add_to_cart", product, T0, sku="a-M")
    assert set(affinities(profile, T0, "s1", SETTINGS).of("size")) == {"m"}


def test_a_new_visit_starts_with_a_new_session_or_after_inactivity() -> None:
    profile = new_profile(T0)
    product = _product("a")
    event = Event(type="view", visitor_id="v", product_id="a")  # no session_id: by inactivity
    for ts in (T0, T0 + 60, T0 + 120):
        apply_event(profile, event, ts, product_signals(product, event, (), 40.0), SETTINGS)
    assert profile["sessions"] == 1
    apply_event(profile, event, T0 + 3 * 3600, product_signals(product, event, (), 40.0), SETTINGS)
    assert profile["sessions"] == 2
    assert affinities(profile, T0 + 3 * 3600 + 10, None, SETTINGS).returning


# ---- the stores: one suite, two backends -------------------------------------------------


@pytest.fixture(params=["sqlite", "postgres", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ProfileStore]:
    if request.param == "sqlite":
        s: ProfileStore = SQLiteProfileStore(tmp_path / "profiles.db")
        yield s
        s.close()
        return
    if request.param == "postgres":
        database = Database.open(request.getfixturevalue("pg_url"))
        yield PostgresProfileStore(database)
        database.close()
        return
    import redis

    try:
        redis.Redis.from_url(redis_url(), socket_connect_timeout=1).ping()
    except redis.RedisError as error:
        unavailable(f"Redis at {redis_url()}", error)
    prefix = f"vitrine-test-{uuid.uuid4().hex}:"
    rs = RedisProfileStore(redis_url(), retention_seconds=3600, prefix=prefix)
    yield rs
    client = redis.Redis.from_url(redis_url())
    for key in client.scan_iter(f"{prefix}*"):
        client.delete(key)
    rs.close()


def _add_one(profile: dict | None) -> dict:
    profile = profile or {"n": 0, "last_seen": T0}
    profile["n"] += 1
    return profile


def test_store_keeps_updates_and_returns_none_for_strangers(store: ProfileStore) -> None:
    assert store.get("nobody") is None
    store.update({"a": _add_one, "b": _add_one})
    store.update({"a": _add_one})
    assert store.get("a")["n"] == 2
    assert store.get("b")["n"] == 1


def test_store_concurrent_updates_lose_nothing(store: ProfileStore) -> None:
    def work() -> None:
        for _ in range(25):
            store.update({"shared": _add_one})

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert store.get("shared")["n"] == 100


def test_store_delete_erases_one_visitor_only(store: ProfileStore) -> None:
    store.update({"a": _add_one, "b": _add_one})
    assert store.delete("a") is True
    assert store.get("a") is None
    assert store.get("b") is not None
    assert store.delete("a") is False


def test_store_failed_update_keeps_the_previous_profile(store: ProfileStore) -> None:
    store.update({"a": _add_one})

    def broken(profile: dict | None) -> dict:
        raise ValueError("bad event")

    with pytest.raises(ValueError):
        store.update({"a": broken})
    assert store.get("a")["n"] == 1
