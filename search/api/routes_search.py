"""Shopper-facing routes: search, suggestions, product pages."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field

from indexer.catalog import MAX_PRICE
from search import metrics
from search.api.deps import ServiceDep
from search.models import (
    MAX_LIMIT,
    MAX_QUERY_CHARS,
    Filters,
    Mode,
    SearchRequest,
    SearchResult,
    Sort,
    Suggestion,
    VisitContext,
)
from search.service import SearchService

router = APIRouter()


class SearchBody(BaseModel):
    """POST /search: the GET parameters as JSON. Filters may also be nested under `filters`."""

    model_config = ConfigDict(extra="forbid")

    q: str = Field(default="", max_length=MAX_QUERY_CHARS)
    visitor_id: str | None = None
    session_id: str | None = None
    brand: list[str] | str | None = None
    category: list[str] | str | None = None
    colour: list[str] | str | None = None
    size: list[str] | str | None = None
    price_min: float | None = Field(default=None, ge=0, le=MAX_PRICE, allow_inf_nan=False)
    price_max: float | None = Field(default=None, ge=0, le=MAX_PRICE, allow_inf_nan=False)
    in_stock: bool | None = None
    filters: Filters | None = None
    sort: Sort = Sort.relevance
    limit: int = Field(default=20, ge=0, le=MAX_LIMIT)
    offset: int = Field(default=0, ge=0, le=10_000)
    explain: bool = False
    mode: Mode = Mode.hybrid
    prefix: bool | None = None
    personalize: bool = True
    understand: bool = True
    context: VisitContext | None = None


OPT_OUT_VALUES = {"off", "0", "false", "no"}
_PERSONALIZE_HELP = "'off' opts this request out of personalization"
# The search routes read their two headers (User-Agent, X-Personalize) and the service from
# the request instead of declaring them as parameters and a dependency: FastAPI resolves each
# declared parameter and dependency per request with a walk over its type annotations (about a
# third of a cached search's time outside the engine in a profile of the served app). The
# header is documented here as FastAPI would have documented it.
_HEADER_DOCS: dict[str, Any] = {"parameters": [{
    "name": "x-personalize", "in": "header", "required": False, "description": _PERSONALIZE_HELP,
    "schema": {"anyOf": [{"type": "string"}, {"type": "null"}], "description": _PERSONALIZE_HELP, "title": "X-Personalize"},
}]}


def _personalize(http: Request, asked: bool) -> bool:
    """The request's `personalize`, unless its X-Personalize header opts out."""
    return asked and (http.headers.get("x-personalize") or "").strip().lower() not in OPT_OUT_VALUES


def _service(http: Request) -> SearchService:
    return http.app.state.service


def _request(fields: dict[str, Any]) -> SearchRequest:
    filter_names = set(Filters.model_fields)
    nested = fields.pop("filters", None)
    flat = {k: fields.pop(k) for k in list(fields) if k in filter_names}
    data = dict(nested) if isinstance(nested, dict) else {}
    data.update({k: v for k, v in flat.items() if v is not None and v != []})
    try:
        filters = Filters.model_validate(data)
    except ValueError as exc:
        raise HTTPException(422, _filter_errors(exc)) from exc
    return SearchRequest(filters=filters, **fields)


def _answered(http: Request, result: SearchResult) -> Response:
    """Count the search, and hand its id to the request's log line (search.api.app.RequestLog).

    The body is serialised once, by pydantic-core, from the result the engine built. Returned
    as a model, FastAPI would dump it to a dict, validate that dict against `SearchResult`
    again and encode it with json.dumps: 3x the time for a page of 20 hits (4.9 vs 1.4 ms on a
    loaded 2-core machine), for a result that is already a valid `SearchResult`, giving the
    same JSON (`response_model` still documents the schema).
    """
    metrics.searched(result.total)
    http.state.search_id = result.search_id
    return Response(content=result.model_dump_json(), media_type="application/json")


def _filter_errors(exc: Exception) -> list[dict[str, Any]]:
    errors = getattr(exc, "errors", None)
    if not callable(errors):
        return [{"loc": ["query"], "msg": str(exc), "type": "value_error"}]
    out = []
    for error in errors():
        loc = list(error.get("loc", ())) or ["price_min"]
        out.append({"loc": ["query", *loc], "msg": error["msg"], "type": error["type"]})
    return out


