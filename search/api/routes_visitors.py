"""Behaviour routes: events in, recently viewed and similar products out, erasure (admin)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Path, Query, status
from pydantic import BaseModel, Field

from search import metrics
from search.api.deps import AdminDep, ServiceDep
from search.api.problems import problem_response
from search.behaviour import MAX_BATCH, Rejected
from search.errors import NotFound
from search.models import Hit

router = APIRouter()

VisitorId = Annotated[str, Path(min_length=1, max_length=200)]


class EventsAccepted(BaseModel):
    accepted: int
    rejected: list[Rejected]
    # Kept, but about products the index does not know: check the ids the storefront sends.
    unknown_products: list[str]
    # Events already stored with the same visitor_id and event_id (a retried batch).
    duplicates: int = 0


class Products(BaseModel):
    products: list[Hit]


class EventBatch(BaseModel):
    """The envelope: a list of events, each validated on its own (so a bad one is named by its
    index in `rejected` instead of failing the batch)."""

    events: list[Any] = Field(description="events in Vitrine's shape or OpenSearch UBI's")


@router.post(
    "/events",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=EventsAccepted,
    tags=["behaviour"],
    responses={422: {"description": "The batch is not a list, is too long, or holds no valid event"}},
)
def post_events(
    service: ServiceDep,
    body: Annotated[
        EventBatch,
        Body(
            examples=[{"events": [{"type": "click", "visitor_id": "v1", "product_id": "P1", "search_id": "abc", "position": 0}]}]
        ),
    ],
) -> Any:
    """Behaviour events, in Vitrine's shape or OpenSearch UBI's (detected by `action_name`).

    Each event is validated on its own: invalid ones come back in `rejected` with their index
    and reason, the valid ones are kept.
    """
    events = body.events
    if len(events) > MAX_BATCH:
        raise HTTPException(413, f"at most {MAX_BATCH} events per request, got {len(events)}: split the batch")
    result = service.visitors.ingest(events)
    metrics.events_ingested(result.accepted, len(result.rejected))
    payload = EventsAccepted(
        accepted=result.accepted, rejected=result.rejected, unknown_products=result.unknown_products, duplicates=result.duplicates
    )
    if events and result.accepted == 0 and result.duplicates == 0:
        reasons = "; ".join(f"#{r.index}: {r.reason}" for r in result.rejected[:5])
        return problem_response(422, f"no valid event in the batch ({reasons})", "/events", extra=payload.model_dump())
    return payload


@router.get("/visitors/{visitor_id}/recent", response_model=Products, tags=["behaviour"])
def recently_viewed(service: ServiceDep, visitor_id: VisitorId, limit: Annotated[int, Query(ge=1, le=100)] = 20) -> Products:
    """Products the visitor viewed, most recent first (deleted products left out)."""
    return Products(products=service.recently_viewed(visitor_id, limit))


@router.get("/products/{product_id}/similar", response_model=Products, tags=["behaviour"])
def similar(
    service: ServiceDep,
    product_id: Annotated[str, Path(max_length=200)],
    visitor_id: Annotated[str | None, Query(max_length=200)] = None,
    size: Annotated[list[str] | None, Query(description="Only products available in this size")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 12,
) -> Products:
    """Closest products in meaning, in stock, available in the visitor's size: the
    "alternatives when your size is sold out" block."""
    try:
        return Products(products=service.similar(product_id, visitor_id, size, limit))
    except NotFound as error:
        raise HTTPException(status.HTTP_404_NOT_FOUND, error.message) from None


@router.delete("/visitors/{visitor_id}", tags=["behaviour"], dependencies=[AdminDep])
def erase_visitor(service: ServiceDep, visitor_id: VisitorId) -> dict[str, Any]:
    """Right to erasure: the visitor's profile, every event they sent and their searches are deleted."""
    erased = service.erase_visitor(visitor_id)
    return {"visitor_id": visitor_id, "erased": erased}
