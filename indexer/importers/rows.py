"""Shared helpers for delimited (CSV/TSV) importers: typed cells with readable errors."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path


class RowError(ValueError):
    """A cell that cannot be read; the message names the column and the value."""


def read_rows(path: Path, delimiter: str) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row) pairs; the header is line 1. Cells are stripped; missing cells are ''."""
    with path.open("r", encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle, delimiter=delimiter)
        if reader.fieldnames is None:
            return
        reader.fieldnames = [name.strip() for name in reader.fieldnames]
        line = 1
        for row in reader:
            # A quoted cell may span lines: report the line where the row starts.
            start = line + 1
            line = reader.line_num
            yield start, {k: (v or "").strip() for k, v in row.items() if k is not None}


def cell_float(row: dict[str, str], column: str, with_currency: bool = False) -> float | None:
    """A number; with_currency accepts Merchant Center's "29.99 USD"."""
    value = row.get(column, "")
    if not value:
        return None
    text = value.split()[0] if with_currency else value
    try:
        return float(text)
    except ValueError as exc:
        raise RowError(f"{column}: {value!r} is not a number") from exc


def cell_int(row: dict[str, str], column: str) -> int | None:
    value = row.get(column, "")
    if not value:
        return None
    try:
        return int(float(value))
    except ValueError as exc:
        raise RowError(f"{column}: {value!r} is not a whole number") from exc
