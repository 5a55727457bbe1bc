"""`vitrine index build|info|upsert|delete|stock` and `vitrine sample`: catalogs into indexes."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from indexer import format as fmt
from indexer.build import build_from_catalog
from indexer.importers import TooManyRejections, load_catalog
from indexer.publish import PublishError, publish_version
from indexer.sample import write_catalog
from indexer.updates import CatalogUpdater
from search.cli.common import add_index_dir, settings_from
from search.database import Database
from search.errors import Unavailable
from search.replication import CatalogFeed, ReplicatedCatalog, write_position


def cmd_index_build(args: argparse.Namespace) -> int:

    settings = settings_from(args)
    config = settings.index
    if args.max_rejected_share is not None:
        config = config.model_copy(update={"max_rejected_share": args.max_rejected_share})
    # With a shared database, the version records where the catalog feed stood when its catalog
    # was read: replicas opening it replay only the changes accepted after (ARCHITECTURE.md).
    feed_head = _feed_head(settings.database_url)
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
    if feed_head is not None:
        write_position(result.version_dir, feed_head)
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
    if getattr(args, "publish", None):  # `vitrine demo` builds without it
        return _publish(settings.index_dir, Path(args.publish), m.version)
    return 0


def cmd_index_publish(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    target = args.to or settings.index.publish_dir
    if target is None:
        print("error: say where to publish: --to DIR (or set VITRINE_INDEX__PUBLISH_DIR)", file=sys.stderr)
        return 2
    return _publish(settings.index_dir, Path(target), args.version)


def _publish(index_dir: Path, publish_dir: Path, version: str | None) -> int:
    """Copy a finished version to the shared directory replicas poll (indexer/publish.py)."""
    try:
        name = publish_version(index_dir, publish_dir, version)
    except (PublishError, fmt.IndexNotFound, fmt.UnsupportedIndexFormat) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"Index {name} published to {publish_dir}: replicas polling it swap to it within index.publish_poll_seconds")
    return 0


def _feed_head(database_url: str | None) -> int | None:
    if not database_url:
        return None
    database = Database.open(database_url)
    try:
        return CatalogFeed(database).head()
    finally:
        database.close()


def cmd_index_info(args: argparse.Namespace) -> int:

    settings = settings_from(args)
    try:
        version_dir = fmt.current_version_dir(settings.index_dir)
        manifest = fmt.read_manifest(version_dir)
    except (fmt.IndexNotFound, fmt.UnsupportedIndexFormat) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(manifest.model_dump_json(indent=2))
    return 0


@contextmanager
def _updater(args: argparse.Namespace) -> Iterator[CatalogUpdater | ReplicatedCatalog]:
    """The local index's updater; with a shared database, the same changes also go to the
    catalog feed, so every replica applies them (search/replication.py)."""
    settings = settings_from(args)
    with CatalogUpdater(settings.index_dir, settings.index) as updater:
        if not settings.database_url:
            yield updater
            return
        database = Database.open(settings.database_url)
        try:
            catalog = ReplicatedCatalog(lambda: updater, CatalogFeed(database))
            yield catalog
            if catalog.waiting:
                raise Unavailable("the change is in this index but the database is down: run the command again "
                                  "when it answers so the other replicas get it too")
        finally:
            database.close()


def cmd_index_upsert(args: argparse.Namespace) -> int:

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


def cmd_sample(args: argparse.Namespace) -> int:

    count = write_catalog(Path(args.out), args.products, args.seed)
    print(f"wrote {count} products to {args.out}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("index", help="build and update indexes")
    isub = p.add_subparsers(dest="index_command", required=True)
    b = isub.add_parser("build", help="build an index from a catalog file and publish it atomically")
    b.add_argument("--catalog", required=True)
    b.add_argument("--format", choices=None, default=None, help="jsonl, csv, merchant, shopify (default: detect)")
    add_index_dir(b)
    b.add_argument("--backend", choices=["torch", "onnx", "onnx-int8"], default=None)
    b.add_argument("--model", default=None, help="sentence-transformers model directory")
    b.add_argument("--max-rejected-share", type=float, default=None)
    b.add_argument("--quiet", action="store_true", help="no progress bars")
    b.add_argument("--publish", metavar="DIR", default=None, help="then copy the new version to this shared directory, for replicas")
    b.set_defaults(func=cmd_index_build)
    pb = isub.add_parser("publish", help="copy a version to the shared directory replicas pull from")
    add_index_dir(pb)
    pb.add_argument("--to", metavar="DIR", default=None, help="shared directory (env VITRINE_INDEX__PUBLISH_DIR)")
    pb.add_argument("--version", default=None, help="a version in the index directory (default: its current one; an older one rolls back)")
    pb.set_defaults(func=cmd_index_publish)
    i = isub.add_parser("info", help="show the published version's manifest")
    add_index_dir(i)
    i.set_defaults(func=cmd_index_info)
    u = isub.add_parser("upsert", help="add or update the products of a catalog file")
    u.add_argument("--catalog", required=True)
    u.add_argument("--format", default=None)
    add_index_dir(u)
    u.set_defaults(func=cmd_index_upsert)
    d = isub.add_parser("delete", help="delete products by id")
    d.add_argument("ids", nargs="+")
    add_index_dir(d)
    d.set_defaults(func=cmd_index_delete)
    s = isub.add_parser("stock", help="set variant stock: SKU=COUNT ...")
    s.add_argument("items", nargs="+")
    add_index_dir(s)
    s.set_defaults(func=cmd_index_stock)

    sm = sub.add_parser("sample", help="write the generated sample catalog")
    sm.add_argument("--out", required=True)
    sm.add_argument("--products", type=int, default=5000)
    sm.add_argument("--seed", type=int, default=7)
    sm.set_defaults(func=cmd_sample)
