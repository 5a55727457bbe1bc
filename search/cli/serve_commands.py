"""`vitrine serve`, `vitrine demo` and `vitrine search`: the shop served, or one query answered."""

from __future__ import annotations

import argparse
from pathlib import Path

import uvicorn

from indexer import format as fmt
from indexer.build import file_checksum
from indexer.sample import write_catalog
from search.api.app import create_app
from search.cli.common import add_index_dir, settings_from
from search.cli.index_commands import cmd_index_build
from search.engine import SearchEngine
from search.models import SearchRequest


def cmd_serve(args: argparse.Namespace) -> int:


    settings = settings_from(args)
    if args.host:
        settings.server.host = args.host
    if args.port:
        settings.server.port = args.port
    if args.admin_key:
        settings.server.admin_key = args.admin_key
    if getattr(args, "demo_shop", False):
        settings.server.demo_shop = True
    app = create_app(settings)
    url = f"http://{settings.server.host}:{settings.server.port}"
    shop = f"demo shop at {url}/, " if settings.server.demo_shop else ""
    print(f"Vitrine serving {settings.index_dir} on {url} ({shop}API docs at {url}/docs, widget at {url}/widget/vitrine.js)")
    uvicorn.run(app, host=settings.server.host, port=settings.server.port, log_level=settings.log_level, access_log=False)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Generate the sample shop, build its index when the catalog changed, serve it."""
    settings = settings_from(args)
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
    args.demo_shop = True
    return cmd_serve(args)


def cmd_search(args: argparse.Namespace) -> int:

    settings = settings_from(args)
    engine = SearchEngine(settings.index_dir, settings)
    result = engine.search(SearchRequest(q=args.query, limit=args.limit, explain=args.explain))
    engine.close()
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


def register(sub: argparse._SubParsersAction) -> None:
    sv = sub.add_parser("serve", help="serve the HTTP API")
    add_index_dir(sv, required=False)
    sv.add_argument("--host", default=None)
    sv.add_argument("--port", type=int, default=None)
    sv.add_argument("--admin-key", default=None, help="required in X-Admin-Key for admin endpoints")
    sv.set_defaults(func=cmd_serve)

    q = sub.add_parser("search", help="run one query")
    q.add_argument("query")
    add_index_dir(q, required=False)
    q.add_argument("--limit", type=int, default=10)
    q.add_argument("--explain", action="store_true")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_search)

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
