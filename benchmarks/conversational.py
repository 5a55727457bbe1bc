"""Conversational queries on the sample shop: do results honour what the shopper said?

    python -m benchmarks.conversational [--products 5000] [--queries 200] [--peers typesense] [--json OUT]

Queries such as "looking for a grey bikini for her under £25" or "men's trainers between 40
and 89" are generated from the sample shop (indexer.sample.conversational_queries), each with
the constraints it states: product type, colour, gender, price bound. Every product of the
query's type is graded like the attribute datasets (3 = every other constraint met, 2 = all
but one, 1 = the type only), and each system is scored on nDCG@10 and on the share of its
top-10 hits that honour the stated price bound, each other constraint, and all of them.
The catalog, queries.tsv and qrels.tsv are written to benchmarks/.cache/conversational/ in the
benchmark layout, so `benchmarks.relevance --dataset` runs on them too.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.metrics import ndcg_at_k
from benchmarks.relevance import _cpu_model, cached_index
from indexer.catalog import Product
from indexer.config import IndexConfig
from indexer.importers import load_catalog
from indexer.sample import ConversationalQuery, conversational_queries, write_catalog
from search.engine import SearchEngine
from search.models import Mode, SearchRequest
from search.settings import Settings

OUT = Path(__file__).parent / ".cache" / "conversational"
K = 10


def grade(query: ConversationalQuery, product: Product) -> int:
    met = query.honoured_by(product, product.price)
    if not met.get("type"):
        return 0
    missed = sum(1 for key, ok in met.items() if key != "type" and not ok)
    return 3 if missed == 0 else 2 if missed == 1 else 1


def make_dataset(out: Path, n_products: int, n_queries: int, seed: int = 3) -> tuple[list[Product], list[ConversationalQuery]]:
    out.mkdir(parents=True, exist_ok=True)
    catalog = out / "catalog.jsonl"
    if not catalog.exists() or sum(1 for _ in catalog.open()) != n_products:
        write_catalog(catalog, n_products, seed=7)
    products = load_catalog(catalog).products
    queries = conversational_queries(products, n_queries, seed)
    (out / "queries.tsv").write_text("".join(f"c{i}\t{q.text}\n" for i, q in enumerate(queries)), encoding="utf-8")
    lines = []
    for i, q in enumerate(queries):
        for p in products:
            g = grade(q, p)
            if g:
                lines.append(f"c{i}\t{p.id}\t{g}\n")
    (out / "qrels.tsv").write_text("".join(lines), encoding="utf-8")
    (out / "constraints.json").write_text(json.dumps([{"text": q.text, **q.constraints} for q in queries], indent=1))
    return products, queries


def score(run: Callable[[str], Sequence[str]], queries: list[ConversationalQuery], products: dict[str, Product]) -> dict[str, float]:
    ndcg: list[float] = []
    honoured: dict[str, list[float]] = {"price": [], "type": [], "colour": [], "gender": [], "every constraint": []}
    for q in queries:
        ranked = list(run(q.text))[:K]
        judged = {pid: grade(q, p) for pid, p in products.items() if q.constraints["type"] in p.categories[-1:]}
        ndcg.append(ndcg_at_k(ranked, {k: v for k, v in judged.items() if v}, K))
        for pid in ranked:
            met = q.honoured_by(products[pid], products[pid].price)
            if "price_max" in met or "price_min" in met:
                honoured["price"].append(float(met.get("price_max", True) and met.get("price_min", True)))
            for key in ("type", "colour", "gender"):
                if key in met:
                    honoured[key].append(float(met[key]))
            honoured["every constraint"].append(float(all(met.values())))
    out = {"ndcg@10": round(float(np.mean(ndcg)), 4)}
    out.update({f"top10 {k}": round(float(np.mean(v)), 4) if v else float("nan") for k, v in honoured.items()})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description="Conversational queries on the sample shop.")
    parser.add_argument("--products", type=int, default=5000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--peers", default=None, help="comma-separated peer names (e.g. typesense,bm25s)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    product_list, queries = make_dataset(OUT, args.products, args.queries)
    products = {p.id: p for p in product_list}
    config = IndexConfig()
    index_dir = cached_index(OUT / "catalog.jsonl", config)
    state = Path(tempfile.mkdtemp(prefix="vitrine-conversational-"))
    engine = SearchEngine(index_dir, Settings(index_dir=index_dir, data_dir=state, index=config))

    def vitrine(mode: Mode, understand: bool = True) -> Callable[[str], list[str]]:
        def run(text: str) -> list[str]:
            request = SearchRequest(q=text, mode=mode, limit=K, prefix=False, understand=understand)
            return [h.id for h in engine.search(request).hits]

        return run

    systems: dict[str, Callable[[str], Sequence[str]]] = {
        "vitrine hybrid": vitrine(Mode.hybrid),
        "vitrine hybrid, understand=false": vitrine(Mode.hybrid, False),
        "vitrine bm25": vitrine(Mode.bm25),
        "vitrine vector": vitrine(Mode.vector),
    }
    results: dict[str, Any] = {
        "products": len(products), "queries": len(queries), "machine": _cpu_model(), "systems": {},
    }
    for name, run in systems.items():
        results["systems"][name] = score(run, queries, products)
        print(f"{name:<34} {results['systems'][name]}", flush=True)
    if args.peers:
        from benchmarks.peers import PEERS

        snapshot = engine.snapshot
        embeddings = np.ascontiguousarray(snapshot.vectors[[snapshot.id_to_ord[p.id] for p in product_list]])
        for peer_name in args.peers.split(","):
            peer = PEERS[peer_name]()
            with tempfile.TemporaryDirectory() as workdir:
                peer.build(product_list, embeddings if "lancedb" in peer_name else None, Path(workdir))
                vectors = {q.text: engine.embedder.encode_query(q.text) for q in queries} if "lancedb" in peer_name else {}
                results["systems"][peer_name] = score(lambda t, p=peer, v=vectors: p.search(t, v.get(t), K), queries, products)
                close = getattr(peer, "close", None)
                if close:
                    close()
            print(f"{peer_name:<34} {results['systems'][peer_name]}", flush=True)
    engine.close()
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
