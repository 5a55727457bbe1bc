"""Behaviour events sent by the storefront: Vitrine's own shape and OpenSearch UBI's.

A batch is validated event by event: a malformed event is rejected with its position and a
reason a developer can act on, and the valid ones are kept. Nothing here stores anything.
"""

from __future__ import annotations

import time
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

MAX_BATCH = 1000
# Client clocks drift; an event from further in the future than this is refused.
MAX_CLOCK_SKEW_SECONDS = 300
# An order worth more than this is a unit mistake or an attack, not revenue to report.
MAX_ORDER_VALUE = 1e9


class EventType(StrEnum):
    view = "view"
    click = "click"
    add_to_cart = "add_to_cart"
    purchase = "purchase"
    search = "search"


# UBI action names (https://docs.opensearch.org/latest/search-plugins/ubi/) mapped to ours.
UBI_ACTIONS = {
    "click": EventType.click,
    "click_through": EventType.click,
    "product_click": EventType.click,
    "view": EventType.view,
    "impression": EventType.view,
    "product_view": EventType.view,
    "add_to_cart": EventType.add_to_cart,
    "purchase": EventType.purchase,
    "checkout": EventType.purchase,
    "on_search": EventType.search,
    "search": EventType.search,
}


class TrafficSource(StrEnum):
    paid = "paid"
    email = "email"
    organic = "organic"
    social = "social"
    direct = "direct"
    referral = "referral"


# Names storefronts send as `traffic_source` (often a utm_source) mapped to our sources, so
# that `instagram` counts as social rather than vanishing into `direct`. The README lists them.
SOURCE_ALIASES: dict[str, TrafficSource] = {
    **{name: TrafficSource.social for name in (
        "facebook", "fb", "instagram", "ig", "twitter", "x", "tiktok", "pinterest", "linkedin", "reddit",
        "youtube", "snapchat", "threads", "whatsapp", "telegram", "messenger", "tumblr", "mastodon", "bluesky",
        "social-network", "sm",
    )},
    **{name: TrafficSource.organic for name in (
        "google", "bing", "duckduckgo", "yahoo", "ecosia", "baidu", "yandex", "qwant", "startpage", "seo", "search",
    )},
    **{name: TrafficSource.paid for name in (
        "cpc", "ppc", "ads", "adwords", "google_ads", "googleads", "paid_search", "paidsearch", "display", "cpm",
        "shopping", "paid_social", "affiliate",
    )},
    **{name: TrafficSource.email for name in ("newsletter", "mail", "e-mail", "mailchimp", "klaviyo", "sendinblue")},
    "none": TrafficSource.direct, "(direct)": TrafficSource.direct,
}


def normalize_source(value: str) -> TrafficSource | None:
    """A storefront's source name as one of ours; None when we do not know the name."""
    name = value.strip().lower()
    try:
        return TrafficSource(name)
    except ValueError:
        return SOURCE_ALIASES.get(name)


class Device(StrEnum):
    mobile = "mobile"
    tablet = "tablet"
    desktop = "desktop"


def referrer_host(url: str | None) -> str | None:
    """Only the host of a referrer URL: paths and query strings can carry personal data."""
    if not url:
        return None
    host = urlsplit(url if "//" in url else f"//{url}").hostname
    return host.lower() if host else None


class EventContext(BaseModel):
    """Where the visit came from. The referrer is reduced to its host: no path, no query string
    (those can carry e-mail addresses or tokens)."""

    model_config = ConfigDict(extra="ignore")

    traffic_source: TrafficSource | None = None
    device: Device | None = None
    referrer: str | None = Field(default=None, max_length=2000)

    @field_validator("referrer")
    @classmethod
    def _host_only(cls, value: str | None) -> str | None:
        return referrer_host(value)

    @field_validator("device", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) and value.strip() else None

    @field_validator("traffic_source", mode="before")
    @classmethod
    def _known_source(cls, value: Any) -> Any:
        # Same mapping as searches (segments.SOURCE_ALIASES): `instagram` is social; a name we
        # do not know is `referral` (the shopper came from somewhere), never an error or `direct`.
        if not isinstance(value, str) or not value.strip():
            return None
        return normalize_source(value) or TrafficSource.referral


