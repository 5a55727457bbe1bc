"""Ranking settings swept over every dataset, and chosen honestly (cross-validated, or elsewhere).

    python -m benchmarks.sweep                          # pseudo-relevance feedback (search/stages/feedback.py)
    python -m benchmarks.sweep --grid normalisation     # convex fusion's normalisation x semantic weight
    python -m benchmarks.sweep --dataset DIR ...        # other datasets (repeatable)

Default datasets: CrowdFlower and the generated fashion and sample-shop queries. Every query
of every dataset runs through the real engine in hybrid mode with default settings (stock
stage included, as `benchmarks.relevance` reports hybrid), once per setting of the grid: a
few `ranking.*` values changed over the defaults, the first setting of each grid being the
baseline the others are compared with (feedback off; min-max at semantic weight 0.5).
Retrieval is shared between settings (the engine caches it per query text), only the ranking
stages run again.

Grids (fixed before any figure was seen):
  - feedback: `feedback_weight` (Rocchio's beta) x `feedback_docs` (how many of the best
    products the query vector moves towards); weight 0 = the stage does nothing;
  - normalisation: `fusion_normalisation` (min-max, z-score, rank) x `semantic_weight`.

Reported per dataset, nDCG@10:
  - off: the grid's first setting (the baseline);
  - every grid setting (in-sample: each is chosen knowing this dataset's judgements);
  - lodo: the setting that is best on the *other* datasets (mean of their gains over off),
    scored on this one: how a choice made elsewhere carries over to an unseen catalog;
  - cv: query-level 5-fold cross-validation — each fold's queries scored with the setting that
    is best on the other folds of this dataset plus every other dataset.
Also per setting: p50 and p99 of the time spent in the fuse and feedback stages (ms, from the
engine's own stage timings; retrieval is cached, so this is the cost a setting can change).
The grid was fixed before any figure was seen.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
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

ROOT = Path(__file__).parent
RESULTS = ROOT / "results" / "sweep.json"
FOLDS = 5
SEED = 1
RANKERS_TIMED = ("fuse", "feedback")

Setting = tuple[tuple[str, Any], ...]  # ranking settings changed, as (name, value) pairs

_FEEDBACK: list[Setting] = [(("feedback_weight", 0.0),)]
_FEEDBACK += [(("feedback_weight", w), ("feedback_docs", k)) for w in (0.25, 0.5, 1.0, 2.0, 4.0) for k in (3, 5, 10)]
_NORMALISATION: list[Setting] = [(("fusion_normalisation", "minmax"), ("semantic_weight", 0.5))]
_NORMALISATION += [
    (("fusion_normalisation", n), ("semantic_weight", w))
    for n in ("minmax", "zscore", "rank") for w in (0.3, 0.4, 0.5, 0.6, 0.7) if (n, w) != ("minmax", 0.5)
]
GRIDS: dict[str, list[Setting]] = {"feedback": _FEEDBACK, "normalisation": _NORMALISATION}


def label(setting: Setting) -> str:
    return " ".join(f"{name}={value}" for name, value in setting)


def sweep(dataset: Path, settings_grid: list[Setting]) -> dict[str, Any]:
    """Per setting, per query nDCG@10 of hybrid search (default pipeline, stock included)."""
    queries, qrels = load_queries(dataset)
    index_dir = cached_index(dataset / "catalog.jsonl", IndexConfig())
    engine = SearchEngine(index_dir, Settings(index_dir=index_dir))
    default = engine.settings.ranking.model_copy()
    scores: dict[Setting, np.ndarray] = {}
    timing: dict[Setting, tuple[float, float]] = {}
    for setting in settings_grid:
        for name in type(default).model_fields:
            setattr(engine.settings.ranking, name, getattr(default, name))
        for name, value in setting:
            setattr(engine.settings.ranking, name, value)
        per_query, ranking_ms = [], []
        for qid, text in queries.items():
            result = engine.search(SearchRequest(q=text, mode=Mode.hybrid, limit=10, prefix=False, explain=True))
            per_query.append(ndcg_at_k([h.id for h in result.hits], qrels.get(qid, {}), 10))
            # Time spent in the ranking stages that a setting can change (retrieval is cached).
            timings = (result.debug or {}).get("timings_ms", {})
            ranking_ms.append(sum(timings.get(name, 0.0) for name in RANKERS_TIMED))
        scores[setting] = np.array(per_query)
        timing[setting] = (float(np.percentile(ranking_ms, 50)), float(np.percentile(ranking_ms, 99)))
        print(f"  {dataset.name:<18} {label(setting):<50} nDCG@10 {scores[setting].mean():.4f}   "
              f"fuse+feedback p50 {timing[setting][0]:.3f} ms, p99 {timing[setting][1]:.3f} ms", flush=True)
    engine.close()
    return {"name": dataset.name, "scores": scores, "timing": timing}


def best(gains: list[dict[Setting, float]], settings_grid: list[Setting]) -> Setting:
    """The setting with the largest mean gain over `off` across the given groups (ties: the
    gentler setting, i.e. the earlier one in the grid)."""
    return max(settings_grid, key=lambda s: (float(np.mean([g[s] for g in gains])), -settings_grid.index(s)))


def evaluate(datasets: list[dict[str, Any]], settings_grid: list[Setting]) -> dict[str, Any]:
    off = settings_grid[0]
    report: dict[str, Any] = {}
    for d in datasets:
        others = [o for o in datasets if o is not d]
        other_gains = [{s: float(o["scores"][s].mean() - o["scores"][off].mean()) for s in settings_grid} for o in others]
        lodo_setting = best(other_gains, settings_grid) if others else off
        n = len(d["scores"][off])
        cv = np.zeros(n)
        chosen = []
        for held in np.array_split(np.random.default_rng(SEED).permutation(n), FOLDS):
            train = np.setdiff1d(np.arange(n), held)
            own = {s: float(d["scores"][s][train].mean() - d["scores"][off][train].mean()) for s in settings_grid}
            setting = best([own, *other_gains], settings_grid)
            chosen.append(setting)
            cv[held] = d["scores"][setting][held]
        base = d["scores"][off]
        entry = {
            "queries": n,
            "off": round(float(base.mean()), 4),
            "grid": {label(s): round(float(d["scores"][s].mean()), 4) for s in settings_grid},
            "fuse_feedback_ms_p50_p99": {label(s): [round(v, 3) for v in d["timing"][s]] for s in settings_grid},
            "lodo_setting": label(lodo_setting), "lodo": round(float(d["scores"][lodo_setting].mean()), 4),
            "cv_settings": [label(s) for s in chosen], "cv": round(float(cv.mean()), 4),
            "cv_minus_off_stderr": round(float(np.std(cv - base) / np.sqrt(n)), 4),
            "cv_better": int((cv > base + 1e-9).sum()), "cv_worse": int((cv < base - 1e-9).sum()),
        }
        report[d["name"]] = entry
        print(f"{d['name']:<18} off {entry['off']:.4f}  lodo {entry['lodo']:.4f} ({label(lodo_setting)})  "
              f"cv {entry['cv']:.4f} (±{entry['cv_minus_off_stderr']:.4f}; better {entry['cv_better']}, worse {entry['cv_worse']})", flush=True)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description="Sweep ranking settings over the datasets; choose by cross-validation and leave-one-dataset-out.")
    parser.add_argument("--grid", choices=sorted(GRIDS), default="feedback")
    parser.add_argument("--dataset", type=Path, action="append", help="benchmark dataset dir (repeatable)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    started = time.perf_counter()
    settings_grid = GRIDS[args.grid]
    datasets = [sweep(path, settings_grid) for path in (args.dataset or DEFAULT_DATASETS)]
    print(f"swept {len(settings_grid)} settings in {time.perf_counter() - started:.0f} s", flush=True)
    report = {"grid": args.grid, "settings": [label(s) for s in settings_grid], "folds": FOLDS, "machine": platform.machine(),
              "datasets": evaluate(datasets, settings_grid)}
    out = args.json or RESULTS.with_name(f"sweep-{args.grid}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
