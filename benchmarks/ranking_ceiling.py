"""How far can re-ordering the engine's own result sets go? An honest ceiling for ranking work.

    python -m benchmarks.ranking_ceiling --dataset ../shared/data/crowdflower [--json OUT]

Runs every query through the real engine (hybrid, default settings), keeps each query's result
set with its signals, then re-ranks those sets offline and prints nDCG@10 for:
  - engine: the engine's own order;
  - oracle: the same members ordered by their judgements (what perfect ranking could reach);
  - overfit linear: the best linear combination of the signals below, its weights fitted by
    coordinate ascent on the evaluation queries themselves. This is an upper bound for any
    re-weighting of these signals, not a setting to ship (it is tuned on the test set);
  - cross-validated: weights fitted on a random half of the queries, scored on the other half
    (both ways, 3 random splits), beside the starting weights (the engine's defaults) on the
    same held-out halves: what learning the weights would honestly gain.
Signals per product: min-max BM25 and cosine over the result set, the full-match flag (when at
least `relax_below` products have it), the share of query words it contains (the engine's), raw cosine, share of query words in the title, share of
adjacent query-word pairs side by side in the title (gated by full match), whether the last
query word (usually the product type) is in the title, and title exactness (share of title
words that are query words). Titles are tokenised with the index's own analyzer.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from benchmarks.metrics import ndcg_at_k
from benchmarks.relevance import cached_index, load_queries
from indexer.config import IndexConfig
from indexer.lexical import query_analyzer
from indexer.normalize import normalize
from search.engine import SearchEngine
from search.models import Mode, SearchRequest
from search.settings import Settings

SIGNALS = ("bm25", "cosine", "full_match", "words", "raw_cosine", "title_coverage", "title_pairs", "head_word", "exactness")
# The engine's default weights for the signals it uses.
START = {"bm25": 0.5, "cosine": 0.5, "full_match": 0.3, "words": 1.0, "title_pairs": 0.2}


def _minmax(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    if not mask.any():
        return np.zeros(len(values))
    low, high = values[mask].min(), values[mask].max()
    return np.clip((values - low) / (high - low), 0, 1) if high > low else (values > 0).astype(float)


def collect(dataset: Path) -> list[dict]:
    """Each query's result set: product ids, judgements, signals and the engine's order."""
    queries, qrels = load_queries(dataset)
    index_dir = cached_index(dataset / "catalog.jsonl", IndexConfig())
    settings = Settings(index_dir=index_dir)
    settings.analytics.search_log = False
    engine = SearchEngine(index_dir, settings)
    analyzer = query_analyzer()
    snapshot = engine.snapshot
    rows = []
    for qid, text in queries.items():
        ctx = engine._run(SearchRequest(q=text, mode=Mode.hybrid, prefix=False), snapshot, correct_short_words=False)
        c = ctx.candidates
        members = np.flatnonzero(c.member)
        if not len(members):
            continue
        words = analyzer.analyze(normalize(text))
        pairs = set(zip(words, words[1:], strict=False))
        features = []
        for i in members:
            product = snapshot.products[int(c.ords[i])]
            title = analyzer.analyze(normalize(product.title)) if product else []
            in_title = set(title)
            features.append([
                sum(w in in_title for w in words) / max(1, len(words)),
                len(pairs & set(zip(title, title[1:], strict=False))) / len(pairs) if pairs else 0.0,
                1.0 if words and words[-1] in in_title else 0.0,
                sum(w in set(words) for w in title) / max(1, len(title)),
            ])
        extra = np.array(features)
        bm25, cosine = c.bm25[members], np.nan_to_num(c.cosine[members])
        full = c.full_match[members]
        matrix = np.column_stack([
            _minmax(bm25, bm25 > 0) * (bm25 > 0),
            _minmax(cosine, np.ones(len(members), bool)),
            full * (full.sum() >= settings.ranking.relax_below),
            c.coverage[members],
            cosine,
            extra[:, 0],
            extra[:, 1] * full,
            extra[:, 2],
            extra[:, 3],
        ])
        position = {int(m): k for k, m in enumerate(members)}
        order = [position[int(i)] for i in ctx.order if int(i) in position]
        ids = [snapshot.products[int(o)].id for o in c.ords[members]]
        rows.append({"ids": ids, "judged": qrels.get(qid, {}), "signals": matrix, "engine_order": order})
    engine.close()
    return rows


def score(rows: list[dict], weights: np.ndarray) -> float:
    values = []
    for row in rows:
        order = np.argsort(-(row["signals"] @ weights), kind="stable")[:10]
        values.append(ndcg_at_k([row["ids"][i] for i in order], row["judged"], 10))
    return float(np.mean(values))


def overfit(rows: list[dict]) -> tuple[float, dict[str, float]]:
    weights = np.array([START.get(name, 0.0) for name in SIGNALS])
    best = score(rows, weights)
    for step in (0.2, 0.1, 0.05):
        improved = True
        while improved:
            improved = False
            for j in range(len(SIGNALS)):
                for delta in (step, -step):
                    trial = weights.copy()
                    trial[j] += delta
                    value = score(rows, trial)
                    if value > best + 1e-5:
                        best, weights, improved = value, trial, True
    return best, dict(zip(SIGNALS, np.round(weights, 3).tolist(), strict=True))


def cross_validated(rows: list[dict], repeats: int = 3, seed: int = 0) -> tuple[float, float]:
    """(fitted weights, starting weights) nDCG@10 on held-out halves, averaged."""
    rng = np.random.default_rng(seed)
    start = np.array([START.get(name, 0.0) for name in SIGNALS])
    fitted, baseline = [], []
    for _ in range(repeats):
        shuffled = rng.permutation(len(rows))
        halves = [[rows[i] for i in shuffled[: len(rows) // 2]], [rows[i] for i in shuffled[len(rows) // 2 :]]]
        for train, test in (halves, halves[::-1]):
            _, weights = overfit(train)
            fitted.append(score(test, np.array([weights[name] for name in SIGNALS])))
            baseline.append(score(test, start))
    return float(np.mean(fitted)), float(np.mean(baseline))


def main() -> None:
    parser = argparse.ArgumentParser(description="Upper bounds for re-ranking the engine's result sets.")
    parser.add_argument("--dataset", type=Path, required=True)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    rows = collect(args.dataset)
    engine = float(np.mean([ndcg_at_k([r["ids"][i] for i in r["engine_order"][:10]], r["judged"], 10) for r in rows]))
    oracle = float(np.mean([
        ndcg_at_k(sorted(r["ids"], key=lambda pid, j=r["judged"]: -j.get(pid, 0))[:10], r["judged"], 10) for r in rows
    ]))
    ceiling, weights = overfit(rows)
    held_out, held_out_start = cross_validated(rows)
    result = {"dataset": args.dataset.name, "queries": len(rows), "engine": round(engine, 4), "oracle": round(oracle, 4),
              "overfit_linear": round(ceiling, 4), "overfit_weights": weights,
              "cross_validated_fitted": round(held_out, 4), "cross_validated_start_weights": round(held_out_start, 4)}
    print(f"{args.dataset.name}: {len(rows)} queries with results")
    print(f"  engine order            nDCG@10 {engine:.4f}")
    print(f"  overfit linear ceiling  nDCG@10 {ceiling:.4f}  weights {weights}")
    print(f"  held-out halves         nDCG@10 {held_out:.4f} fitted, {held_out_start:.4f} starting weights")
    print(f"  oracle order            nDCG@10 {oracle:.4f}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
