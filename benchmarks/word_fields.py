"""Field-aware word coverage: what a query word found only in the attributes or the description
should count for in the `words` stage, measured on several datasets at once.

    python -m benchmarks.word_fields --dataset ../shared/data/crowdflower \\
        --dataset benchmarks/.cache/fashion-queries --dataset benchmarks/.cache/sample-queries \\
        [--attributes 1,0.75,0.5,0.25,0] [--description 1,0.5,0.25,0] [--json OUT]

Every dataset is indexed once (benchmarks.relevance's cache); each pair of weights (title,
brand and categories count whole) runs every query in hybrid mode with otherwise default
settings, and the table gives nDCG@10 per dataset and their mean. attributes = description = 1
is the unweighted share of earlier versions. A weight is chosen on all datasets together, not
to suit one of them.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from benchmarks.relevance import cached_index, engine_runner, evaluate, load_queries
from indexer.config import IndexConfig
from search.engine import SearchEngine
from search.models import Mode
from search.settings import RankingSettings, Settings


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x.strip()]


def sweep(datasets: list[Path], attributes: list[float], description: list[float]) -> list[dict]:
    pairs = [(a, d) for a in attributes for d in description]
    scores: dict[tuple[float, float], dict[str, float]] = {pair: {} for pair in pairs}
    config = IndexConfig()
    for dataset in datasets:
        queries, qrels = load_queries(dataset)
        index_dir = cached_index(dataset / "catalog.jsonl", config)
        engine = SearchEngine(index_dir, Settings(index_dir=index_dir, index=config))
        engine.settings.analytics.search_log = False
        for a, d in pairs:
            weights = {"title": 1.0, "brand": 1.0, "categories": 1.0, "attributes": a, "description": d}
            engine.settings = engine.settings.model_copy(update={"ranking": RankingSettings(word_field_weights=weights)})
            engine._clear_caches(vectors=False)  # the query vectors do not depend on the weights
            ndcg = evaluate(engine_runner(engine, Mode.hybrid), queries, qrels)["ndcg@10"]
            scores[(a, d)][dataset.name] = ndcg
            print(f"{dataset.name:>16} attributes {a:.2f} description {d:.2f}  hybrid nDCG@10 {ndcg:.4f}", flush=True)
        engine.close()
    rows = []
    for (a, d), by_dataset in scores.items():
        mean = sum(by_dataset.values()) / len(by_dataset)
        rows.append({"attributes": a, "description": d, **by_dataset, "mean": round(mean, 4)})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", type=Path, action="append", required=True)
    parser.add_argument("--attributes", type=_floats, default=[1.0, 0.75, 0.5, 0.25, 0.0])
    parser.add_argument("--description", type=_floats, default=[1.0, 0.5, 0.25, 0.0])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    rows = sweep(args.dataset, args.attributes, args.description)
    names = [d.name for d in args.dataset]
    print("\n| attributes | description | " + " | ".join(names) + " | mean |")
    print("|---:|---:|" + "---:|" * (len(names) + 1))
    for row in sorted(rows, key=lambda r: -r["mean"]):
        print(f"| {row['attributes']:.2f} | {row['description']:.2f} | " + " | ".join(f"{row[n]:.4f}" for n in names) + f" | {row['mean']:.4f} |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
