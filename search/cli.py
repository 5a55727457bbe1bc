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
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import structlog

from search.logs import configure_logging
from search.settings import Settings

log = structlog.get_logger("vitrine.cli")


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    if getattr(args, "index_dir", None):
        overrides["index_dir"] = Path(args.index_dir)
    settings = Settings(**overrides)
    if getattr(args, "backend", None):
        settings.index = settings.index.model_copy(update={"backend": args.backend})
    if getattr(args, "model", None):
        settings.index = settings.index.model_copy(update={"model": args.model})
    return settings


# ---- index ---------------------------------------------------------------------------------


def cmd_index_build(args: argparse.Namespace) -> int:
    from indexer.build import build_from_catalog
    from indexer.importers import TooManyRejections

    settings = _settings(args)
    config = settings.index
    if args.max_rejected_share is not None:
        config = config.model_copy(update={"max_rejected_share": args.max_rejected_share})
    try:
        result = build_from_catalog(args.catalog, settings.index_dir, config, args.format, progress=not args.quiet)
    except TooManyRejections as exc:
        for rejection in exc.report.rejections[:50]:
            print(f"rejected {rejection}", file=sys.stderr)
        if len(exc.report.rejections) > 50:
            print(f"... and {len(exc.report.rejections) - 50} more", file=sys.stderr)
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    m = result.manifest
    report = result.report
    if report is not None:
        for rejection in report.rejections:
            print(f"rejected {rejection}", file=sys.stderr)
    rate = m.products / m.build_seconds if m.build_seconds else 0.0
    print(
        f"Index {m.version} published in {settings.index_dir}\n"
        f"  products  {m.products:>9,}   variants {m.variants:,}\n"
        f"  rejected  {m.rejected_rows:>9,}   rows\n"
        f"  embedded  {m.embedded:>9,}   cache hits {m.embedding_cache_hits:,}\n"
        f"  vectors   {m.vector_index.kind} {m.dimension}-d ({m.model}, {m.backend})\n"
        f"  took      {m.build_seconds:>9.1f} s ({rate:,.0f} products/s)"
    )
    return 0


def cmd_index_info(args: argparse.Namespace) -> int:
    from indexer import format as fmt

    settings = _settings(args)
    try:
        version_dir = fmt.current_version_dir(settings.index_dir)
        manifest = fmt.read_manifest(version_dir)
    except (fmt.IndexNotFound, fmt.UnsupportedIndexFormat) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(manifest.model_dump_json(indent=2))
    return 0


def _updater(args: argparse.Namespace):
    from indexer.updates import CatalogUpdater

    settings = _settings(args)
    return CatalogUpdater(settings.index_dir, settings.index)


def cmd_index_upsert(args: argparse.Namespace) -> int:
    from indexer.importers import load_catalog

    report = load_catalog(args.catalog, args.format)
    for rejection in report.rejections:
        print(f"rejected {rejection}", file=sys.stderr)
    with _updater(args) as updater:
        summary = updater.upsert(report.products)
    print(f"added {summary.added}, updated {summary.updated}, embedded {summary.embedded}")
    return 1 if report.rejections else 0


def cmd_index_delete(args: argparse.Namespace) -> int:
    with _updater(args) as updater:
        missing = updater.delete(args.ids)
    for product_id in missing:
        print(f"not found: {product_id}", file=sys.stderr)
    print(f"deleted {len(args.ids) - len(missing)}")
    return 1 if missing else 0


def cmd_index_stock(args: argparse.Namespace) -> int:
    items = []
    for pair in args.items:
        sku, _, value = pair.rpartition("=")
        if not sku or not value.lstrip("-").isdigit():
            print(f"error: expected SKU=STOCK, got {pair!r}", file=sys.stderr)
            return 2
        items.append((sku, int(value)))
    with _updater(args) as updater:
        try:
            summary = updater.set_stock(items)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    for sku in summary.unknown:
        print(f"unknown SKU: {sku}", file=sys.stderr)
    print(f"updated {summary.updated} variant(s)")
    return 1 if summary.unknown else 0


