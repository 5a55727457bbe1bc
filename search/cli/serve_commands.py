"""`vitrine serve`, `vitrine demo` and `vitrine search`: the shop served, or one query answered."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

import uvicorn

from indexer import format as fmt
from indexer.build import file_checksum
from indexer.publish import pull_published
from indexer.sample import write_catalog
from search.api.security import ConfigurationError, check_configuration
from search.cli.common import add_index_dir, settings_from
from search.cli.index_commands import cmd_index_build
from search.engine import SearchEngine
from search.metrics import MULTIPROC_ENV
from search.models import SearchRequest
from search.settings import Settings


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve the API with `--workers` processes. Each worker builds its own settings and
    service from the environment (`search.api.app:app_from_environment`), so the command line
    hands its options over as VITRINE_* variables before uvicorn starts them."""
    settings = settings_from(args)
    overrides = {
        "VITRINE_INDEX_DIR": str(Path(settings.index_dir).resolve()),
        "VITRINE_SERVER__HOST": args.host,
        "VITRINE_SERVER__PORT": str(args.port) if args.port else None,
        "VITRINE_SERVER__ADMIN_KEY": args.admin_key,
        "VITRINE_SERVER__DEMO_SHOP": "true" if getattr(args, "demo_shop", False) else None,
        "VITRINE_INDEX__PUBLISH_DIR": str(Path(args.publish_dir).resolve()) if getattr(args, "publish_dir", None) else None,
        "VITRINE_LOG_FORMAT": getattr(args, "log_format", None),
        "VITRINE_LOG_LEVEL": getattr(args, "log_level", None),
    }
    os.environ.update({name: value for name, value in overrides.items() if value})
    settings = Settings()
    workers = getattr(args, "workers", None) or settings.server.workers
    try:
        check_configuration(settings)  # refuse here, not once per worker
    except ConfigurationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if settings.index.publish_dir is not None:
        # Start on the published version: a new replica has none, a restarted one may be behind.
        try:
            pulled = pull_published(settings.index.publish_dir, settings.index_dir, keep=settings.index.keep_versions)
        except (fmt.IndexNotFound, fmt.UnsupportedIndexFormat, OSError) as exc:
            print(f"warning: could not pull from {settings.index.publish_dir}: {exc}", file=sys.stderr)
        else:
            if pulled:
                print(f"pulled index version {pulled} from {settings.index.publish_dir}", flush=True)
    try:
        fmt.read_manifest(fmt.current_version_dir(settings.index_dir))  # refused here, with the fix
    except (fmt.IndexNotFound, fmt.UnsupportedIndexFormat) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    metrics_dir = _metrics_dir(workers)
    url = f"http://{settings.server.host}:{settings.server.port}"
    shop = f"demo shop at {url}/, " if settings.server.demo_shop else ""
    print(
        f"Vitrine serving {settings.index_dir} on {url} with {workers} worker(s) "
        f"({shop}API docs at {url}/docs, widget at {url}/widget/vitrine.js, readiness at {url}/ready)",
        flush=True,
    )
    try:
        uvicorn.run(
            "search.api.app:app_from_environment", factory=True, workers=workers,
            host=settings.server.host, port=settings.server.port, log_level=settings.log_level, access_log=False,
            log_config=None,  # uvicorn's lines go through search.logs (JSON with --log-format json)
        )
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0


def _metrics_dir(workers: int) -> Path | None:
    """Prometheus multiprocess mode for several workers: a directory where each worker writes
    its metrics (search.metrics). One made here is removed at exit (returned); one given in
    PROMETHEUS_MULTIPROC_DIR is emptied of the previous run's files."""
    given = os.environ.get(MULTIPROC_ENV)
    if given:
        Path(given).mkdir(parents=True, exist_ok=True)
        for stale in Path(given).glob("*.db"):
            stale.unlink(missing_ok=True)
        return None
    if workers <= 1:
        return None
    made = Path(tempfile.mkdtemp(prefix="vitrine-metrics-"))
    os.environ[MULTIPROC_ENV] = str(made)
    return made


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
    sv.add_argument(
        "--workers", type=int, default=None,
        help="worker processes on this machine, each with its own copy of the index in memory (env VITRINE_SERVER__WORKERS)",
    )
    sv.add_argument(
        "--publish-dir", default=None,
        help="shared directory to pull newly published index versions from (env VITRINE_INDEX__PUBLISH_DIR)",
    )
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
