"""A visitor's profile: decayed affinities per attribute value, the current visit, recent views.

Each (attribute, value) keeps one score and the time it was last updated. An event adds its
type's weight; the score halves every half-life, applied lazily (score * 0.5 ** (age / half
life)) so the profile is updated in O(values of one product) and never needs a batch job. The
current visit keeps its own undecayed scores, weighted up at read time, so what the shopper
does now outweighs their history. Every score is capped so a burst of clicks on one thing
cannot drown the rest.

Profiles are plain JSON-able dicts: any store (SQLite, Redis) keeps them as one value.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from indexer.catalog import Product
from search.affinities import Affinities
from search.behaviour import Event, EventType
from search.columns import PRICE_EDGES, price_bucket_labels
from search.settings import PersonalizationSettings

PROFILE_VERSION = 1
_PRICE_LABELS = price_bucket_labels()
# Variant "sizes" that say nothing about the visitor's body.
NOT_A_SIZE = {"one size", "onesize", "one-size", "os", "n/a", "na", "-", "uni", "unisize"}


def price_band(price: float | None) -> str | None:
    if price is None or price != price:
        return None
    for label, high in zip(_PRICE_LABELS, PRICE_EDGES, strict=False):
        if price < high:
            return label
    return _PRICE_LABELS[-1]


def product_signals(
    product: Product, event: Event, attributes: Iterable[str], price: float | None
) -> dict[str, list[tuple[str, float]]]:
    """What one event says about the visitor: (value, share of the event's weight) per attribute.

    A product offered in several colours says little about which one the visitor liked unless
    the event names the variant, so the weight is split across them. Size is learned only from
    a variant put in the cart or bought: looking at a dress says nothing about one's size.
    """
    variant = next((v for v in product.variants if event.variant_sku and v.sku == event.variant_sku), None)
    signals: dict[str, list[tuple[str, float]]] = {}

    def spread(name: str, values: list[str]) -> None:
        values = [v for v in dict.fromkeys(v.strip() for v in values if v and v.strip())]
        if values:
            signals[name] = [(v, 1.0 / len(values)) for v in values]

    if product.brand:
        spread("brand", [product.brand])
    # The leaf category is the specific interest; its parents are shared by everything.
    if product.categories:
        spread("category", [product.categories[-1]])
    spread("colour", [variant.colour] if variant is not None and variant.colour else product.colours)
    for key in attributes:
        if product.attributes.get(key):
            spread(key, [product.attributes[key]])
    band = price_band(variant.price if variant is not None and variant.price is not None else price)
    if band:
        spread("price_band", [band])
    if (
        variant is not None and variant.size and variant.size.strip().lower() not in NOT_A_SIZE
        and event.type in (EventType.add_to_cart, EventType.purchase)
    ):
        spread("size", [variant.size])
    return signals


def new_profile(now: float) -> dict[str, Any]:
    return {
        "v": PROFILE_VERSION, "first_seen": now, "last_seen": now, "sessions": 0, "events": 0,
        "session_id": None, "session_started": None, "long": {}, "session": {}, "recent": [],
    }


def _decayed(score: float, since: float, now: float, half_life: float) -> float:
    return score * 0.5 ** (max(0.0, now - since) / half_life)


def apply_event(
    profile: dict[str, Any],
    event: Event,
    ts: float,
    signals: dict[str, list[tuple[str, float]]],
    settings: PersonalizationSettings,
) -> None:
    """Fold one event into the profile (in place)."""
    half_life = settings.half_life_days * 86400.0
    weight = settings.event_weights.get(event.type.value, 0.0)
    _track_session(profile, event, ts, settings)
    profile["events"] = profile.get("events", 0) + 1
    profile["last_seen"] = max(profile.get("last_seen", ts), ts)
    if weight > 0:
        long: dict[str, dict[str, list[float]]] = profile.setdefault("long", {})
        session: dict[str, dict[str, float]] = profile.setdefault("session", {})
        for attribute, values in signals.items():
            for value, share in values:
                key = value.lower()
                score, at = long.setdefault(attribute, {}).get(key, (0.0, ts))
                # Bring score and event to the same moment (the later one), then add.
                if ts >= at:
                    score = _decayed(score, at, ts, half_life) + weight * share
                    at = ts
                else:  # an event arriving late counts as much as it would have then
                    score = score + _decayed(weight * share, ts, at, half_life)
                long[attribute][key] = [min(score, settings.cap), at]
                current = session.setdefault(attribute, {})
                current[key] = min(current.get(key, 0.0) + weight * share, settings.cap)
    if event.type == EventType.view and event.product_id:
        recent = [item for item in profile.get("recent", []) if item[0] != event.product_id]
        recent.insert(0, [event.product_id, ts])
        recent.sort(key=lambda item: -item[1])
        profile["recent"] = recent[: settings.recent_limit]


def _track_session(profile: dict[str, Any], event: Event, ts: float, settings: PersonalizationSettings) -> None:
    """A new visit starts with a new session_id, or after inactivity when the shop sends none."""
    timeout = settings.session_timeout_minutes * 60.0
    same = (
        profile.get("session_id") == event.session_id
        if event.session_id
        else profile.get("session_started") is not None and ts - profile.get("last_seen", ts) <= timeout
    )
    if not same or profile.get("session_started") is None:
        profile["session_id"] = event.session_id
        profile["session_started"] = ts
        profile["session"] = {}
        profile["sessions"] = profile.get("sessions", 0) + 1


def affinities(
    profile: dict[str, Any] | None, now: float, session_id: str | None, settings: PersonalizationSettings
) -> Affinities:
    if not profile:
        return Affinities()
    half_life = settings.half_life_days * 86400.0
    in_session = (
        profile.get("session_id") == session_id
        if session_id
        else now - profile.get("last_seen", 0.0) <= settings.session_timeout_minutes * 60.0
    )
    session = profile.get("session", {}) if in_session else {}
    prefs: dict[str, dict[str, float]] = {}
    for attribute in set(profile.get("long", {})) | set(session):
        raw: dict[str, float] = {}
        for value, (score, at) in profile.get("long", {}).get(attribute, {}).items():
            raw[value] = _decayed(score, at, now, half_life)
        for value, score in session.get(attribute, {}).items():
            raw[value] = raw.get(value, 0.0) + settings.session_weight * score
        raw = {value: min(score, settings.cap * (1 + settings.session_weight)) for value, score in raw.items()}
        evidence = sum(raw.values())
        if evidence <= 1e-9:
            continue
        confidence = evidence / (evidence + settings.prior)
        # A value's preference is its share of the visitor's signal on the attribute, not its
        # ratio to the strongest value: four red products of four brands say "red" (share 1)
        # far more than any one of the brands (share 1/4 each), where a ratio to the strongest
        # would call every one of those brands a full preference.
        prefs[attribute] = {value: confidence * score / evidence for value, score in raw.items() if score > 1e-9}
    # Returning: this visitor had a visit before the current one.
    returning = profile.get("sessions", 0) > (1 if in_session else 0)
    return Affinities(prefs=prefs, returning=returning, events=profile.get("events", 0))
