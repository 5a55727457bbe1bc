"""`vitrine report NAME`: search reports in the terminal, as CSV or JSON."""

from __future__ import annotations

import argparse
import json
import sys

from search.analytics.report_runner import REPORTS, Period
from search.analytics.reports import to_csv
from search.cli.common import add_index_dir, settings_from, table
from search.service import SearchService


def cmd_report(args: argparse.Namespace) -> int:

    settings = settings_from(args)
    try:
        period = Period.parse(args.since, args.until)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    service = SearchService(settings)
    try:
        segment = {"traffic_source": args.traffic_source, "visitor": args.visitor, "device": args.device}
        rows = service.run_report(args.name, period, segment, args.limit)
    finally:
        service.close()
    if args.format == "json":
        print(json.dumps(rows, indent=2))
    elif args.format == "csv":
        print(to_csv(rows), end="")
    else:
        print(table(rows) if rows else "(nothing in this period)")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    r = sub.add_parser("report", help="search reports: " + ", ".join(REPORTS))
    r.add_argument("name", choices=REPORTS)
    add_index_dir(r, required=False)
    r.add_argument("--since", default="7d", help="7d, 24h, 30m, 2w, an ISO date or time (default 7d)")
    r.add_argument("--until", default=None)
    r.add_argument("--traffic-source", default=None)
    r.add_argument("--visitor", choices=["new", "returning"], default=None)
    r.add_argument("--device", default=None)
    r.add_argument("--limit", type=int, default=100)
    r.add_argument("--format", choices=["table", "csv", "json"], default="table")
    r.set_defaults(func=cmd_report)