@router.get("/search", response_model=SearchResult, tags=["search"], openapi_extra=_HEADER_DOCS)
def search_get(
    http: Request,
    q: Annotated[str, Query(max_length=MAX_QUERY_CHARS, description="What the shopper typed")] = "",
    visitor_id: Annotated[str | None, Query(max_length=200)] = None,
    session_id: Annotated[str | None, Query(max_length=200)] = None,
    brand: Annotated[list[str] | None, Query(description="Repeatable: brand=A&brand=B")] = None,
    category: Annotated[list[str] | None, Query()] = None,
    colour: Annotated[list[str] | None, Query()] = None,
    size: Annotated[list[str] | None, Query(description="Only products with this size in stock")] = None,
    price_min: Annotated[float | None, Query(ge=0, le=MAX_PRICE, allow_inf_nan=False)] = None,
    price_max: Annotated[float | None, Query(ge=0, le=MAX_PRICE, allow_inf_nan=False)] = None,
    in_stock: bool | None = None,
    sort: Sort = Sort.relevance,
    limit: Annotated[int, Query(ge=0, le=MAX_LIMIT)] = 20,
    offset: Annotated[int, Query(ge=0, le=10_000)] = 0,
    explain: bool = False,
    mode: Mode = Mode.hybrid,
    prefix: Annotated[bool | None, Query(description="Complete the last word (default: unless q ends with a space)")] = None,
    personalize: Annotated[bool, Query(description="false: the shopper opted out of personalization")] = True,
    understand: Annotated[bool, Query(description="false: take the words literally (no price, facets or filler read from them)")] = True,
    traffic_source: Annotated[str | None, Query(max_length=50, description="paid, email, organic, social, direct")] = None,
    device: Annotated[str | None, Query(max_length=50, description="mobile, tablet, desktop (default: from User-Agent)")] = None,
    referrer: Annotated[str | None, Query(max_length=2000, description="The page that sent the shopper to the shop")] = None,
    utm_medium: Annotated[str | None, Query(max_length=100)] = None,
) -> Response:
    """Hybrid product search with filters, facets, sorting and per-stage score explanations."""
    fields = dict(
        q=q, visitor_id=visitor_id, session_id=session_id, brand=brand, category=category,
        colour=colour, size=size, price_min=price_min, price_max=price_max, in_stock=in_stock,
        sort=sort, limit=limit, offset=offset, explain=explain, mode=mode, prefix=prefix,
        personalize=_personalize(http, personalize),
        understand=understand,
        context=VisitContext(
            traffic_source=traffic_source, device=device, referrer=referrer, utm_medium=utm_medium,
            user_agent=http.headers.get("user-agent"),
        ),
    )
    return _answered(http, _service(http).search(_request(fields)))


@router.post("/search", response_model=SearchResult, tags=["search"], openapi_extra=_HEADER_DOCS)
def search_post(http: Request, body: SearchBody) -> Response:
    """The same search with its fields as a JSON body."""
    fields = body.model_dump()
    context = VisitContext.model_validate(fields.pop("context") or {})
    if context.user_agent is None:
        context.user_agent = http.headers.get("user-agent")
    fields["context"] = context
    fields["personalize"] = _personalize(http, fields["personalize"])
    return _answered(http, _service(http).search(_request(fields)))


class SuggestResponse(BaseModel):
    query: str
    suggestions: list[Suggestion]


@router.get("/suggest", response_model=SuggestResponse, response_model_exclude_none=True, tags=["search"])
def suggest(
    service: ServiceDep,
    q: Annotated[str, Query(max_length=200)] = "",
    limit: Annotated[int, Query(ge=1, le=20)] = 8,
) -> SuggestResponse:
    """Search-bar completions: brands, categories, completed words and product titles."""
    return SuggestResponse(query=q, suggestions=service.suggest(q, limit))


@router.get("/products/{product_id}", tags=["catalog"])
def get_product(service: ServiceDep, product_id: Annotated[str, Path(max_length=200)]) -> dict[str, Any]:
    """One product in catalog format v1, with its current stock state."""
    product = service.get_product(product_id)
    if product is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"product {product_id!r} not found")
    data = product.model_dump(mode="json", exclude_none=True)
    data["in_stock"] = product.in_stock
    data["available_sizes"] = product.available_sizes
    return data
