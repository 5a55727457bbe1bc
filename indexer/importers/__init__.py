"""Catalog importers, chosen by name through one registry (or detected from the file)."""

from __future__ import annotations

from pathlib import Path

from indexer.importers.base import Importer, ImportReport, Rejection, TooManyRejections
from indexer.importers.csv_v1 import CsvImporter
from indexer.importers.jsonl import JsonLinesImporter
from indexer.importers.merchant import MerchantFeedImporter
from indexer.importers.shopify import ShopifyImporter

IMPORTERS: dict[str, type[Importer]] = {
    "jsonl": JsonLinesImporter,
    "csv": CsvImporter,
    "merchant": MerchantFeedImporter,
    "shopify": ShopifyImporter,
}


def detect_format(path: Path) -> str:
    """Guess the importer from the extension and, for delimited files, the header row."""
    suffix = path.suffix.lower()
    if suffix in {".jsonl", ".ndjson", ".json"}:
        return "jsonl"
    with path.open("r", encoding="utf-8-sig") as handle:
        header = handle.readline()
    columns = {c.strip().lower() for c in header.replace("\t", ",").split(",")}
    if "handle" in columns and "variant sku" in columns:
        return "shopify"
    if suffix == ".tsv" or {"item_group_id", "image_link"} & columns:
        return "merchant"
    if suffix == ".csv":
        return "csv"
    raise ValueError(f"cannot tell the format of {path.name}; pass --format jsonl|csv|merchant|shopify")


def load_catalog(
    path: str | Path, fmt: str | None = None, max_rejected_share: float | None = None
) -> ImportReport:
    """Read a catalog file into products; raise TooManyRejections past the allowed share."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"catalog file not found: {path}")
    name = fmt or detect_format(path)
    if name not in IMPORTERS:
        raise ValueError(f"unknown catalog format {name!r}; choose one of: {', '.join(IMPORTERS)}")
    report = IMPORTERS[name]().read(path)
    if max_rejected_share is not None and report.rejected_share > max_rejected_share:
        raise TooManyRejections(report, max_rejected_share)
    return report


__all__ = [
    "IMPORTERS",
    "ImportReport",
    "Importer",
    "Rejection",
    "TooManyRejections",
    "detect_format",
    "load_catalog",
]