class Event(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: EventType
    visitor_id: str = Field(min_length=1, max_length=200)
    # Optional, unique per visitor: a batch sent again (after a timeout or a 503) with the same
    # event ids is not counted twice.
    event_id: str | None = Field(default=None, min_length=1, max_length=100)
    session_id: str | None = Field(default=None, max_length=200)
    product_id: str | None = Field(default=None, max_length=200)
    variant_sku: str | None = Field(default=None, max_length=200)
    search_id: str | None = Field(default=None, max_length=100)
    position: int | None = Field(default=None, ge=0, le=10_000)
    query: str | None = Field(default=None, max_length=1000)
    # Unix seconds; when absent, the time the event arrived.
    ts: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    context: EventContext | None = None
    # Order value of a purchase (revenue per search in the reports).
    value: float | None = Field(default=None, ge=0, le=MAX_ORDER_VALUE, allow_inf_nan=False)

    @field_validator("product_id", "variant_sku", "session_id", "search_id", mode="before")
    @classmethod
    def _text(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        if isinstance(value, str):
            return value.strip() or None
        return value

    @field_validator("ts", mode="before")
    @classmethod
    def _timestamp(cls, value: Any) -> Any:
        # Milliseconds (JavaScript's Date.now()) and ISO 8601 strings are accepted too.
        if isinstance(value, str):
            from datetime import datetime

            try:
                return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
            except ValueError:
                raise ValueError("ts must be Unix seconds, milliseconds or an ISO 8601 time") from None
        if isinstance(value, int | float) and value > 1e11:
            return value / 1000.0
        return value

    @model_validator(mode="after")
    def _needs_what_it_is_about(self) -> Event:
        if self.type != EventType.search and not self.product_id:
            raise ValueError(f"a {self.type.value} event needs product_id")
        if self.type == EventType.search and not (self.query or self.search_id):
            raise ValueError("a search event needs query or search_id")
        if self.ts is not None and self.ts > time.time() + MAX_CLOCK_SKEW_SECONDS:
            raise ValueError("ts is in the future: send Unix seconds (or milliseconds) of when it happened")
        return self


class Rejected(BaseModel):
    index: int
    reason: str


def from_ubi(raw: dict[str, Any]) -> dict[str, Any]:
    """An OpenSearch UBI event as one of ours (client_id is the visitor, query_id the search)."""
    attributes = raw.get("event_attributes") or {}
    obj = attributes.get("object") or {}
    position = attributes.get("position") or {}
    action = str(raw.get("action_name", "")).strip().lower()
    if action not in UBI_ACTIONS:
        raise ValueError(f"UBI action_name '{action}' is not one of {sorted(UBI_ACTIONS)}")
    event: dict[str, Any] = {
        "type": UBI_ACTIONS[action].value,
        "visitor_id": raw.get("client_id") or raw.get("user_id"),
        "session_id": raw.get("session_id") or attributes.get("session_id"),
        "product_id": obj.get("object_id"),
        "search_id": raw.get("query_id"),
        "position": position.get("ordinal"),
        "ts": raw.get("timestamp"),
    }
    if UBI_ACTIONS[action] == EventType.search:
        event["query"] = raw.get("message") or raw.get("user_query")
    return {k: v for k, v in event.items() if v is not None}


def parse_batch(raw_events: list[Any]) -> tuple[list[Event], list[Rejected]]:
    accepted: list[Event] = []
    rejected: list[Rejected] = []
    for index, raw in enumerate(raw_events):
        if not isinstance(raw, dict):
            rejected.append(Rejected(index=index, reason="an event is a JSON object"))
            continue
        try:
            data = from_ubi(raw) if "action_name" in raw else raw
            accepted.append(Event.model_validate(data))
        except ValidationError as error:
            rejected.append(Rejected(index=index, reason=_reason(error)))
        except ValueError as error:
            rejected.append(Rejected(index=index, reason=str(error)))
    return accepted, rejected


def _reason(error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        where = ".".join(str(p) for p in item["loc"])
        message = item["msg"].removeprefix("Value error, ")
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts)
