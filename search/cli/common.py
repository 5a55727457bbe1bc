"""What every command group shares: settings from the command line, the index-dir option, tables."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from search.settings import Settings


def settings_from(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    if getattr(args, "index_dir", None):
        overrides["index_dir"] = Path(args.index_dir)
    settings = Settings(**overrides)
    if getattr(args, "backend", None):
        settings.index = settings.index.model_copy(update={"backend": args.backend})
    if getattr(args, "model", None):
        settings.index = settings.index.model_copy(update={"model": args.model})
    return settings


def add_index_dir(p: argparse.ArgumentParser, required: bool = True) -> None:
    p.add_argument("--index-dir", required=required, help="index directory (env VITRINE_INDEX_DIR)")


def table(rows: list[dict]) -> str:
    columns = [c for c in rows[0] if not isinstance(rows[0][c], list | dict)]
    cells = [[("" if r.get(c) is None else str(r.get(c))) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(lines)
