"""Shopify products CSV export.

Rows sharing `Handle` are one product (id = Handle); its first row carries Title, Body (HTML),
Vendor, Type, Tags. Every row with a variant (a `Variant SKU` or an option value) is a variant:
options named Size / Color / Colour become the variant's size and colour, other options become
attributes. Stock is `Variant Inventory Qty`; when it is empty the shop does not track
inventory and the variant counts as available (stock 1). Rows that only add an image to the
product are read for the image and are not variants. Tags become attributes["tags"];
`Product Category` ("Apparel & Accessories > Clothing > Dresses") or `Type` is the category.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from indexer.catalog import Product, validation_reason
from indexer.importers.base import ImportReport, Rejection
from indexer.importers.rows import RowError, cell_float, cell_int, read_rows

SIZE_OPTIONS = {"size", "taille", "größe"}
COLOUR_OPTIONS = {"color", "colour", "couleur", "farbe"}


class ShopifyImporter:
    name = "shopify"
    delimiter = ","

    def read(self, path: Path) -> ImportReport:
        report = ImportReport()
        products: dict[str, dict[str, Any]] = {}
        option_names: dict[str, list[str]] = {}
        first_line: dict[str, int] = {}
        skus: set[str] = set()
        for line, row in read_rows(path, self.delimiter):
            report.rows += 1
            try:
                handle = row.get("Handle", "")
                if not handle:
                    raise RowError("Handle: missing")
                data = products.get(handle)
                if data is None:
                    if not row.get("Title"):
                        raise RowError(f"Title: missing on the first row of product {handle!r}")
                    data = self._product(row, handle)
                    products[handle] = data
                    option_names[handle] = [row.get(f"Option{i} Name", "") for i in (1, 2, 3)]
                    first_line[handle] = line
                if not data.get("image") and row.get("Image Src"):
                    data["image"] = row["Image Src"]
                options = [row.get(f"Option{i} Value", "") for i in (1, 2, 3)]
                if not row.get("Variant SKU") and not any(options) and not row.get("Variant Price"):
                    continue  # an image-only row
                self._add_variant(data, option_names[handle], options, row, skus)
            except RowError as exc:
                report.rejections.append(Rejection(path.name, line, str(exc)))
        for handle, data in products.items():
            try:
                report.products.append(Product.model_validate(data))
            except ValidationError as exc:
                report.rejections.append(Rejection(path.name, first_line[handle], validation_reason(exc)))
        return report

    def _product(self, row: dict[str, str], handle: str) -> dict[str, Any]:
        attributes: dict[str, str] = {}
        if row.get("Tags"):
            attributes["tags"] = row["Tags"]
        category = row.get("Product Category") or row.get("Type") or ""
        return {
            "id": handle,
            "title": row.get("Title", ""),
            "description": row.get("Body (HTML)", ""),
            "brand": row.get("Vendor") or None,
            "categories": category,
            "attributes": attributes,
            "image": row.get("Image Src") or None,
            "variants": [],
        }

    def _add_variant(self, data: dict[str, Any], names: list[str], options: list[str], row: dict[str, str], skus: set[str]) -> None:
        quantity = cell_int(row, "Variant Inventory Qty")
        if quantity is not None and quantity < 0:
            quantity = 0  # Shopify allows overselling into negative inventory: nothing to sell
        price = cell_float(row, "Variant Price")
        variant: dict[str, Any] = {"stock": 1 if quantity is None else quantity, "price": price}
        for name, value in zip(names, options, strict=True):
            if not value:
                continue
            key = name.strip().lower()
            if key in SIZE_OPTIONS:
                variant["size"] = value
            elif key in COLOUR_OPTIONS:
                variant["colour"] = value
            elif key and key != "title":  # "Title / Default Title" marks a product without options
                existing = data["attributes"].get(key)
                if existing is None:
                    data["attributes"][key] = value
                elif value not in existing.split(", "):
                    data["attributes"][key] = f"{existing}, {value}"
        sku = row.get("Variant SKU") or f"{data['id']}-{len(data['variants']) + 1}"
        if sku in skus:
            raise RowError(f"Variant SKU: duplicate {sku!r}")
        skus.add(sku)
        variant["sku"] = sku
        data["variants"].append(variant)
        if price is not None:
            data["price"] = min(price, data.get("price", price))
