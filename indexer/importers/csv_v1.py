"""CSV with the columns of catalog format v1.

One row per variant; rows sharing `id` are one product (product fields from its first row):

    id,title,description,brand,categories,attributes,price,margin,rating,review_count,
    popularity,url,image,created_at,variant_sku,variant_size,variant_colour,variant_stock,
    variant_price

`categories` is a path "Women > Dresses"; `attributes` is "colour=red; material=cotton".
A product without variants leaves the variant columns empty.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from indexer.catalog import Product, validation_reason
from indexer.importers.base import ImportReport, Rejection
from indexer.importers.rows import RowError, cell_float, cell_int, read_rows

PRODUCT_NUMBERS = {"price": float, "margin": float, "rating": float, "popularity": float, "review_count": int}


def parse_attributes(text: str) -> dict[str, str]:
    attributes: dict[str, str] = {}
    for part in text.split(";"):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise RowError(f"attributes: {part.strip()!r} is not key=value")
        attributes[key.strip().lower()] = value.strip()
    return attributes


class CsvImporter:
    name = "csv"
    delimiter = ","

    def read(self, path: Path) -> ImportReport:
        report = ImportReport()
        products: dict[str, dict[str, Any]] = {}
        first_line: dict[str, int] = {}
        skus: set[str] = set()
        for line, row in read_rows(path, self.delimiter):
            report.rows += 1
            try:
                product_id = row.get("id", "")
                if not product_id:
                    raise RowError("id: missing")
                data = products.get(product_id)
                if data is None:
                    data = self._product_fields(row)
                    products[product_id] = data
                    first_line[product_id] = line
                variant = self._variant(row)
                if variant is not None:
                    if variant["sku"] in skus:
                        raise RowError(f"variant_sku: duplicate SKU {variant['sku']!r}")
                    skus.add(variant["sku"])
                    data["variants"].append(variant)
            except RowError as exc:
                report.rejections.append(Rejection(path.name, line, str(exc)))
        for product_id, data in products.items():
            try:
                report.products.append(Product.model_validate(data))
            except ValidationError as exc:
                report.rejections.append(Rejection(path.name, first_line[product_id], validation_reason(exc)))
        return report

    def _product_fields(self, row: dict[str, str]) -> dict[str, Any]:
        data: dict[str, Any] = {k: row.get(k) or None for k in ("id", "title", "description", "brand", "url", "image", "created_at")}
        data["categories"] = row.get("categories", "")
        data["attributes"] = parse_attributes(row.get("attributes", ""))
        for column, kind in PRODUCT_NUMBERS.items():
            data[column] = cell_int(row, column) if kind is int else cell_float(row, column)
        data["variants"] = []
        return {k: v for k, v in data.items() if v is not None}

    def _variant(self, row: dict[str, str]) -> dict[str, Any] | None:
        sku = row.get("variant_sku", "")
        if not sku:
            if any(row.get(c) for c in ("variant_size", "variant_colour", "variant_stock")):
                raise RowError("variant_sku: missing for a row with variant columns")
            return None
        stock = cell_int(row, "variant_stock")
        if stock is not None and stock < 0:
            raise RowError(f"variant_stock: {stock} is negative")
        return {
            "sku": sku,
            "size": row.get("variant_size") or None,
            "colour": row.get("variant_colour") or None,
            "stock": stock or 0,
            "price": cell_float(row, "variant_price"),
        }
