"""The engine's request and result types: the contract between the library and the HTTP layer."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

MAX_QUERY_CHARS = 1000
MAX_LIMIT = 100
# Paging reaches every matching product up to offset MAX_OFFSET (search.exact.MAX_WINDOW).
MAX_OFFSET = 10_000


class Sort(StrEnum):
    relevance = "relevance"
    price_asc = "price_asc"
    price_desc = "price_desc"
    newest = "newest"


class Mode(StrEnum):
    """Which retrievers run. `hybrid` is the product; the others exist for measurement."""

    hybrid = "hybrid"
    bm25 = "bm25"
    vector = "vector"


class Filters(BaseModel):
    """Hard constraints: a product either passes every one or is not in the results.

    Several values of one field are alternatives (brand=A or brand=B); fields combine with AND.
    A `size` filter matches only products with that size in stock.
    """

    model_config = ConfigDict(extra="forbid")

    brand: list[str] = Field(default_factory=list)
    category: list[str] = Field(default_factory=list)
    colour: list[str] = Field(default_factory=list)
    size: list[str] = Field(default_factory=list)
    price_min: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    price_max: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    in_stock: bool | None = None

    @model_validator(mode="after")
    def _price_range_is_ordered(self) -> Filters:
        if self.price_min is not None and self.price_max is not None and self.price_min > self.price_max:
            raise ValueError("price_min must not be greater than price_max")
        return self

    @field_validator("brand", "category", "colour", "size", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        if value is None:
            return []
        if isinstance(value, str):
            return [value]
        return value

    def is_empty(self) -> bool:
        return not (
            self.brand or self.category or self.colour or self.size
            or self.price_min is not None or self.price_max is not None or self.in_stock is not None
        )


class VisitContext(BaseModel):
    """Where the shopper came from, for segments. The User-Agent only serves to tell the
    device class; it is never stored."""

    model_config = ConfigDict(extra="forbid")

    traffic_source: str | None = Field(default=None, max_length=50)
    device: str | None = Field(default=None, max_length=50)
    referrer: str | None = Field(default=None, max_length=2000)
    utm_medium: str | None = Field(default=None, max_length=100)
    user_agent: str | None = Field(default=None, max_length=1000)


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    q: str = Field(default="", max_length=MAX_QUERY_CHARS)
    visitor_id: str | None = Field(default=None, max_length=200)
    session_id: str | None = Field(default=None, max_length=200)
    filters: Filters = Field(default_factory=Filters)
    sort: Sort = Sort.relevance
    limit: int = Field(default=20, ge=0, le=MAX_LIMIT)
    offset: int = Field(default=0, ge=0, le=MAX_OFFSET)
    explain: bool = False
    mode: Mode = Mode.hybrid
    # Search-as-you-type: the last word may be incomplete ("red dre"). None = infer from the
    # query (a trailing space means the last word is complete).
    prefix: bool | None = None
    # False: the visitor opted out; results are not personalized (stock still counts).
    personalize: bool = True
    # False: take the words literally (no price bound, facet values or filler read from them).
    understand: bool = True
    context: VisitContext = Field(default_factory=VisitContext)


def _is_none(value: Any) -> bool:
    return value is None


class StageExplain(BaseModel):
    """One stage's part in a hit's score; `contribution`s of all stages add up to the score."""

    contribution: float
    details: dict[str, Any] = Field(default_factory=dict)


class Hit(BaseModel):
    id: str
    title: str
    brand: str | None = None
    price: float | None = None
    url: str | None = None
    image: str | None = None
    in_stock: bool
    available_sizes: list[str]
    score: float
    # Left out of the JSON unless asked for. `exclude_if` is decided by pydantic-core field by
    # field: a wrap `model_serializer` would call back into Python for every hit, and would
    # leave the response schema (OpenAPI) a bare object.
    explain: dict[str, StageExplain] | None = Field(default=None, exclude_if=_is_none)


class Recognised(BaseModel):
    kind: str  # "price" | "cheap" | "filler" | a facet ("colour", "category", "size", ...)
    text: str  # what the shopper typed
    value: str | None = None


class Understood(BaseModel):
    """How the query was read (search/understanding.py); `understand=false` turns it off."""

    text: str  # the words matched after price, filler and sizes were taken out
    price_min: float | None = None  # a stated bound: applied as a filter
    price_max: float | None = None
    prefer_cheap: bool = False  # "cheap": lower prices rank first among relevant products
    facets: dict[str, list[str]] = Field(default_factory=dict)  # rank products with them first
    recognised: list[Recognised] = Field(default_factory=list)
    disable: str = "understand=false"


class SearchResult(BaseModel):
    search_id: str
    query: str
    corrected_query: str | None = None
    # True when no product matched every word and the engine widened the match.
    relaxed: bool = False
    total: int
    hits: list[Hit]
    facets: dict[str, dict[str, int]]
    took_ms: float
    # Filled with explain=true: how the query was understood and which stages ran.
    debug: dict[str, Any] | None = Field(default=None, exclude_if=_is_none)
    # Approved synonyms that expanded this query (see synonyms/).
    applied_synonyms: list[str] = Field(default_factory=list)
    # What the query was read as (price bound, facet values, filler); None with understand=false.
    understood: Understood | None = None
    # For the search log, not the response: segment, experiment variant, personalization.
    segment: str | None = Field(default=None, exclude=True)
    # The A/B test this search was answered in, and the visitor's variant (see search/experiments.py).
    experiment: str | None = Field(default=None, exclude_if=_is_none)
    variant: str | None = Field(default=None, exclude_if=_is_none)
    # For the search log: products matching the words before filters; merchandising rules fired.
    matched: int | None = Field(default=None, exclude=True)
    rules: list[str] = Field(default_factory=list, exclude=True)
    personalized: bool = Field(default=False, exclude=True)


class Suggestion(BaseModel):
    text: str
    kind: str  # "query" | "brand" | "category" | "product"
    id: str | None = None
