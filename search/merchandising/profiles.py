"""Ranking profiles: the blend of relevance with behaviour and business signals.

A profile gives each signal a weight. Every signal is a number in [0, 1] per product:
  - ctr: click-through rate learned from the search log and events, corrected for position
    bias and smoothed (see `Popularity`), relative to the best candidate's;
  - conversion: purchases per click, smoothed the same way, relative to the best candidate's;
  - margin: the catalog's `margin`, relative to the highest among the candidates;
  - rating: the Bayesian average rating (a 5.0 from 2 reviews counts less than 4.8 from 500) / 5;
  - reviews: log(1 + review_count), relative to the most reviewed candidate;
  - recency: 2^(-age / recency_half_life_days);
  - stock: 1 in stock, 0 sold out.
The merchandise stage adds, to each product matching the query on its own terms,
weight x signal x the best candidate's relevance score. So while the weights add up to less
than `relevance` (1), a product can only overtake a more relevant one when their relevance
was within that sum of each other: relevance stays dominant. A profile may say otherwise
(`relevance_dominant: false`) and then weights up to 10 are accepted.
`personalization` replaces the personalize stage's impact for searches under the profile.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

SIGNALS = ("ctr", "conversion", "margin", "rating", "reviews", "recency", "stock")
DEFAULT_PROFILE = "default"


class ProfileBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str = Field(default="", max_length=500)
    ctr: float = Field(default=0.0, ge=0, le=10)
    conversion: float = Field(default=0.0, ge=0, le=10)
    margin: float = Field(default=0.0, ge=0, le=10)
    rating: float = Field(default=0.0, ge=0, le=10)
    reviews: float = Field(default=0.0, ge=0, le=10)
    recency: float = Field(default=0.0, ge=0, le=10)
    stock: float = Field(default=0.0, ge=0, le=10)
    # None: keep the service's personalization.impact; 0 turns personalization off.
    personalization: float | None = Field(default=None, ge=0, le=10)
    recency_half_life_days: float = Field(default=30.0, gt=0, le=3650)
    relevance_dominant: bool = True

    def weights(self) -> dict[str, float]:
        return {name: getattr(self, name) for name in SIGNALS}

    @model_validator(mode="after")
    def _relevance_dominant(self) -> ProfileBody:
        total = sum(self.weights().values()) + (self.personalization or 0.0)
        if self.relevance_dominant and total >= 1.0:
            raise ValueError(
                f"signal weights add up to {total:g}: keep them below 1 so relevance stays dominant, "
                "or set relevance_dominant to false"
            )
        return self

    def is_neutral(self) -> bool:
        return not any(self.weights().values())


class Profile(ProfileBody):
    name: str
    version: int
    updated_at: float
    updated_by: str


# ---- popularity learned from events ---------------------------------------------------------


def examination(position: int, eta: float = 1.0) -> float:
    """Probability a shopper looks at a result at `position` (0-based): (1 / (position + 1))^eta,
    the position-based click model of Joachims et al. (2017) "Unbiased Learning-to-Rank with
    Biased Feedback". Dividing clicks by the summed examination of a product's impressions
    gives a click-through rate no longer inflated by sitting at the top."""
    return (1.0 / (position + 1.0)) ** eta


@dataclass
class ProductStats:
    examined: float = 0.0  # sum of examination probabilities over its impressions
    impressions: int = 0
    clicks: int = 0
    purchases: int = 0


@dataclass
class Popularity:
    """Per-product click-through and conversion, position-corrected and smoothed.

    Both are posterior means under a beta prior centred on the shop's average, worth
    `prior_strength` observations: (successes + m * k) / (trials + k). A product seen a few times
    stays near the average; one seen thousands of times keeps its own rate.
    """

    stats: dict[str, ProductStats] = field(default_factory=dict)
    mean_ctr: float = 0.0
    mean_conversion: float = 0.0
    prior_strength: float = 20.0

    def ctr(self, product_id: str) -> float:
        s = self.stats.get(product_id)
        k, m = self.prior_strength, self.mean_ctr
        if s is None:
            return m
        return min((s.clicks + m * k) / (s.examined + k), 1.0)

    def conversion(self, product_id: str) -> float:
        s = self.stats.get(product_id)
        k, m = self.prior_strength, self.mean_conversion
        if s is None:
            return m
        return (s.purchases + m * k) / (s.clicks + k)

    def __len__(self) -> int:
        return len(self.stats)


def learn_popularity(
    impressions: Iterable[tuple[str, Sequence[str], int]],
    events: Iterable[Any],
    eta: float = 1.0,
    prior_strength: float = 20.0,
) -> Popularity:
    """From impressions (search id, product ids shown, offset of the first) and events (with
    type, product_id, search_id): examination-weighted exposures, clicks and purchases."""
    stats: dict[str, ProductStats] = defaultdict(ProductStats)
    shown: dict[str, set[str]] = {}
    for search_id, product_ids, offset in impressions:
        shown[search_id] = set(product_ids)
        for i, product_id in enumerate(product_ids):
            s = stats[product_id]
            s.examined += examination(offset + i, eta)
            s.impressions += 1
    for event in events:
        if not event.product_id or event.type not in ("click", "purchase"):
            continue
        # Clicks count only against searches that showed the product (the denominator);
        # purchases count wherever they came from (conversion is per click, not per impression).
        if event.type == "click":
            if event.search_id in shown and event.product_id in shown[event.search_id]:
                stats[event.product_id].clicks += 1
        else:
            stats[event.product_id].purchases += 1
    examined = sum(s.examined for s in stats.values())
    clicks = sum(s.clicks for s in stats.values())
    purchases = sum(s.purchases for s in stats.values())
    return Popularity(
        dict(stats),
        mean_ctr=min(clicks / examined, 1.0) if examined else 0.0,
        mean_conversion=min(purchases / clicks, 1.0) if clicks else 0.0,
        prior_strength=prior_strength,
    )


# ---- signals for candidates ------------------------------------------------------------------


def _relative(values: np.ndarray) -> np.ndarray:
    values = np.nan_to_num(values, nan=0.0)
    top = values.max() if len(values) else 0.0
    return values / top if top > 0 else np.zeros(len(values))


def signals(
    products: Sequence[Any], in_stock: np.ndarray, popularity: Popularity, profile: ProfileBody, now: float
) -> dict[str, np.ndarray]:
    """Each signal in [0, 1] for the given products (catalog objects, None for deleted ones)."""
    n = len(products)
    out: dict[str, np.ndarray] = {}
    weights = profile.weights()
    ids = [p.id if p is not None else "" for p in products]
    if weights["ctr"]:
        out["ctr"] = _relative(np.array([popularity.ctr(i) for i in ids], dtype=float))
    if weights["conversion"]:
        out["conversion"] = _relative(np.array([popularity.conversion(i) for i in ids], dtype=float))
    if weights["margin"]:
        out["margin"] = np.clip(_relative(np.array([(p.margin or 0.0) if p else 0.0 for p in products], float)), 0, 1)
    if weights["rating"]:
        # Bayesian average towards 3.5 stars worth 10 reviews.
        out["rating"] = np.array([
            ((p.rating or 0.0) * (p.review_count or 0) + 3.5 * 10) / ((p.review_count or 0) + 10) / 5.0
            if p is not None and p.rating is not None else 3.5 / 5.0  # unrated: the prior
            for p in products
        ], dtype=float)
    if weights["reviews"]:
        out["reviews"] = _relative(np.array([math.log1p(p.review_count or 0) if p else 0.0 for p in products], float))
    if weights["recency"]:
        half_life = profile.recency_half_life_days * 86400.0
        ages = np.array([
            max(now - p.created_at.timestamp(), 0.0) if p is not None and p.created_at else np.inf for p in products
        ], dtype=float)
        out["recency"] = np.where(np.isinf(ages), 0.0, np.exp2(-ages / half_life))
    if weights["stock"]:
        out["stock"] = in_stock.astype(float)
    assert all(len(v) == n for v in out.values())
    return out
