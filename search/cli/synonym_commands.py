"""`vitrine synonyms suggest|list|approve|reject|revert|export|import`: the merchandiser's review."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from search.analytics.report_runner import parse_time
from search.cli.common import add_index_dir, settings_from, table
from search.errors import NotFound
from search.service import SearchService
from synonyms.generators import suggest
from synonyms.synonym_store import Kind, Status, SynonymError, export_solr, parse_solr


def cmd_synonyms(args: argparse.Namespace) -> int:

    settings = settings_from(args)
    service = SearchService(settings)
    store = service.synonyms
    actor = args.by or os.environ.get("USER") or "cli"
    try:
        if args.synonyms_command == "suggest":
            created = suggest(service.synonym_inputs(), parse_time(args.since, time.time()))
            rows = [{"id": s.id, "synonym": s.solr(), "source": s.source, "confidence": s.confidence,
                     "rescued_searches": s.impact.get("rescued_searches")} for s in created]
            print(table(rows) if rows else "no new suggestions")
        elif args.synonyms_command == "list":
            status = Status(args.status) if args.status else None
            rows = [{"id": s.id, "status": s.status.value, "synonym": s.solr(), "source": s.source,
                     "confidence": s.confidence, "rescued_searches": s.impact.get("rescued_searches"),
                     "decided_by": s.decided_by} for s in store.list(status)]
            print(json.dumps(rows, indent=2) if args.json else (table(rows) if rows else "(none)"))
        elif args.synonyms_command == "approve":
            terms = [t.strip() for t in args.terms.split(",")] if args.terms else None
            targets = [t.strip() for t in args.targets.split(",")] if args.targets else None
            entry = store.approve(args.id, actor, args.note, Kind(args.kind) if args.kind else None, terms, targets)
            print(f"approved #{entry.id}: {entry.solr()}")
        elif args.synonyms_command == "reject":
            entry = store.reject(args.id, actor, args.note)
            print(f"rejected #{entry.id}: {entry.solr()}")
        elif args.synonyms_command == "revert":
            entry = store.revert(args.id, actor, args.note)
            print(f"#{entry.id} is pending again: {entry.solr()}")
        elif args.synonyms_command == "export":
            approved = store.approved()
            text = (json.dumps([{"kind": s.kind.value, "terms": s.terms, "targets": s.targets} for s in approved], indent=2) + "\n"
                    if args.format == "json" else export_solr(approved))
            if args.out:
                Path(args.out).write_text(text)
                print(f"wrote {len(approved)} synonyms to {args.out}")
            else:
                print(text, end="")
        elif args.synonyms_command == "import":
            text = Path(args.file).read_text()
            if args.format == "json":
                entries = [(Kind(e.get("kind", "equivalent")), e["terms"], e.get("targets", [])) for e in json.loads(text)]
            else:
                entries = parse_solr(text)
            imported = 0
            for kind, terms, targets in entries:
                try:
                    store.create(kind, terms, targets, actor, "imported", source="import")
                    imported += 1
                except SynonymError as error:
                    print(f"skipped {', '.join(terms)}: {error}", file=sys.stderr)
            print(f"imported {imported} of {len(entries)} synonyms")
    except NotFound as error:
        print(f"error: {error.message}", file=sys.stderr)
        return 2
    except (SynonymError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    finally:
        service.close()
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    syn = sub.add_parser("synonyms", help="suggest, review, import and export synonyms")
    ssub = syn.add_subparsers(dest="synonyms_command", required=True)
    ss = ssub.add_parser("suggest", help="run the generators over the search log")
    ss.add_argument("--since", default="30d")
    sl = ssub.add_parser("list", help="list entries")
    sl.add_argument("--status", choices=["pending", "approved", "rejected"], default=None)
    sl.add_argument("--json", action="store_true")
    sa = ssub.add_parser("approve", help="approve an entry, optionally edited")
    sa.add_argument("id", type=int)
    sa.add_argument("--terms", help="comma-separated, replaces the entry's terms")
    sa.add_argument("--targets", help="comma-separated, replaces a one-way entry's targets")
    sa.add_argument("--kind", choices=["one_way", "equivalent"])
    sr = ssub.add_parser("reject", help="reject an entry (its pairs are never suggested again)")
    sr.add_argument("id", type=int)
    sv2 = ssub.add_parser("revert", help="undo the last decision on an entry")
    sv2.add_argument("id", type=int)
    se = ssub.add_parser("export", help="approved synonyms as Solr synonyms.txt or JSON")
    se.add_argument("--format", choices=["solr", "json"], default="solr")
    se.add_argument("--out", default=None)
    si = ssub.add_parser("import", help="import a Solr synonyms.txt or JSON file (approved)")
    si.add_argument("file")
    si.add_argument("--format", choices=["solr", "json"], default="solr")
    for p_ in (ss, sl, sa, sr, sv2, se, si):
        add_index_dir(p_, required=False)
        p_.add_argument("--by", default=None, help="who decides (default: $USER)")
        p_.add_argument("--note", default=None)
    syn.set_defaults(func=cmd_synonyms)