# ---- serving and searching -----------------------------------------------------------------


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from search.api.app import create_app

    settings = _settings(args)
    if args.host:
        settings.server.host = args.host
    if args.port:
        settings.server.port = args.port
    if args.admin_key:
        settings.server.admin_key = args.admin_key
    app = create_app(settings)
    print(f"Vitrine serving {settings.index_dir} on http://{settings.server.host}:{settings.server.port} (API docs at /docs)")
    uvicorn.run(app, host=settings.server.host, port=settings.server.port, log_level=settings.log_level, access_log=False)
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    from search.engine import SearchEngine
    from search.models import SearchRequest

    settings = _settings(args)
    engine = SearchEngine(settings.index_dir, settings)
    result = engine.search(SearchRequest(q=args.query, limit=args.limit, explain=args.explain), record=False)
    if args.json:
        print(result.model_dump_json(indent=2))
        return 0
    if result.corrected_query:
        print(f"showing results for: {result.corrected_query}")
    print(f"{result.total} results in {result.took_ms:.1f} ms")
    for position, hit in enumerate(result.hits, 1):
        stock = "in stock" if hit.in_stock else "sold out"
        print(f"{position:>3}. {hit.score:.3f}  {hit.title}  [{hit.id}, {stock}]")
        if hit.explain:
            print("       " + ", ".join(f"{k} {v.contribution:+.3f}" for k, v in hit.explain.items()))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from search.analytics.reports import to_csv
    from search.analytics.service import Period, run_report
    from search.engine import SearchEngine

    settings = _settings(args)
    try:
        period = Period.parse(args.since, args.until)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    engine = SearchEngine(settings.index_dir, settings)
    try:
        segment = {"traffic_source": args.traffic_source, "visitor": args.visitor, "device": args.device}
        rows = run_report(engine, args.name, period, segment, args.limit)
    finally:
        engine.close()
    if args.format == "json":
        print(json.dumps(rows, indent=2))
    elif args.format == "csv":
        print(to_csv(rows), end="")
    else:
        print(_table(rows) if rows else "(nothing in this period)")
    return 0


