"""What every importer returns: the valid products, and every rejected row with file, line, reason."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from indexer.catalog import Product


@dataclass(frozen=True)
class Rejection:
    """A row that could not become a product. `line` is 1-based, as an editor shows it."""

    file: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}"


@dataclass
class ImportReport:
    products: list[Product] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    rows: int = 0  # rows read (a multi-row product such as a Shopify handle counts each row)

    @property
    def rejected_share(self) -> float:
        return len(self.rejections) / self.rows if self.rows else 0.0


class Importer(Protocol):
    """Reads one catalog file. Must never drop a row silently: it is a product or a Rejection."""

    name: str

    def read(self, path: Path) -> ImportReport: ...


class TooManyRejections(Exception):
    """More rows were rejected than the configured share allows."""

    def __init__(self, report: ImportReport, max_share: float) -> None:
        self.report = report
        self.max_share = max_share
        super().__init__(
            f"{len(report.rejections)} of {report.rows} rows rejected "
            f"({report.rejected_share:.1%}), more than the allowed {max_share:.1%}; "
            "fix the rows listed above or raise --max-rejected-share"
        )


def iter_lines(path: Path) -> Iterator[tuple[int, str]]:
    with path.open("r", encoding="utf-8-sig") as handle:
        yield from enumerate(handle, start=1)
