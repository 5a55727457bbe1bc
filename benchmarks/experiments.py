"""Do A/B tests find a real uplift, and only real ones? Simulated shoppers on the real engine.

    python -m benchmarks.experiments [--products 1000] [--visitors 3000] [--aa-runs 200] \
        [--json benchmarks/results/experiments.json]

The shop is the generated sample catalog, indexed for real. Every product gets a hidden
*appeal* (probability a shopper who looks at it clicks, Beta(2, 6)) and *buy rate* (probability
a click ends in a purchase, Beta(1.5, 10)), unrelated to its text: relevance alone cannot know
them, behaviour can. A simulated visitor searches 1-3 popular queries, sees the first 10
results, looks at position i with probability 1/(i + 1) (position bias), clicks with the
product's appeal, buys with its buy rate (revenue = price); clicks and purchases go to the
event log naming the search, as a storefront sends them.

  1. Warm-up: visitors search under the default profile (pure relevance); Vitrine learns
     each product's position-corrected, smoothed click-through and conversion from the log.
  2. A/B test through the engine, the search log and GET /reports/experiments/{id}'s code:
     control = default profile, treatment = a popularity-aware profile (ctr 0.45, conversion
     0.45). The report must find the uplift significant.
  3. A/A tests: the same ranking in both variants, repeated `--aa-runs` times with fresh
     experiment ids (so fresh random splits) over newly simulated visitors; the share flagged
     significant at p < 0.05 must not exceed the nominal 5% beyond its sampling noise. The
     rankings are the engine's (computed once per query); only the clicks are re-simulated,
     then summed by the same report code.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from benchmarks.relevance import _cpu_model
from indexer import format as fmt
from indexer.build import build_index
from indexer.sample import generate_catalog
from search.analytics.reports import Outcome
from search.analytics.search_log import LoggedSearch
from search.behaviour import Event, EventType
from search.merchandising.experiments import Experiment, ExperimentBody, assign, report
from search.merchandising.profiles import ProfileBody
from search.merchandising.service import experiment_report
from search.models import SearchRequest
from search.service import SearchService
from search.settings import Settings

CACHE = Path(__file__).parent / ".cache" / "experiments"
RESULTS = Path(__file__).parent / "results" / "experiments.json"
PAGE = 10


@dataclass
class Shop:
    engine: SearchService  # the service: engine, stores and logs, as the API uses it
    queries: list[str]
    weights: list[float]
    appeal: dict[str, float]
    buy: dict[str, float]
    price: dict[str, float]


def open_shop(products: int, seed: int, index_dir: Path | None = None, embedder: Any = None) -> Shop:
    """The sample shop's index (built once into the cache, or `index_dir`: an index of the same
    generated catalog, e.g. the tests' own), its behaviour state wiped."""
    catalog = generate_catalog(products, seed)
    index_dir = index_dir or CACHE / f"sample-{products}-{seed}"
    try:
        fmt.current_version_dir(index_dir)
    except fmt.IndexNotFound:
        build_index(catalog, index_dir, progress=False)
    state = index_dir / "state"
    if state.exists():  # every run starts without behaviour, rules or experiments
        for path in state.iterdir():
            path.unlink()
    engine = SearchService.open(index_dir, Settings(index_dir=index_dir), embedder=embedder)
    rng = np.random.default_rng(seed)
    ids = [p.id for p in catalog]
    appeal = dict(zip(ids, rng.beta(2, 6, len(ids)).tolist(), strict=True))
    buy = dict(zip(ids, rng.beta(1.5, 10, len(ids)).tolist(), strict=True))
    price = {p.id: float(p.price or 30.0) for p in catalog}
    # Queries: the shop's most common category names, searched in proportion to their size.
    counts: dict[str, int] = {}
    for p in catalog:
        for c in p.categories:
            counts[c.lower()] = counts.get(c.lower(), 0) + 1
    top = sorted(counts.items(), key=lambda kv: -kv[1])[:15]
    return Shop(engine, [q for q, _ in top], [n for _, n in top], appeal, buy, price)


