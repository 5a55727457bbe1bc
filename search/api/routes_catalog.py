"""Admin routes: catalog updates that reach search within a second, without a restart.

Each batch is validated whole before anything is written: one bad item rejects the batch
with a 422 that names the item and the field, and nothing already stored changes.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Path, Response, status
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from indexer.catalog import MAX_PRICE, MAX_STOCK, Product
from search.api.deps import AdminDep, ServiceDep

router = APIRouter(prefix="/catalog", tags=["catalog admin"], dependencies=[AdminDep])

MAX_BATCH = 10_000


class StockUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sku: str = Field(min_length=1, max_length=200)
    stock: int = Field(ge=0, le=MAX_STOCK)

    @field_validator("stock", mode="before")
    @classmethod
    def _a_number(cls, value: object) -> object:
        # `"stock": false` or `"stock": "3"` is a client bug worth hearing about; 3.0 is a number.
        if isinstance(value, bool | str):
            raise ValueError("stock is a whole number of items")
        return value


class PriceUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sku: str | None = Field(default=None, min_length=1, max_length=200)
    id: str | None = Field(default=None, min_length=1, max_length=200)
    price: float = Field(ge=0, le=MAX_PRICE, allow_inf_nan=False)

    @model_validator(mode="after")
    def _one_key(self) -> PriceUpdate:
        if (self.sku is None) == (self.id is None):
            raise ValueError("give either 'sku' (variant price) or 'id' (product price)")
        return self


def _products(payload: Any) -> list[Product]:
    items = payload.get("products") if isinstance(payload, dict) else payload
    if not isinstance(items, list):
        raise HTTPException(422, "expected a list of products or {\"products\": [...]}")
    if len(items) > MAX_BATCH:
        raise HTTPException(status.HTTP_413_REQUEST_ENTITY_TOO_LARGE, f"at most {MAX_BATCH} products per request")
    products, errors = [], []
    for index, item in enumerate(items):
        try:
            products.append(Product.model_validate(item))
        except ValidationError as exc:
            for error in exc.errors():
                errors.append({"loc": ["body", index, *error["loc"]], "msg": error["msg"], "type": error["type"]})
    if errors:
        raise HTTPException(422, errors)
    ids = [p.id for p in products]
    if len(set(ids)) != len(ids):
        raise HTTPException(422, "a product id appears twice in the batch")
    return products


@router.put("/products")
def upsert_products(service: ServiceDep, payload: Any = Body(..., description="Products in catalog format v1")) -> dict[str, int]:
    """Add or replace products. Only products whose text changed are re-embedded."""
    summary = service.catalog.upsert(_products(payload))
    service.refresh()
    return {"added": summary.added, "updated": summary.updated, "embedded": summary.embedded}


Batch = Body(max_length=MAX_BATCH, description=f"At most {MAX_BATCH} items per request")


@router.patch("/stock")
def update_stock(service: ServiceDep, updates: Annotated[list[StockUpdate], Batch]) -> dict[str, Any]:
    """Set stock per variant SKU."""
    summary = service.catalog.set_stock([(u.sku, u.stock) for u in updates])
    service.refresh()
    return {"updated": summary.updated, "unknown_skus": summary.unknown}


@router.patch("/prices")
def update_prices(service: ServiceDep, updates: Annotated[list[PriceUpdate], Batch]) -> dict[str, Any]:
    """Set prices per variant SKU or per product id."""
    by_sku = [(u.sku, u.price) for u in updates if u.sku]
    by_id = [(u.id, u.price) for u in updates if u.id]
    unknown: list[str] = []
    updated = 0
    for items, key in ((by_sku, "sku"), (by_id, "id")):
        if items:
            summary = service.catalog.set_prices(items, by=key)
            updated += summary.updated
            unknown += summary.unknown
    service.refresh()
    return {"updated": updated, "unknown": unknown}


@router.delete("/products/{product_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_product(service: ServiceDep, product_id: Annotated[str, Path(max_length=200)]) -> Response:
    missing = service.catalog.delete([product_id])
    if missing:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"product {product_id!r} not found")
    service.refresh()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
