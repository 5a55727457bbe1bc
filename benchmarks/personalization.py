"""Does personalization put the right products first? Simulated shoppers through the real API.

    python -m benchmarks.personalization --catalog ../shared/data/fashion/catalog.jsonl \
        [--visitors 500] [--json benchmarks/results/personalization.json]

Each simulated visitor has hidden preferences: gender, a clothing size, a shoe size, a colour
and a brand. They browse: search a few queries of their gender through `GET /search`, click
products of their colour or brand, add the variant in their size to the cart when it is in
stock, sometimes buy, all sent to `POST /events`. Then, in a later visit, they search generic
queries ("shirt", "dress", "shoes for women", "casual t-shirt"...) with and without
personalization (`X-Personalize: off`). For each top 10 we measure:
  - in size: share of hits the visitor can buy in their size (clothing in their size, shoes in
    their shoe size, one-size items in stock), over searches where at least 10 such products
    are among the first 100 results;
  - colour / brand: share of hits in the visitor's colour / brand;
  - category: share of hits in the query's own category (the relevance guard).
Goals (the personalization issue): in size >= 95%, colour share at least doubled, category
share not lower than unpersonalized.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from fastapi.testclient import TestClient
from tqdm import tqdm

from benchmarks.relevance import _cpu_model, cached_index
from indexer.catalog import Product
from indexer.config import IndexConfig
from search.api.app import create_app
from search.models import SearchRequest
from search.service import SearchService
from search.settings import Settings

CLOTHING_SIZES = ["XS", "S", "M", "L", "XL", "XXL"]
CLOTHING_SIZE_WEIGHTS = [1, 3, 4, 4, 2, 1]
SHOE_SIZES = {"Women": [str(s) for s in range(36, 41)], "Men": [str(s) for s in range(40, 46)]}
BROWSE = {
    "Women": ["women top", "women kurta", "dress", "women jeans", "women casual shoes", "women tshirt", "heels", "women handbag"],
    "Men": ["men tshirt", "men shirt", "men jeans", "men casual shoes", "men sports shoes", "men trousers", "men watch", "men jacket"],
}
# Generic evaluation queries and what "still in the query's category" means for each
# (values that must all appear in the product's category path).
EVAL_QUERIES: dict[str, list[str]] = {
    "shirt": ["Shirts"],
    "dress": ["Dresses"],
    "shoes for women": ["Women", "Footwear"],
    "casual t-shirt": ["Tshirts"],
    "jeans": ["Jeans"],
    "watch": ["Watches"],
    "sports shoes": ["Sports Shoes"],
    "handbag": ["Handbags"],
    "kurta": ["Kurtas"],
    "top": ["Tops"],
    "casual shoes": ["Casual Shoes"],
    "track pants": ["Track Pants"],
}


@dataclass
class Visitor:
    id: str
    gender: str
    size: str
    shoe_size: str
    colour: str
    brand: str

    def fits(self, product: Product) -> bool:
        """Can this visitor buy it in their size right now?"""
        if not product.in_stock:
            return False
        sizes = set(product.sizes)
        if sizes & set(CLOTHING_SIZES):
            return self.size in product.available_sizes
        if any(s.isdigit() for s in sizes):
            return self.shoe_size in product.available_sizes
        return True  # one size


def _visitors(products: list[Product], n: int, rng: random.Random) -> list[Visitor]:
    colours = Counter(p.attributes.get("colour") for p in products if p.attributes.get("colour"))
    top_colours = [c for c, _ in colours.most_common(12)]
    brands = {g: Counter(p.brand for p in products if p.brand and p.attributes.get("gender") == g) for g in ("Men", "Women")}
    out = []
    for i in range(n):
        gender = rng.choice(["Men", "Women"])
        out.append(Visitor(
            id=f"sim-{i:04d}", gender=gender,
            size=rng.choices(CLOTHING_SIZES, CLOTHING_SIZE_WEIGHTS)[0],
            shoe_size=rng.choice(SHOE_SIZES[gender]),
            colour=rng.choice(top_colours),
            brand=rng.choice([b for b, _ in brands[gender].most_common(15)]),
        ))
    return out


def _browse(client: TestClient, engine: SearchService, visitor: Visitor, rng: random.Random, now: float) -> int:
    """One visit: searches, clicks on liked products, carts their size, sometimes buys."""
    session = f"{visitor.id}-browse"
    events: list[dict[str, Any]] = []
    ts = now - 3 * 86400  # a few days before the evaluation visit
    queries = BROWSE[visitor.gender]
    shoes = [q for q in queries if "shoes" in q or "heels" in q]
    # Every visitor looks at clothes and at shoes, and buys (sizes are learned from purchases).
    browse = [rng.choice(shoes), rng.choice([q for q in queries if q not in shoes])]
    browse += rng.sample([q for q in queries if q not in browse], 2)
    carted: set[str] = set()
    for query in browse:
        body = client.get("/search", params={"q": query, "visitor_id": visitor.id, "session_id": session, "limit": 48}).json()
        liked = []
        for position, hit in enumerate(body["hits"]):
            product = engine.get_product(hit["id"])
            if product.attributes.get("colour") == visitor.colour or product.brand == visitor.brand:
                liked.append((position, product))
        for position, product in liked[:3]:
            ts += 20
            base = {"visitor_id": visitor.id, "session_id": session, "product_id": product.id, "ts": ts}
            events.append({**base, "type": "click", "search_id": body["search_id"], "position": position})
            events.append({**base, "type": "view"})
            wanted = visitor.shoe_size if any(s.isdigit() for s in product.sizes) else visitor.size
            variant = next((v for v in product.variants if v.size in (wanted, "ONE SIZE") and v.stock > 0), None)
            system = "shoes" if any(s.isdigit() for s in product.sizes) else "clothes" if variant and variant.size in CLOTHING_SIZES else "none"
            if variant is not None and (system not in carted or rng.random() < 0.5):
                carted.add(system)
                events.append({**base, "type": "add_to_cart", "variant_sku": variant.sku, "ts": ts + 5})
                if rng.random() < 0.4:
                    events.append({**base, "type": "purchase", "variant_sku": variant.sku, "ts": ts + 60, "value": product.price})
    # A shopper who found nothing they liked in their size still buys something that fits.
    for system, query in (("shoes", browse[0]), ("clothes", browse[1])):
        if system in carted:
            continue
        body = client.get("/search", params={"q": query, "visitor_id": visitor.id, "session_id": session, "limit": 48}).json()
        for position, hit in enumerate(body["hits"]):
            product = engine.get_product(hit["id"])
            wanted = visitor.shoe_size if system == "shoes" else visitor.size
            variant = next((v for v in product.variants if v.size == wanted and v.stock > 0), None)
            if variant is not None:
                ts += 30
                base = {"visitor_id": visitor.id, "session_id": session, "product_id": product.id, "ts": ts}
                events.append({**base, "type": "click", "search_id": body["search_id"], "position": position})
                events.append({**base, "type": "purchase", "variant_sku": variant.sku, "value": product.price})
                break
    if events:
        response = client.post("/events", json={"events": events})
        assert response.status_code == 202, response.text
    return len(events)


def _shares(engine: SearchService, visitor: Visitor, ids: list[str], category: list[str]) -> dict[str, float]:
    products = [engine.get_product(i) for i in ids[:10]]
    n = max(len(products), 1)
    return {
        "in_size": sum(visitor.fits(p) for p in products) / n,
        "colour": sum(p.attributes.get("colour") == visitor.colour for p in products) / n,
        "brand": sum(p.brand == visitor.brand for p in products) / n,
        "category": sum(all(c in p.categories for c in category) for p in products) / n,
    }


def run(
    catalog: Path, n_visitors: int, queries_per_visitor: int, seed: int, config: IndexConfig, impact: float | None = None
) -> dict[str, Any]:
    index_dir = cached_index(catalog.resolve(), config)
    import tempfile

    state = Path(tempfile.mkdtemp(prefix="vitrine-personalization-"))
    personalization: dict[str, Any] = {"profile_attributes": ["material", "pattern", "gender", "usage"]}  # usage: casual, sports...
    if impact is not None:
        personalization["impact"] = impact
    # Every simulated shopper comes from the one test client: no per-client rate limit.
    limits = {"per_client_per_second": 0, "per_key_per_second": 0}
    settings = Settings(index_dir=index_dir, data_dir=state, personalization=personalization, limits=limits)
    engine = SearchService.open(index_dir, settings)
    rng = random.Random(seed)
    products = [p for p in engine.engine.snapshot.products if p is not None]
    visitors = _visitors(products, n_visitors, rng)
    app = create_app(settings, service=engine)
    totals: dict[str, dict[str, list[float]]] = {"personalized": {}, "unpersonalized": {}}
    skipped_in_size = 0
    events = 0
    latency: dict[str, list[float]] = {"personalized": [], "unpersonalized": []}
    now = time.time()
    with TestClient(app) as client:
        for visitor in tqdm(visitors, desc="visitors", unit="visitor"):
            events += _browse(client, engine, visitor, rng, now)
            for query in rng.sample(list(EVAL_QUERIES), queries_per_visitor):
                params = {"q": query, "visitor_id": visitor.id, "session_id": f"{visitor.id}-later", "limit": 100}
                for label, headers in (("personalized", {}), ("unpersonalized", {"X-Personalize": "off"})):
                    body = client.get("/search", params=params, headers=headers).json()
                    ids = [h["id"] for h in body["hits"]]
                    shares = _shares(engine, visitor, ids, EVAL_QUERIES[query])
                    fitting = sum(visitor.fits(engine.get_product(i)) for i in ids)
                    for name, value in shares.items():
                        if name == "in_size" and fitting < 10:
                            skipped_in_size += label == "personalized"
                            continue
                        totals[label].setdefault(name, []).append(value)
        # Library-level latency of the same searches (the HTTP layer's cost is the same for both).
        for visitor in visitors[:200]:
            for query in list(EVAL_QUERIES)[:6]:
                for label, personalize in (("personalized", True), ("unpersonalized", False)):
                    request = SearchRequest(q=query, visitor_id=visitor.id, session_id="x", personalize=personalize)
                    started = time.perf_counter()
                    engine.search(request)
                    latency[label].append((time.perf_counter() - started) * 1000)
    engine.close()
    summary = {label: {name: float(np.mean(values)) for name, values in metrics.items()} for label, metrics in totals.items()}
    p50 = {label: float(np.percentile(values, 50)) for label, values in latency.items()}
    goals = {
        "in_size_at_least_95pct": summary["personalized"]["in_size"] >= 0.95,
        "colour_share_at_least_doubled": summary["personalized"]["colour"] >= 2 * summary["unpersonalized"]["colour"],
        "category_share_not_lower": summary["personalized"]["category"] >= summary["unpersonalized"]["category"] - 1e-9,
    }
    return {
        "catalog": str(catalog), "products": len(products), "visitors": n_visitors, "events": events,
        "searches_per_visitor": queries_per_visitor, "in_size_searches_without_10_fitting": skipped_in_size,
        "impact": engine.settings.personalization.impact, "top10": summary, "p50_ms_cached_retrieval": p50,
        "personalization_overhead_p50_ms": p50["personalized"] - p50["unpersonalized"],
        "goals": goals,
        "machine": {"cpu": _cpu_model(), "cores": __import__("os").cpu_count(), "python": platform.python_version()},
    }


def print_table(result: dict[str, Any]) -> None:
    top = result["top10"]
    print(f"\n{result['visitors']} visitors, {result['events']} events, {result['products']} products")
    print(f"{'top-10 share':<14}{'unpersonalized':>16}{'personalized':>14}{'ratio':>8}")
    for name in ("in_size", "colour", "brand", "category"):
        a, b = top["unpersonalized"][name], top["personalized"][name]
        print(f"{name:<14}{a:>16.3f}{b:>14.3f}{(b / a if a else float('inf')):>8.2f}")
    p50 = result["p50_ms_cached_retrieval"]
    print(f"p50 (repeated queries, in-process): {p50['unpersonalized']:.2f} ms plain, {p50['personalized']:.2f} ms personalized")
    for goal, met in result["goals"].items():
        print(f"  {goal}: {'met' if met else 'NOT met'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--catalog", type=Path, required=True)
    parser.add_argument("--visitors", type=int, default=500)
    parser.add_argument("--queries", type=int, default=4, help="evaluation searches per visitor")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--impact", type=float, help="personalization.impact (default: the setting's default)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    result = run(args.catalog, args.visitors, args.queries, args.seed, IndexConfig(), args.impact)
    print_table(result)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
