"""Catalog format v1: the product model every importer produces and the indexer consumes.

One product per JSON line (see docs/catalog.md). Only `id` and `title` are required; everything
else is optional so that a shop can start with a thin feed and enrich it later. Validation is
strict about types (a price must be a number) but lenient about shape (a single category string
becomes a one-element path) because real feeds are messy.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

CATALOG_FORMAT_VERSION = 1
# Sane ranges: beyond them a value is a bug in the feed (or an attack), and SQLite integers
# and float32 fast fields could not hold it faithfully anyway.
MAX_STOCK = 1_000_000_000
MAX_PRICE = 1e12

_TAG = re.compile(r"<[^>]+>")
_BLOCK_TAG = re.compile(r"</?(p|br|li|ul|ol|div|h[1-6]|tr|td|table)\b[^>]*>", re.IGNORECASE)
_SCRIPT = re.compile(r"<(script|style)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_SPACES = re.compile(r"\s+")


def strip_html(text: str) -> str:
    """Plain text from an HTML fragment: block tags become spaces, entities are decoded."""
    if "<" not in text and "&" not in text:
        return _SPACES.sub(" ", text).strip()
    text = _SCRIPT.sub(" ", text)
    text = _BLOCK_TAG.sub(" ", text)
    text = _TAG.sub("", text)
    return _SPACES.sub(" ", html.unescape(text)).strip()


class Variant(BaseModel):
    """A purchasable unit of a product (one size/colour combination) with its own stock."""

    model_config = ConfigDict(extra="ignore")

    sku: str = Field(min_length=1)
    size: str | None = None
    colour: str | None = None
    stock: int = Field(default=0, ge=0, le=MAX_STOCK)
    price: float | None = Field(default=None, ge=0, le=MAX_PRICE, allow_inf_nan=False)

    @field_validator("stock", mode="before")
    @classmethod
    def _stock_is_a_count(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError("stock is a count of items, not true/false")
        return value

    @field_validator("sku", "size", "colour", mode="before")
    @classmethod
    def _as_text(cls, value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        if isinstance(value, str):
            value = value.strip()
            return value or None
        return value


class Product(BaseModel):
    """A product of catalog format v1."""

    model_config = ConfigDict(extra="ignore")

    id: str = Field(min_length=1)
    title: str = Field(min_length=1)
    description: str = ""
    brand: str | None = None
    categories: list[str] = Field(default_factory=list)
    attributes: dict[str, str] = Field(default_factory=dict)
    price: float | None = Field(default=None, ge=0, le=MAX_PRICE, allow_inf_nan=False)
    margin: float | None = Field(default=None, allow_inf_nan=False)
    rating: float | None = Field(default=None, ge=0, le=5)
    review_count: int | None = Field(default=None, ge=0, le=2**53)
    popularity: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    url: str | None = None
    image: str | None = None
    created_at: datetime | None = None
    variants: list[Variant] = Field(default_factory=list)

    @field_validator("id", mode="before")
    @classmethod
    def _id_as_text(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        return value.strip() if isinstance(value, str) else value

    @field_validator("title", mode="before")
    @classmethod
    def _clean_title(cls, value: Any) -> Any:
        return strip_html(value) if isinstance(value, str) else value

    @field_validator("description", mode="before")
    @classmethod
    def _clean_description(cls, value: Any) -> Any:
        if value is None:
            return ""
        return strip_html(value) if isinstance(value, str) else value

    @field_validator("brand", "url", "image", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip()
            return value or None
        return value

    @field_validator("categories", mode="before")
    @classmethod
    def _category_path(cls, value: Any) -> Any:
        if value is None:
            return []
        if isinstance(value, str):
            # "Women > Dresses" (Merchant Center product_type style) or a single name.
            return [part.strip() for part in re.split(r"\s*>\s*", value) if part.strip()]
        return value

    @field_validator("attributes", mode="before")
    @classmethod
    def _attribute_values_as_text(cls, value: Any) -> Any:
        if value is None:
            return {}
        if isinstance(value, dict):
            cleaned: dict[str, str] = {}
            for key, item in value.items():
                if item is None or item == "":
                    continue
                if isinstance(item, list):
                    item = ", ".join(str(part) for part in item)
                cleaned[str(key).strip().lower()] = str(item).strip()
            return cleaned
        return value

    # ---- derived views used by the indexer and the engine -------------------------------

    @property
    def in_stock(self) -> bool:
        """A product without variants is sold as one unit and counts as available."""
        if not self.variants:
            return True
        return any(v.stock > 0 for v in self.variants)

    @property
    def available_sizes(self) -> list[str]:
        return _unique(v.size for v in self.variants if v.size and v.stock > 0)

    @property
    def sizes(self) -> list[str]:
        return _unique(v.size for v in self.variants if v.size)

    @property
    def colours(self) -> list[str]:
        colours = _unique(v.colour for v in self.variants if v.colour)
        attribute = self.attributes.get("colour") or self.attributes.get("color")
        if attribute and attribute not in colours:
            colours.insert(0, attribute)
        return colours

    def text_fingerprint(self, passage: str) -> str:
        """Hash of the text that is embedded: unchanged hash means no re-embedding."""
        return hashlib.sha256(passage.encode("utf-8")).hexdigest()

    def to_json(self) -> str:
        return self.model_dump_json(exclude_none=True, exclude_defaults=True)


def _unique(values: Iterable[str | None]) -> list[str]:
    seen: dict[str, None] = {}
    for value in values:
        if value and value not in seen:
            seen[value] = None
    return list(seen)


def validation_reason(error: ValidationError) -> str:
    """One readable line from a pydantic error: 'price: Input should be a valid number'."""
    parts = []
    for item in error.errors():
        where = ".".join(str(p) for p in item["loc"]) or "row"
        parts.append(f"{where}: {item['msg']}")
    return "; ".join(parts)


def product_from_json_line(line: str) -> Product:
    """Parse one JSON line of catalog format v1 (raises ValueError with a readable reason)."""
    try:
        data = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(f"invalid JSON: {exc.msg} at column {exc.colno}") from exc
    if not isinstance(data, dict):
        raise ValueError("expected a JSON object per line")
    try:
        return Product.model_validate(data)
    except ValidationError as exc:
        raise ValueError(validation_reason(exc)) from exc
