"""Relevance datasets with generated attribute queries and graded judgements.

    python -m benchmarks.datasets fashion --out benchmarks/.cache/fashion-queries \
        [--catalog ../shared/data/fashion/catalog.jsonl] [--queries 300] [--seed 1]
    python -m benchmarks.datasets sample --out benchmarks/.cache/sample-queries [--products 10000]

The standard way to evaluate on a catalog without human labels: queries shoppers would type are
composed from structured fields ("navy blue shirts", "women sandals", "casual t-shirt for men"),
and every product is graded by how many of the query's constraints it meets:
  3 = the product type and every attribute the query names, 2 = the type and all but one,
  1 = the type only, 0 = otherwise (not written). The output DIR has the benchmark layout:
catalog.jsonl (a symlink to the shared file for `fashion`: shared data is never copied),
queries.tsv and qrels.tsv.
"""

from __future__ import annotations

import argparse
import os
import random
from collections import defaultdict
from pathlib import Path

from indexer.catalog import Product
from indexer.importers import load_catalog
from indexer.sample import write_catalog

SHARED_FASHION = Path(__file__).parent.parent.parent / "shared" / "data" / "fashion" / "catalog.jsonl"
# The judged query sets the fusion trainers and sweeps run over by default: CrowdFlower (human
# grades, from the shared data) and the two generated ones this module writes.
DEFAULT_DATASETS = (
    Path(__file__).parent.parent.parent / "shared" / "data" / "crowdflower",
    Path(__file__).parent / ".cache" / "fashion-queries",
    Path(__file__).parent / ".cache" / "sample-queries",
)


def _facts(product: Product) -> dict[str, str]:
    """The constraints a query can name about this product, lower-cased."""
    facts = {"type": product.categories[-1].lower() if product.categories else ""}
    for key in ("colour", "gender", "usage", "material", "pattern", "style"):
        value = product.attributes.get(key)
        if value:
            facts[key] = value.lower()
    return facts


TEMPLATES = (
    ("{colour} {type}", ("colour",)),
    ("{gender} {type}", ("gender",)),
    ("{usage} {type} for {gender}", ("usage", "gender")),
    ("{type}", ()),
    ("{colour} {type} for {gender}", ("colour", "gender")),
    ("{material} {type}", ("material",)),
    ("{pattern} {colour} {type}", ("pattern", "colour")),
)


def _grade(query: dict[str, str], facts: dict[str, str]) -> int:
    if facts.get("type") != query["type"]:
        return 0
    named = [k for k in query if k != "type"]
    missed = sum(1 for k in named if facts.get(k) != query[k])
    if missed == 0:
        return 3
    return 2 if missed == 1 else 1


def make_queries(products: list[Product], n_queries: int, seed: int) -> tuple[dict[str, str], dict[str, dict[str, int]]]:
    rng = random.Random(seed)
    facts = [_facts(p) for p in products]
    by_type: dict[str, list[int]] = defaultdict(list)
    for i, f in enumerate(facts):
        if f["type"]:
            by_type[f["type"]].append(i)
    queries: dict[str, str] = {}
    qrels: dict[str, dict[str, int]] = {}
    seen: set[str] = set()
    attempts = 0
    while len(queries) < n_queries and attempts < n_queries * 50:
        attempts += 1
        anchor = facts[rng.randrange(len(products))]
        template, needed = rng.choice(TEMPLATES)
        if not anchor["type"] or any(k not in anchor for k in needed):
            continue
        constraint = {"type": anchor["type"], **{k: anchor[k] for k in needed}}
        text = template.format(**constraint).lower()
        if text in seen:
            continue
        seen.add(text)
        # Every product of the type is judged: a cut (the first N in catalog order) would count
        # identical products as relevant or not by their position in the file, and reward
        # whichever engine breaks score ties by that order.
        grades = {products[i].id: g for i in by_type[anchor["type"]] if (g := _grade(constraint, facts[i])) > 0}
        qid = f"g{len(queries) + 1}"
        queries[qid] = text
        qrels[qid] = grades
    return queries, qrels


def write_dataset(out: Path, catalog: Path, products: list[Product], n_queries: int, seed: int, link: bool) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    target = out / "catalog.jsonl"
    if link:
        if target.exists() or target.is_symlink():
            target.unlink()
        os.symlink(catalog.resolve(), target)
    queries, qrels = make_queries(products, n_queries, seed)
    (out / "queries.tsv").write_text("".join(f"{q}\t{t}\n" for q, t in queries.items()), encoding="utf-8")
    (out / "qrels.tsv").write_text("".join(f"{q}\t{p}\t{g}\n" for q, judged in qrels.items() for p, g in judged.items()), encoding="utf-8")
    return out


def make_fashion_dataset(catalog: Path, out: Path, n_queries: int = 300, seed: int = 1) -> Path:
    return write_dataset(out, catalog, load_catalog(catalog).products, n_queries, seed, link=True)


def make_sample_dataset(out: Path, n_products: int = 10_000, n_queries: int = 300, seed: int = 1) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    write_catalog(out / "catalog.jsonl", n_products, seed=7)
    return write_dataset(out, out / "catalog.jsonl", load_catalog(out / "catalog.jsonl").products, n_queries, seed, link=False)


def main() -> None:
    parser = argparse.ArgumentParser(description="Generate attribute-query relevance datasets.")
    parser.add_argument("kind", choices=["fashion", "sample"])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--catalog", type=Path, default=SHARED_FASHION)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--products", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if args.kind == "fashion":
        out = make_fashion_dataset(args.catalog, args.out, args.queries, args.seed)
    else:
        out = make_sample_dataset(args.out, args.products, args.queries, args.seed)
    print(f"wrote {out}/queries.tsv and qrels.tsv")


if __name__ == "__main__":
    main()
