"""Train the learned fusion model (search/stages/learned.py) and measure it honestly.

    python -m benchmarks.train_fusion                       # CV report + leave-one-dataset-out
    python -m benchmarks.train_fusion --save                # ... and write the shipped model
    python -m benchmarks.train_fusion --dataset DIR ...     # other datasets (repeatable)

Default datasets: CrowdFlower (`../shared/data/crowdflower`, human grades) and the generated
attribute queries for the fashion catalog and the sample shop (`python -m benchmarks.datasets
fashion|sample --out benchmarks/.cache/fashion-queries|sample-queries`). Every query runs
through the real engine (hybrid, default settings, the learned stage and the stock stage off:
judgements know nothing of stock); the head of each result set (`ranking.learned_top` best
by convex fusion) gets the stage's own features (`feature_matrix`) and its judgements.

Reported per dataset, all on the same result sets and without the stock stage:
  - bm25, vector: the engine in those modes;
  - convex: the engine's hybrid order without the learned stage (the fallback);
  - cv: learned fusion, query-level 5-fold cross-validation — each fold's queries scored by a
    model trained on the other folds of that dataset and on every other dataset, never on them;
  - lodo: leave one dataset out — a model trained on the other datasets only: how the method
    carries over to a catalog it has never seen (the hidden home-improvement set is one);
  - in-sample: the model trained on everything (the one shipped), scored on its own training
    queries. Printed for reference only; it is not a result.
The LightGBM parameters are fixed below and were not tuned on these folds.
"""

from __future__ import annotations

import argparse
import json
import pickle
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.datasets import DEFAULT_DATASETS
from benchmarks.metrics import ndcg_at_k
from benchmarks.relevance import cached_index, load_queries
from indexer.config import IndexConfig
from search.engine import SearchEngine
from search.models import Mode, SearchRequest
from search.settings import Settings
from search.stages.learned import FEATURES, MODEL_FILE, feature_matrix, head

ROOT = Path(__file__).parent
RESULTS = ROOT / "results" / "learned-fusion.json"
FOLDS = 5
SEED = 1
PARAMS: dict[str, Any] = {
    "objective": "lambdarank",
    "metric": "ndcg",
    "eval_at": [10],
    "lambdarank_truncation_level": 20,
    "learning_rate": 0.05,
    "num_leaves": 15,
    "min_data_in_leaf": 50,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    "num_threads": 2,
    "seed": SEED,
    "deterministic": True,
    "verbose": -1,
}
ROUNDS = 120


def collect(dataset: Path) -> dict[str, Any]:
    """Per query: the head's features, grades and ids; and the bm25/vector/convex top 10s."""
    queries, qrels = load_queries(dataset)
    index_dir = cached_index(dataset / "catalog.jsonl", IndexConfig())
    settings = Settings(index_dir=index_dir)
    settings.ranking.stages = [s for s in settings.ranking.stages if s not in ("learned", "stock")]
    engine = SearchEngine(index_dir, settings)
    snapshot = engine.snapshot
    top = settings.ranking.learned_top
    rows: list[dict[str, Any]] = []
    for qid, text in queries.items():
        judged = qrels.get(qid, {})
        ranked: dict[str, list[str]] = {}
        for mode in (Mode.bm25, Mode.vector):
            result = engine.search(SearchRequest(q=text, mode=mode, limit=10, prefix=False))
            ranked[mode.value] = [h.id for h in result.hits]
        # The context the learned stage would receive (every earlier stage has run).
        ctx = engine.context_before("personalize", SearchRequest(q=text, mode=Mode.hybrid, prefix=False))
        at = head(ctx, top)
        ids = [snapshot.products[int(o)].id for o in ctx.candidates.ords[at]]
        rows.append({
            "qid": qid, "text": text, "judged": judged, "ids": ids,
            "X": feature_matrix(ctx, at), "y": np.array([judged.get(pid, 0) for pid in ids], dtype=np.int32),
            "bm25": ndcg_at_k(ranked["bm25"], judged), "vector": ndcg_at_k(ranked["vector"], judged),
            "convex": ndcg_at_k(ids, judged),
        })
    engine.close()
    return {"name": dataset.name, "rows": rows}


def train(rows: list[dict[str, Any]]):
    import lightgbm

    rows = [r for r in rows if len(r["ids"]) > 1]
    data = lightgbm.Dataset(
        np.vstack([r["X"] for r in rows]), np.concatenate([r["y"] for r in rows]),
        group=[len(r["ids"]) for r in rows], feature_name=list(FEATURES), free_raw_data=True,
    )
    return lightgbm.train(PARAMS, data, num_boost_round=ROUNDS)


