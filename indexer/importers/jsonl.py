"""JSON Lines importer: catalog format v1 as is, one product per line."""

from __future__ import annotations

from pathlib import Path

from indexer.catalog import product_from_json_line
from indexer.importers.base import ImportReport, Rejection, iter_lines


class JsonLinesImporter:
    name = "jsonl"

    def read(self, path: Path) -> ImportReport:
        report = ImportReport()
        seen: set[str] = set()
        for number, line in iter_lines(path):
            if not line.strip():
                continue
            report.rows += 1
            try:
                product = product_from_json_line(line)
            except ValueError as exc:
                report.rejections.append(Rejection(path.name, number, str(exc)))
                continue
            if product.id in seen:
                report.rejections.append(
                    Rejection(path.name, number, f"duplicate product id {product.id!r}")
                )
                continue
            seen.add(product.id)
            report.products.append(product)
        return report