def cmd_synonyms(args: argparse.Namespace) -> int:
    from search.analytics.service import parse_time
    from search.engine import SearchEngine
    from synonyms.generators import suggest
    from synonyms.store import Kind, Status, SynonymError, export_solr, parse_solr

    settings = _settings(args)
    engine = SearchEngine(settings.index_dir, settings)
    store = engine.synonyms
    actor = args.by or os.environ.get("USER") or "cli"
    try:
        if args.synonyms_command == "suggest":
            created = suggest(engine, parse_time(args.since, time.time()))
            rows = [{"id": s.id, "synonym": s.solr(), "source": s.source, "confidence": s.confidence,
                     "rescued_searches": s.impact.get("rescued_searches")} for s in created]
            print(_table(rows) if rows else "no new suggestions")
        elif args.synonyms_command == "list":
            status = Status(args.status) if args.status else None
            rows = [{"id": s.id, "status": s.status.value, "synonym": s.solr(), "source": s.source,
                     "confidence": s.confidence, "rescued_searches": s.impact.get("rescued_searches"),
                     "decided_by": s.decided_by} for s in store.list(status)]
            print(json.dumps(rows, indent=2) if args.json else (_table(rows) if rows else "(none)"))
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
    except KeyError as error:
        print(f"error: no synonym #{error.args[0]}", file=sys.stderr)
        return 2
    except (SynonymError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    finally:
        engine.close()
    return 0


def _table(rows: list[dict]) -> str:
    columns = [c for c in rows[0] if not isinstance(rows[0][c], list | dict)]
    cells = [[("" if r.get(c) is None else str(r.get(c))) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(lines)


def cmd_sample(args: argparse.Namespace) -> int:
    from indexer.sample import write_catalog

    count = write_catalog(Path(args.out), args.products, args.seed)
    print(f"wrote {count} products to {args.out}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Generate the sample shop, build its index when the catalog changed, serve it."""
    from indexer import format as fmt
    from indexer.build import file_checksum
    from indexer.sample import write_catalog

    settings = _settings(args)
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    catalog = workdir / "sample-catalog.jsonl"
    write_catalog(catalog, args.products, args.seed)
    settings.index_dir = workdir / "index"
    args.index_dir = str(settings.index_dir)
    up_to_date = False
    try:
        manifest = fmt.read_manifest(fmt.current_version_dir(settings.index_dir))
        up_to_date = manifest.catalog_checksum == file_checksum(catalog)
    except (fmt.IndexNotFound, fmt.UnsupportedIndexFormat):
        pass
    if not up_to_date:
        args.catalog, args.format, args.max_rejected_share, args.quiet = str(catalog), None, None, False
        code = cmd_index_build(args)
        if code:
            return code
    else:
        print(f"index in {settings.index_dir} is up to date with {catalog}")
    if args.no_serve:
        return 0
    args.host = args.host or None
    return cmd_serve(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vitrine", description="Site search for online shops.")
    parser.add_argument("--log-format", choices=["console", "json"], default=None)
    parser.add_argument("--log-level", choices=["debug", "info", "warning", "error"], default=None)
    sub = parser.add_subparsers(dest="command", required=True)

    def index_dir(p: argparse.ArgumentParser, required: bool = True) -> None:
        p.add_argument("--index-dir", required=required, help="index directory (env VITRINE_INDEX_DIR)")

    p = sub.add_parser("index", help="build and update indexes")
    isub = p.add_subparsers(dest="index_command", required=True)
    b = isub.add_parser("build", help="build an index from a catalog file and publish it atomically")
    b.add_argument("--catalog", required=True)
    b.add_argument("--format", choices=None, default=None, help="jsonl, csv, merchant, shopify (default: detect)")
    index_dir(b)
    b.add_argument("--backend", choices=["torch", "onnx", "onnx-int8"], default=None)
    b.add_argument("--model", default=None, help="sentence-transformers model directory")
    b.add_argument("--max-rejected-share", type=float, default=None)
    b.add_argument("--quiet", action="store_true", help="no progress bars")
    b.set_defaults(func=cmd_index_build)
    i = isub.add_parser("info", help="show the published version's manifest")
    index_dir(i)
    i.set_defaults(func=cmd_index_info)
    u = isub.add_parser("upsert", help="add or update the products of a catalog file")
    u.add_argument("--catalog", required=True)
    u.add_argument("--format", default=None)
    index_dir(u)
    u.set_defaults(func=cmd_index_upsert)
    d = isub.add_parser("delete", help="delete products by id")
    d.add_argument("ids", nargs="+")
    index_dir(d)
    d.set_defaults(func=cmd_index_delete)
    s = isub.add_parser("stock", help="set variant stock: SKU=COUNT ...")
    s.add_argument("items", nargs="+")
    index_dir(s)
    s.set_defaults(func=cmd_index_stock)

    sv = sub.add_parser("serve", help="serve the HTTP API")
    index_dir(sv, required=False)
    sv.add_argument("--host", default=None)
    sv.add_argument("--port", type=int, default=None)
    sv.add_argument("--admin-key", default=None, help="required in X-Admin-Key for admin endpoints")
    sv.set_defaults(func=cmd_serve)

    q = sub.add_parser("search", help="run one query")
    q.add_argument("query")
    index_dir(q, required=False)
    q.add_argument("--limit", type=int, default=10)
    q.add_argument("--explain", action="store_true")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_search)

    from search.analytics.service import REPORTS

    r = sub.add_parser("report", help="search reports: " + ", ".join(REPORTS))
    r.add_argument("name", choices=REPORTS)
    index_dir(r, required=False)
    r.add_argument("--since", default="7d", help="7d, 24h, 30m, 2w, an ISO date or time (default 7d)")
    r.add_argument("--until", default=None)
    r.add_argument("--traffic-source", default=None)
    r.add_argument("--visitor", choices=["new", "returning"], default=None)
    r.add_argument("--device", default=None)
    r.add_argument("--limit", type=int, default=100)
    r.add_argument("--format", choices=["table", "csv", "json"], default="table")
    r.set_defaults(func=cmd_report)

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
        index_dir(p_, required=False)
        p_.add_argument("--by", default=None, help="who decides (default: $USER)")
        p_.add_argument("--note", default=None)
    syn.set_defaults(func=cmd_synonyms)

    sm = sub.add_parser("sample", help="write the generated sample catalog")
    sm.add_argument("--out", required=True)
    sm.add_argument("--products", type=int, default=5000)
    sm.add_argument("--seed", type=int, default=7)
    sm.set_defaults(func=cmd_sample)

    dm = sub.add_parser("demo", help="generate the sample shop, index it and serve it")
    dm.add_argument("--products", type=int, default=5000)
    dm.add_argument("--seed", type=int, default=7)
    dm.add_argument("--workdir", default="var/demo")
    dm.add_argument("--host", default=None)
    dm.add_argument("--port", type=int, default=None)
    dm.add_argument("--admin-key", default=None)
    dm.add_argument("--backend", choices=["torch", "onnx", "onnx-int8"], default=None)
    dm.add_argument("--model", default=None)
    dm.add_argument("--no-serve", action="store_true", help="build and print the summary only")
    dm.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = Settings()
    configure_logging(args.log_level or settings.log_level, args.log_format or settings.log_format)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
