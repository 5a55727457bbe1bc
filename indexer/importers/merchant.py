"""Google Merchant Center product feed (TSV).

Rows sharing `item_group_id` become the variants of one product whose id is the group id;
each row's `id` becomes the variant SKU, with `size` and `color`. Stock is `quantity` when the
feed has it, else 1 for `in stock` / `preorder` / `backorder` and 0 for `out of stock`.
Prices like "29.99 USD" are read as numbers; `sale_price` wins over `price` when present.
`product_type` ("Apparel > Women > Dresses") is the category path; material, pattern, gender and
age_group become attributes. A row without `item_group_id` is a product of its own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from indexer.catalog import Product, validation_reason
from indexer.importers.base import ImportReport, Rejection
from indexer.importers.rows import RowError, cell_float, cell_int, read_rows

AVAILABLE = {"in stock": True, "in_stock": True, "preorder": True, "backorder": True, "out of stock": False, "out_of_stock": False}
ATTRIBUTE_COLUMNS = ("material", "pattern", "gender", "age_group")


class MerchantFeedImporter:
    name = "merchant"
    delimiter = "\t"

    def read(self, path: Path) -> ImportReport:
        report = ImportReport()
        groups: dict[str, dict[str, Any]] = {}
        first_line: dict[str, int] = {}
        skus: set[str] = set()
        for line, row in read_rows(path, self.delimiter):
            report.rows += 1
            try:
                variant_id = row.get("id", "")
                if not variant_id:
                    raise RowError("id: missing")
                if variant_id in skus:
                    raise RowError(f"id: duplicate {variant_id!r}")
                availability = row.get("availability", "").lower()
                if availability and availability not in AVAILABLE:
                    raise RowError(f"availability: {row['availability']!r} is not one of in stock, out of stock, preorder, backorder")
                price = cell_float(row, "sale_price", with_currency=True) or cell_float(row, "price", with_currency=True)
                quantity = cell_int(row, "quantity")
                if quantity is not None and quantity < 0:
                    raise RowError(f"quantity: {quantity} is negative")
                stock = quantity if quantity is not None else int(AVAILABLE.get(availability or "in stock", True))
                group = row.get("item_group_id") or variant_id
                product = groups.get(group)
                if product is None:
                    product = self._product(row, group)
                    groups[group] = product
                    first_line[group] = line
                skus.add(variant_id)
                if row.get("item_group_id") or row.get("size") or row.get("color"):
                    product["variants"].append(
                        {"sku": variant_id, "size": row.get("size") or None, "colour": row.get("color") or None, "stock": stock, "price": price}
                    )
                else:
                    product["_stock"] = stock
                if price is not None:
                    product["price"] = min(price, product.get("price", price))
            except RowError as exc:
                report.rejections.append(Rejection(path.name, line, str(exc)))
        for group, data in groups.items():
            stock = data.pop("_stock", None)
            if not data["variants"] and stock == 0:
                # A single-row product that is out of stock: keep the state as one variant.
                data["variants"].append({"sku": group, "stock": 0})
            try:
                report.products.append(Product.model_validate(data))
            except ValidationError as exc:
                report.rejections.append(Rejection(path.name, first_line[group], validation_reason(exc)))
        return report

    def _product(self, row: dict[str, str], group: str) -> dict[str, Any]:
        attributes = {c: row[c] for c in ATTRIBUTE_COLUMNS if row.get(c)}
        if row.get("color"):
            attributes["colour"] = row["color"]
        categories = row.get("product_type") or row.get("google_product_category") or ""
        return {
            "id": group,
            "title": row.get("title", ""),
            "description": row.get("description", ""),
            "brand": row.get("brand") or None,
            "categories": categories,
            "attributes": attributes,
            "url": row.get("link") or None,
            "image": row.get("image_link") or None,
            "variants": [],
        }