def shopper_outcome(shop: Shop, hits: list[str], rng: random.Random) -> list[tuple[str, int, bool, bool]]:
    """(product, position, carted, bought) for each click of one shopper on one results page.
    Half of the carts are bought, so a product's buy rate per click is kept."""
    out = []
    for position, product in enumerate(hits):
        if rng.random() < 1.0 / (position + 1) and rng.random() < shop.appeal[product]:
            carted = rng.random() < min(1.0, 2 * shop.buy[product])
            bought = carted and rng.random() < shop.buy[product] / min(1.0, 2 * shop.buy[product])
            out.append((product, position, carted, bought))
    return out


def simulate_visitors(shop: Shop, n: int, rng: random.Random, tag: str) -> None:
    """n visitors searching through the engine (logged), their clicks and purchases logged."""
    engine = shop.engine
    events: list[tuple[Event, float]] = []
    for i in range(n):
        visitor = f"{tag}-{i}"
        for query in rng.choices(shop.queries, shop.weights, k=rng.randint(1, 3)):
            result = engine.search(SearchRequest(q=query, visitor_id=visitor, limit=PAGE, personalize=False))
            now = time.time()
            for product, position, carted, bought in shopper_outcome(shop, [h.id for h in result.hits], rng):
                events.append((Event(type=EventType.click, visitor_id=visitor, product_id=product,
                                     search_id=result.search_id, position=position), now))
                if carted:
                    events.append((Event(type=EventType.add_to_cart, visitor_id=visitor, product_id=product,
                                         search_id=result.search_id), now))
                if bought:
                    events.append((Event(type=EventType.purchase, visitor_id=visitor, product_id=product,
                                         search_id=result.search_id, value=shop.price[product]), now))
    engine.visitors.events.append(events)
    engine.search_log.flush()


def ab_test(shop: Shop, visitors: int, rng: random.Random) -> dict[str, Any]:
    engine = shop.engine
    store = engine.merchandising.store
    store.put_profile("popular", ProfileBody(ctr=0.45, conversion=0.45, description="learned popularity"), "bench")
    engine.merchandising.popularity(force=True)
    experiment = store.start_experiment(ExperimentBody(name="popularity", variants=[
        {"name": "control", "share": 50}, {"name": "popular", "share": 50, "profile": "popular"}]), "bench")
    engine.merchandising.changed()
    simulate_visitors(shop, visitors, rng, "ab")
    store.stop_experiment(experiment.id, "bench")
    engine.merchandising.changed()
    window = engine.settings.analytics.attribution_window_minutes * 60.0
    return experiment_report(store, engine.search_log, engine.visitors.events, window, experiment.id)


