"""`vitrine`: the command line. Subcommands are thin wrappers over the library.

  vitrine demo [--products N]                    sample shop: generate, index, serve
  vitrine sample --out FILE [--products N]       write the generated sample catalog
  vitrine index build --catalog F --index-dir D  full build with atomic publish
  vitrine index info --index-dir D               manifest of the published version
  vitrine index upsert|delete|stock ...          incremental updates
  vitrine serve --index-dir D                    the HTTP API
  vitrine search "query" --index-dir D           one query from the terminal
"""

from __future__ import annotations

import argparse

from search.cli import index_commands, report_commands, serve_commands, synonym_commands
from search.logs import configure_logging
from search.settings import Settings

# Each command group registers its subcommands (one module per group).
GROUPS = (index_commands, serve_commands, report_commands, synonym_commands)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vitrine", description="Site search for online shops.")
    parser.add_argument("--log-format", choices=["console", "json"], default=None)
    parser.add_argument("--log-level", choices=["debug", "info", "warning", "error"], default=None)
    sub = parser.add_subparsers(dest="command", required=True)
    for group in GROUPS:
        group.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = Settings()
    configure_logging(args.log_level or settings.log_level, args.log_format or settings.log_format)
    return int(args.func(args) or 0)


