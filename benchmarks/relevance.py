"""Relevance benchmark: nDCG@10, MRR and recall@100 of the real engine, beside peers.

    python -m benchmarks.relevance --dataset ../shared/data/crowdflower [--json OUT] [--peers]
    python -m benchmarks.relevance --dataset DIR --grid      # fusion method x semantic weight

DIR holds catalog.jsonl (catalog format v1), queries.tsv (qid<TAB>query) and qrels.tsv
(qid<TAB>product_id<TAB>grade, 0 = irrelevant; unjudged products count as 0). The catalog is
indexed with the real indexer (cached under benchmarks/.cache/ by catalog checksum and model),
every query runs through SearchEngine in the modes bm25, vector and hybrid with default
settings, and peers (--peers) get the same catalog, the same embeddings and the same queries.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.metrics import RELEVANT, ndcg_at_k, recall_at_k, reciprocal_rank
from indexer import format as fmt
from indexer.build import build_from_catalog, file_checksum
from indexer.catalog import Product
from indexer.config import IndexConfig
from indexer.importers import load_catalog
from search.engine import SearchEngine
from search.models import Mode, SearchRequest
from search.settings import RankingSettings, Settings

CACHE = Path(__file__).parent / ".cache" / "relevance"
DEPTH = 100


def load_queries(dataset: Path) -> tuple[dict[str, str], dict[str, dict[str, float]]]:
    queries: dict[str, str] = {}
    for line in (dataset / "queries.tsv").read_text(encoding="utf-8").splitlines():
        if line.strip():
            qid, text = line.split("\t", 1)
            queries[qid] = text
    qrels: dict[str, dict[str, float]] = {}
    for line in (dataset / "qrels.tsv").read_text(encoding="utf-8").splitlines():
        if line.strip():
            qid, pid, grade = line.split("\t")
            # Averaged human grades are fractional ("1.33"): nDCG's gain 2^g - 1 takes them as is.
            qrels.setdefault(qid, {})[pid] = float(grade)
    return queries, qrels


def cached_index(catalog: Path, config: IndexConfig, cache: Path = CACHE) -> Path:
    """An index of the catalog, rebuilt only when the catalog or the model changes."""
    checksum = file_checksum(catalog)
    key = f"{catalog.parent.name}-{checksum[7:19]}-{config.backend}-{config.passage_max_tokens}-{config.description_chars}"
    index_dir = cache / key
    try:
        manifest = fmt.read_manifest(fmt.current_version_dir(index_dir))
        if manifest.catalog_checksum == checksum:
            return index_dir
    except (fmt.IndexNotFound, fmt.UnsupportedIndexFormat):
        pass
    build_from_catalog(catalog, index_dir, config.model_copy(update={"max_rejected_share": 1.0}))
    return index_dir


def evaluate(run: Callable[[str], Sequence[str]], queries: dict[str, str], qrels: dict[str, dict[str, float]]) -> dict[str, float]:
    ndcg, mrr, recall = [], [], []
    for qid, text in queries.items():
        judged = qrels.get(qid, {})
        ranked = list(run(text))
        ndcg.append(ndcg_at_k(ranked, judged, 10))
        mrr.append(reciprocal_rank(ranked, judged))
        recall.append(recall_at_k(ranked, judged, DEPTH))
    return {"ndcg@10": round(float(np.mean(ndcg)), 4), "mrr": round(float(np.mean(mrr)), 4), "recall@100": round(float(np.mean(recall)), 4)}


def engine_runner(engine: SearchEngine, mode: Mode) -> Callable[[str], list[str]]:
    def run(text: str) -> list[str]:
        # The benchmark measures completed queries: no search-as-you-type completion.
        result = engine.search(SearchRequest(q=text, mode=mode, limit=DEPTH, prefix=False))
        return [h.id for h in result.hits]

    return run


def apply_stock_rule(ranked: Sequence[str], in_stock: dict[str, bool], rule: str | None) -> list[str]:
    """Vitrine's default sold-out rule on a peer's ranking: sold-out products after the ones in
    stock, order otherwise kept ("sink"), or left out ("hide"); None leaves the ranking as is."""
    if rule is None:
        return list(ranked)
    available = [pid for pid in ranked if in_stock.get(pid, True)]
    if rule == "hide":
        return available
    return available + [pid for pid in ranked if not in_stock.get(pid, True)]


def run_peers(engine: SearchEngine, products: list[Product], queries: dict[str, str], qrels, names: list[str] | None = None) -> dict[str, dict[str, float]]:
    from benchmarks.peers import PEERS

    snapshot = engine.snapshot
    ords = [snapshot.id_to_ord[p.id] for p in products]
    embeddings = np.ascontiguousarray(snapshot.vectors[ords])
    query_vectors = {text: engine.embedder.encode_query(text) for text in queries.values()}
    in_stock = {p.id: p.in_stock for p in products}
    rule = engine.settings.stock.sold_out if "stock" in engine.settings.ranking.stages else None
    out = {}
    for name, factory in PEERS.items():
        if names and name not in names:
            continue
        peer = factory()
        with tempfile.TemporaryDirectory() as workdir:
            started = time.perf_counter()
            peer.build(products, embeddings, Path(workdir))
            built = time.perf_counter() - started
            ranked = {text: peer.search(text, query_vectors[text], DEPTH) for text in set(queries.values())}
            # A shop serving a peer's results applies its sold-out rule too: the same one as
            # Vitrine's stock stage, so both sides are measured as shoppers would see them.
            out[name] = evaluate(lambda text, r=ranked: apply_stock_rule(r[text], in_stock, rule), queries, qrels)
            out[name]["without_stock_rule"] = evaluate(lambda text, r=ranked: r[text], queries, qrels)
            out[name]["build_seconds"] = round(built, 2)
            close = getattr(peer, "close", None)
            if close:
                close()
        print(f"  peer {name}: {out[name]}", flush=True)
    return out


def run_benchmark(
    dataset: Path, ranking: RankingSettings | None = None, peers: bool | list[str] = False, config: IndexConfig | None = None
) -> dict[str, Any]:
    config = config or IndexConfig()
    queries, qrels = load_queries(dataset)
    index_dir = cached_index(dataset / "catalog.jsonl", config)
    settings = Settings(index_dir=index_dir, ranking=ranking or RankingSettings(), index=config)
    engine = SearchEngine(index_dir, settings)
    metrics = {mode.value: evaluate(engine_runner(engine, mode), queries, qrels) for mode in (Mode.bm25, Mode.vector, Mode.hybrid)}
    result: dict[str, Any] = {
        "dataset": dataset.name,
        "queries": len(queries),
        "metrics": metrics,
        "settings": {"ranking": settings.ranking.model_dump(), "index": {"model": config.model, "backend": config.backend, "query_graph": config.query_graph}},
        "relevant_grade": RELEVANT,
        "machine": f"{platform.machine()}, {_cpu_model()}",
    }
    products = load_catalog(dataset / "catalog.jsonl").products
    if "stock" in settings.ranking.stages and not all(p.in_stock for p in products):
        # The judgements know nothing of stock: also measure relevance alone.
        stages = [name for name in settings.ranking.stages if name != "stock"]
        plain = SearchEngine(index_dir, settings.model_copy(update={"ranking": settings.ranking.model_copy(update={"stages": stages})}))
        result["hybrid_without_stock_stage"] = evaluate(engine_runner(plain, Mode.hybrid), queries, qrels)
        plain.close()
    if peers:
        result["peers"] = run_peers(engine, products, queries, qrels, peers if isinstance(peers, list) else None)
        result["delta_vs_peers"] = {name: round(metrics["hybrid"]["ndcg@10"] - m["ndcg@10"], 4) for name, m in result["peers"].items()}
    engine.close()
    return result


def grid(dataset: Path, config: IndexConfig) -> list[dict[str, Any]]:
    rows = []
    for fusion in ("convex", "rrf"):
        for weight in (0.3, 0.4, 0.5, 0.6, 0.7):
            ranking = RankingSettings(fusion=fusion, semantic_weight=weight)
            metrics = run_benchmark(dataset, ranking, config=config)["metrics"]
            rows.append({"fusion": fusion, "semantic_weight": weight, **{f"hybrid_{k}": v for k, v in metrics["hybrid"].items()}})
            print(f"{fusion:>7} w={weight:.1f}  nDCG@10 {metrics['hybrid']['ndcg@10']:.4f}  MRR {metrics['hybrid']['mrr']:.4f}  R@100 {metrics['hybrid']['recall@100']:.4f}", flush=True)
    return rows


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def print_table(result: dict[str, Any]) -> None:
    print(f"\n{result['dataset']}: {result['queries']} queries")
    print(f"{'system':<22}{'nDCG@10':>9}{'MRR':>9}{'R@100':>9}")
    for mode, m in result["metrics"].items():
        print(f"{'vitrine ' + mode:<22}{m['ndcg@10']:>9.4f}{m['mrr']:>9.4f}{m['recall@100']:>9.4f}")
    for name, m in result.get("peers", {}).items():
        raw = m.get("without_stock_rule", {}).get("ndcg@10")
        note = f"; without the sold-out rule {raw:.4f}" if raw is not None and raw != m["ndcg@10"] else ""
        print(f"{name:<22}{m['ndcg@10']:>9.4f}{m['mrr']:>9.4f}{m['recall@100']:>9.4f}   (hybrid - peer: {result['delta_vs_peers'][name]:+.4f}{note})")
    if "hybrid_without_stock_stage" in result:
        m = result["hybrid_without_stock_stage"]
        print(f"{'(hybrid, no stock)':<22}{m['ndcg@10']:>9.4f}{m['mrr']:>9.4f}{m['recall@100']:>9.4f}   relevance alone: sold-out products not sunk")


def main() -> None:
    parser = argparse.ArgumentParser(description="Relevance of Vitrine (bm25, vector, hybrid) and peers.")
    parser.add_argument("--dataset", type=Path, required=True)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--peers", nargs="?", const="all", default=None, help="also run the peers (all, or a comma-separated list: typesense,bm25s)")
    parser.add_argument("--grid", action="store_true", help="sweep fusion method and semantic weight")
    parser.add_argument("--backend", choices=["torch", "onnx", "onnx-int8"], default=None)
    parser.add_argument("--query-graph", choices=["fused", "exported"], default=None,
                        help="the graph queries are encoded with (IndexConfig.query_graph; the index is the same)")
    args = parser.parse_args()
    config = IndexConfig()
    if args.backend is not None:
        config = config.model_copy(update={"backend": args.backend})
    if args.query_graph is not None:
        config = config.model_copy(update={"query_graph": args.query_graph})
    if args.grid:
        rows = grid(args.dataset, config)
        if args.json:
            args.json.write_text(json.dumps({"dataset": args.dataset.name, "grid": rows}, indent=2))
        return
    peers = False if args.peers is None else (True if args.peers == "all" else args.peers.split(","))
    result = run_benchmark(args.dataset, peers=peers, config=config)
    print_table(result)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