def aa_tests(shop: Shop, runs: int, visitors: int, rng: random.Random) -> dict[str, Any]:
    """Repeated A/A tests: same ranking for both variants, fresh split each run."""
    rankings = {q: [h.id for h in shop.engine.search(SearchRequest(q=q, limit=PAGE, personalize=False), record=False).hits]
                for q in shop.queries}
    body = ExperimentBody(name="aa", variants=[{"name": "a", "share": 50}, {"name": "b", "share": 50}])
    flagged = {"converted": 0, "revenue": 0, "clicked": 0, "carted": 0}
    for _ in range(runs):
        experiment_id = uuid.uuid4().hex[:12]
        experiment = Experiment(id=experiment_id, status="stopped", started_at=0.0, created_by="bench",
                                **body.model_dump())
        searches, outcomes = [], {}
        for i in range(visitors):
            visitor = f"aa-{experiment_id}-{i}"
            variant = assign(body, experiment_id, visitor).name
            for query in rng.choices(shop.queries, shop.weights, k=rng.randint(1, 3)):
                sid = uuid.uuid4().hex
                searches.append(LoggedSearch(sid, 0.0, query, query, len(rankings[query]), None, "[]", visitor, None,
                                             None, None, None, variant, 1.0, 0, experiment=experiment_id))
                o = Outcome()
                for product, _position, carted, bought in shopper_outcome(shop, rankings[query], rng):
                    o.clicks += 1
                    o.carts += carted
                    if bought:
                        o.purchases += 1
                        o.revenue += shop.price[product]
                if o.clicks:
                    outcomes[sid] = o
        result = report(experiment, searches, outcomes)
        uplift = result["variants"][1]["uplift"]
        for metric in flagged:
            flagged[metric] += bool(uplift[metric] and uplift[metric]["significant"])
    # One-sided binomial test of "flagged more often than 5%".
    return {
        "runs": runs, "visitors_per_run": visitors,
        **{f"false_positive_rate_{m}": round(k / runs, 4) for m, k in flagged.items()},
        **{f"p_above_nominal_{m}": round(float(stats.binomtest(k, runs, 0.05, alternative="greater").pvalue), 4)
           for m, k in flagged.items()},
    }


def main(argv: list[str] | None = None, embedder: Any = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--products", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=1500, help="visitors before the test (popularity learning)")
    parser.add_argument("--visitors", type=int, default=3000, help="visitors in the A/B test")
    parser.add_argument("--aa-runs", type=int, default=200)
    parser.add_argument("--aa-visitors", type=int, default=1000)
    parser.add_argument("--json", type=Path, default=RESULTS)
    parser.add_argument("--index-dir", type=Path, default=None,
                        help="an index of generate_catalog(products, seed) to use (its state is wiped)")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    started = time.time()
    shop = open_shop(args.products, args.seed, args.index_dir, embedder)
    try:
        simulate_visitors(shop, args.warmup, rng, "warmup")
        ab = ab_test(shop, args.visitors, rng)
        aa = aa_tests(shop, args.aa_runs, args.aa_visitors, rng)
    finally:
        shop.engine.close()
    print(f"\nA/B test: default (relevance only) vs popularity-aware profile, {args.visitors} visitors")
    print(f"{'variant':<10}{'searches':>9}{'visitors':>9}{'ctr':>8}{'conv/search':>12}{'conv/visitor':>13}"
          f"{'rev/visitor':>12}")
    for row in ab["variants"]:
        print(f"{row['variant']:<10}{row['searches']:>9}{row['visitors']:>9}{row['ctr']:>8.3f}"
              f"{row['conversion_rate']:>12.4f}{row['visitor_conversion_rate']:>13.4f}{row['revenue_per_visitor']:>12.2f}")
    for metric, u in ab["variants"][1]["uplift"].items():
        if u:
            print(f"  uplift {metric:<10} {u['difference']:+.4f} ({(u['relative'] or 0):+.1%}) "
                  f"95% CI [{u['ci95'][0]:+.4f}, {u['ci95'][1]:+.4f}] p={u['p_value']:.4g}"
                  f"{'  significant' if u['significant'] else ''}")
    for warning in ab["warnings"]:
        print(f"  warning: {warning}")
    print(f"\nA/A tests: {aa['runs']} runs x {aa['visitors_per_run']} visitors; nominal false-positive rate 5%")
    for metric in ("converted", "revenue", "clicked", "carted"):
        print(f"  {metric:<10} flagged {aa[f'false_positive_rate_{metric}']:.1%} "
              f"(binomial p of exceeding 5%: {aa[f'p_above_nominal_{metric}']:.3f})")
    out = {
        "machine": {"cpu": _cpu_model(), "python": platform.python_version()},
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "ab": ab, "aa": aa, "seconds": round(time.time() - started, 1),
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=2))
    print(f"\n{out['seconds']} s; written to {args.json}")
    return out


if __name__ == "__main__":
    main()
