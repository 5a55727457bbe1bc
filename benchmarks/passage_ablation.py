"""What text to embed per product: relevance vs encoding speed.

    python -m benchmarks.passage_ablation --dataset ../shared/data/crowdflower \
        --variant 0,64,onnx-int8 --variant 150,64,onnx-int8 --variant 300,128,onnx-int8

Each variant is DESCRIPTION_CHARS,MAX_TOKENS,BACKEND. Prints vector-only nDCG@10 (exact cosine
over every product, no index) and passages/s, and writes JSON with --json.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np

from benchmarks.metrics import ndcg_at_k
from indexer.catalog import Product
from indexer.config import IndexConfig
from indexer.embedding import Embedder
from indexer.text import passage


def load(dataset: Path) -> tuple[list[Product], dict[str, str], dict[str, dict[str, int]]]:
    products = [Product.model_validate_json(line) for line in (dataset / "catalog.jsonl").open()]
    queries = dict(line.rstrip("\n").split("\t", 1) for line in (dataset / "queries.tsv").open() if line.strip())
    qrels: dict[str, dict[str, int]] = {}
    for line in (dataset / "qrels.tsv").open():
        if line.strip():
            qid, pid, grade = line.split("\t")
            qrels.setdefault(qid, {})[pid] = int(grade)
    return products, queries, qrels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, required=True)
    parser.add_argument("--variant", action="append", required=True, help="CHARS,TOKENS,BACKEND")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    products, queries, qrels = load(args.dataset)
    ids = [p.id for p in products]
    rows = []
    for variant in args.variant:
        chars, tokens, backend = variant.split(",")
        embedder = Embedder(IndexConfig(backend=backend, passage_max_tokens=int(tokens)))  # type: ignore[arg-type]
        texts = [passage(p, int(chars)) for p in products]
        embedder.encode(texts[:32])  # load and warm the model outside the timing
        started = time.perf_counter()
        vectors = embedder.encode(texts)
        rate = len(texts) / (time.perf_counter() - started)
        scores = []
        for qid, text in queries.items():
            ranking = np.argsort(-(vectors @ embedder.encode_query(text)))[:10]
            scores.append(ndcg_at_k([ids[i] for i in ranking], qrels.get(qid, {}), 10))
        row = {"description_chars": int(chars), "max_tokens": int(tokens), "backend": backend,
               "ndcg@10": round(float(np.mean(scores)), 4), "passages_per_s": round(rate, 1)}
        rows.append(row)
        print(f"{chars:>5} chars {tokens:>4} tokens {backend:<10} nDCG@10 {row['ndcg@10']:.4f}  {rate:6.0f} passages/s", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"dataset": str(args.dataset), "machine": platform.processor() or platform.machine(), "variants": rows}, indent=2))


if __name__ == "__main__":
    main()
