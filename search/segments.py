"""Segments of a search: traffic source, new vs returning visitor, device.

Computed from what the storefront sends (explicit values win), else inferred from the
campaign tag, the referrer's host and the User-Agent. Nothing here is stored beyond the
segment labels themselves.
"""

from __future__ import annotations

import re

from pydantic import BaseModel

from search.behaviour import Device, TrafficSource, normalize_source

_PAID_MEDIUMS = {"cpc", "ppc", "paid", "paidsearch", "paid_search", "display", "cpm", "shopping", "paid_social"}
_SEARCH_ENGINES = ("google.", "bing.", "duckduckgo.", "yahoo.", "ecosia.", "baidu.", "yandex.", "qwant.", "startpage.")
_SOCIAL = (
    "facebook.", "instagram.", "t.co", "twitter.", "x.com", "pinterest.", "tiktok.", "linkedin.", "reddit.",
    "youtube.", "snapchat.", "threads.net",
)
_WEBMAIL = ("mail.google.", "outlook.", "mail.yahoo.", "mail.", "webmail.")
_TABLET = re.compile(r"ipad|tablet|kindle|silk|playbook|(android(?!.*mobile))", re.I)
_MOBILE = re.compile(r"mobi|iphone|ipod|android|windows phone|blackberry|opera mini", re.I)


class Segment(BaseModel):
    traffic_source: TrafficSource
    visitor: str  # "new" | "returning"
    device: Device

    def key(self) -> str:
        return f"{self.traffic_source.value}/{self.visitor}/{self.device.value}"


def traffic_source(explicit: str | None, utm_medium: str | None, referrer_host: str | None) -> TrafficSource:
    """Explicit name (ours or a known alias), else the campaign medium, else the referrer's host.

    An explicit name we do not know still says the shopper came from somewhere: it is
    `referral` when nothing else tells us more, never `direct`.
    """
    unknown_explicit = False
    if explicit and explicit.strip():
        known = normalize_source(explicit)
        if known is not None:
            return known
        unknown_explicit = True
    medium = (utm_medium or "").strip().lower()
    if medium in _PAID_MEDIUMS:
        return TrafficSource.paid
    if medium in ("email", "e-mail", "newsletter"):
        return TrafficSource.email
    if medium in ("social", "social-network", "sm"):
        return TrafficSource.social
    host = (referrer_host or "").lower()
    if not host:
        return TrafficSource.referral if unknown_explicit else TrafficSource.direct
    if host.startswith(_WEBMAIL):
        return TrafficSource.email
    if any(engine in host for engine in _SEARCH_ENGINES):
        return TrafficSource.organic
    if any(host == s.rstrip(".") or s in host for s in _SOCIAL):
        return TrafficSource.social
    return TrafficSource.referral


def device(explicit: str | None, user_agent: str | None) -> Device:
    if explicit:
        try:
            return Device(explicit.strip().lower())
        except ValueError:
            pass
    ua = user_agent or ""
    if _TABLET.search(ua):
        return Device.tablet
    if _MOBILE.search(ua):
        return Device.mobile
    return Device.desktop


def segment_of(
    *,
    returning: bool,
    explicit_source: str | None = None,
    utm_medium: str | None = None,
    referrer_host: str | None = None,
    explicit_device: str | None = None,
    user_agent: str | None = None,
) -> Segment:
    return Segment(
        traffic_source=traffic_source(explicit_source, utm_medium, referrer_host),
        visitor="returning" if returning else "new",
        device=device(explicit_device, user_agent),
    )