def scored(model, rows: list[dict[str, Any]]) -> list[float]:
    out = []
    for r in rows:
        if len(r["ids"]) > 1:
            order = np.argsort(-model.predict(r["X"], num_threads=1), kind="stable")
            out.append(ndcg_at_k([r["ids"][i] for i in order], r["judged"]))
        else:
            out.append(r["convex"])
    return out


def folds(n: int, seed: int) -> list[np.ndarray]:
    return np.array_split(np.random.default_rng(seed).permutation(n), FOLDS)


def evaluate(datasets: list[dict[str, Any]]) -> dict[str, Any]:
    report: dict[str, Any] = {}
    for d in datasets:
        others = [r for o in datasets if o is not d for r in o["rows"]]
        rows = d["rows"]
        cv = np.zeros(len(rows))
        for held in folds(len(rows), SEED):
            held_set = set(held.tolist())
            model = train(others + [r for i, r in enumerate(rows) if i not in held_set])
            cv[held] = scored(model, [rows[i] for i in held])
        lodo = scored(train(others), rows) if others else [float("nan")] * len(rows)
        base = {k: float(np.mean([r[k] for r in rows])) for k in ("bm25", "vector", "convex")}
        entry = {
            "queries": len(rows), **{k: round(v, 4) for k, v in base.items()},
            "cv": round(float(cv.mean()), 4), "lodo": round(float(np.mean(lodo)), 4),
            "cv_fold_means": [round(float(cv[f].mean()), 4) for f in folds(len(rows), SEED)],
            # Paired per-query differences: how often the learned order helps and hurts.
            "cv_vs_convex_better": int((cv > np.array([r["convex"] for r in rows]) + 1e-9).sum()),
            "cv_vs_convex_worse": int((cv < np.array([r["convex"] for r in rows]) - 1e-9).sum()),
            "cv_minus_convex_stderr": round(float(np.std(cv - np.array([r["convex"] for r in rows])) / np.sqrt(len(rows))), 4),
        }
        report[d["name"]] = entry
        print(f"{d['name']:<18} bm25 {entry['bm25']:.4f}  vector {entry['vector']:.4f}  convex {entry['convex']:.4f}  "
              f"cv {entry['cv']:.4f} (±{entry['cv_minus_convex_stderr']:.4f} vs convex; better {entry['cv_vs_convex_better']}, "
              f"worse {entry['cv_vs_convex_worse']})  lodo {entry['lodo']:.4f}", flush=True)
    return report


def cached_rows(dataset: Path, reuse: bool, collect_rows: Callable[[Path], dict[str, Any]], kind: str) -> dict[str, Any]:
    """`collect_rows(dataset)`, kept in benchmarks/.cache/ so that training runs can be
    repeated quickly (`reuse`)."""
    cache = ROOT / ".cache" / f"{kind}-rows-{dataset.name}.pkl"
    if reuse and cache.exists():
        return pickle.loads(cache.read_bytes())
    collected = collect_rows(dataset)
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_bytes(pickle.dumps(collected))
    return collected


def main() -> None:
    parser = argparse.ArgumentParser(description="Train and cross-validate the learned fusion model.")
    parser.add_argument("--dataset", type=Path, action="append", help="benchmark dataset dir (repeatable)")
    parser.add_argument("--save", action="store_true", help=f"train on every dataset and write {MODEL_FILE}")
    parser.add_argument("--json", type=Path, default=RESULTS)
    parser.add_argument("--reuse", action="store_true", help="reuse result sets collected by an earlier run of this code")
    args = parser.parse_args()
    started = time.perf_counter()
    datasets = [cached_rows(path, args.reuse, collect, "fusion") for path in (args.dataset or DEFAULT_DATASETS)]
    print(f"collected {sum(len(d['rows']) for d in datasets)} queries in {time.perf_counter() - started:.0f} s", flush=True)
    report: dict[str, Any] = {"features": list(FEATURES), "params": PARAMS, "rounds": ROUNDS, "folds": FOLDS,
                              "machine": platform.machine(), "datasets": evaluate(datasets)}
    final = train([r for d in datasets for r in d["rows"]])
    report["in_sample_not_a_result"] = {d["name"]: round(float(np.mean(scored(final, d["rows"]))), 4) for d in datasets}
    gains = final.feature_importance("gain")
    report["importance_gain"] = {n: round(float(g), 1) for n, g in sorted(zip(FEATURES, gains, strict=True), key=lambda x: -x[1])}
    print("in-sample (reference only):", report["in_sample_not_a_result"])
    print("feature importance (gain):", list(report["importance_gain"].items())[:12])
    if args.save:
        MODEL_FILE.parent.mkdir(parents=True, exist_ok=True)
        final.save_model(str(MODEL_FILE))
        print(f"wrote {MODEL_FILE} ({MODEL_FILE.stat().st_size // 1024} KB)")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
