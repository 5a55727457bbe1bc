"""Merchandising rules: when (conditions) and what (actions).

A rule fires for a request when every condition it sets holds: the query (equals or contains,
after normalization), a category (the shopper filtered it, or the query names it), a segment
(traffic source, new/returning visitor, device) and a date range. Its actions then change the
result: pin a product at a position, boost or bury by an attribute value or a numeric field,
hide a product, add a filter, or switch the ranking profile.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from indexer.normalize import normalize
from search.models import Filters, SearchRequest
from search.segments import Segment

# Fields a boost/bury can name: attribute-like fields match a value, numeric ones scale.
ATTRIBUTE_FIELDS = ("brand", "category", "colour", "size")
NUMERIC_FIELDS = ("price", "margin", "rating", "review_count", "popularity", "created_at")
MAX_POSITION = 1000


class SegmentCondition(BaseModel):
    model_config = ConfigDict(extra="forbid")

    traffic_source: Literal["paid", "email", "organic", "social", "direct", "referral"] | None = None
    visitor: Literal["new", "returning"] | None = None
    device: Literal["mobile", "tablet", "desktop"] | None = None


class Conditions(BaseModel):
    """Every condition set must hold; a rule without conditions fires on every search."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    query: str | None = Field(default=None, max_length=200)
    match: Literal["equals", "contains"] = "contains"
    category: str | None = Field(default=None, max_length=200)
    segment: SegmentCondition | None = None
    from_: datetime | None = Field(default=None, alias="from")
    until: datetime | None = None

    @field_validator("from_", "until")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value

    @model_validator(mode="after")
    def _ordered(self) -> Conditions:
        if self.from_ and self.until and self.from_ >= self.until:
            raise ValueError("`from` must be before `until`")
        if self.query is not None and not normalize(self.query):
            raise ValueError("`query` has no searchable word")
        return self


class Pin(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["pin"]
    product_id: str = Field(min_length=1, max_length=200)
    position: int = Field(ge=1, le=MAX_POSITION, description="1 = first result")


class Boost(BaseModel):
    """Boost (or bury: the same, downwards) products by an attribute value or a numeric field.

    With a `value`: products whose field has it gain `weight` (relative to the best relevance).
    Without: numeric fields scale between the candidates' lowest (0) and highest (weight).
    """

    model_config = ConfigDict(extra="forbid")
    type: Literal["boost", "bury"]
    field: str = Field(min_length=1, max_length=100)
    value: str | None = Field(default=None, max_length=200)
    weight: float = Field(default=0.5, gt=0, le=10)

    @model_validator(mode="after")
    def _known_field(self) -> Boost:
        if self.value is None and self.field not in NUMERIC_FIELDS:
            raise ValueError(
                f"field {self.field!r} needs a `value` (numeric fields without one: {', '.join(NUMERIC_FIELDS)})"
            )
        return self


class Hide(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["hide"]
    product_id: str = Field(min_length=1, max_length=200)


class AddFilter(BaseModel):
    """Add hard filters, in the shape of the search request's `filters` (brand, category, …)."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["filter"]
    filters: Filters


class UseProfile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["profile"]
    name: str = Field(min_length=1, max_length=100)


Action = Annotated[Pin | Boost | Hide | AddFilter | UseProfile, Field(discriminator="type")]


class RuleBody(BaseModel):
    """What a client sends to create or replace a rule."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    conditions: Conditions = Field(default_factory=Conditions)
    actions: list[Action] = Field(min_length=1, max_length=100)
    enabled: bool = True

    @model_validator(mode="after")
    def _consistent(self) -> RuleBody:
        positions = [a.position for a in self.actions if isinstance(a, Pin)]
        if len(positions) != len(set(positions)):
            raise ValueError("two pins at the same position: give each pinned product its own position")
        pinned = {a.product_id for a in self.actions if isinstance(a, Pin)}
        hidden = {a.product_id for a in self.actions if isinstance(a, Hide)}
        if pinned & hidden:
            raise ValueError(f"products both pinned and hidden: {', '.join(sorted(pinned & hidden))}")
        if sum(isinstance(a, UseProfile) for a in self.actions) > 1:
            raise ValueError("at most one `profile` action per rule")
        return self


class Rule(RuleBody):
    id: int
    version: int
    created_at: float
    updated_at: float
    updated_by: str

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


def fires(rule: RuleBody, request: SearchRequest, segment: Segment, now: datetime) -> bool:
    """Whether every condition of the rule holds for this request."""
    if not rule.enabled:
        return False
    c = rule.conditions
    if c.from_ and now < c.from_:
        return False
    if c.until and now >= c.until:
        return False
    text = normalize(request.q)
    if c.query is not None:
        wanted = normalize(c.query)
        if c.match == "equals" and text != wanted:
            return False
        if c.match == "contains" and f" {wanted} " not in f" {text} ":
            return False
    if c.category is not None:
        category = normalize(c.category)
        if category not in {normalize(x) for x in request.filters.category} and text != category:
            return False
    if c.segment is not None:
        for name, value in c.segment.model_dump(exclude_none=True).items():
            actual = segment.visitor if name == "visitor" else getattr(segment, name).value
            if actual != value:
                return False
    return True
