"""Query latency: the sample shop at 10k and 100k products, a realistic mix, in-process and HTTP.

    python -m benchmarks.latency [--sizes 10000,100000] [--queries 2000] [--http] [--peers]
                                 [--json benchmarks/results/latency.json] [--quick]
                                 [--skip-personalization] [--compare-capped]

Indexes are built once per size with the default settings and cached in benchmarks/.cache/.
The query mix (benchmarks/querymix.py) repeats head queries with a Zipf distribution and adds
long-tail, typo, prefix and filtered queries. Latencies are reported separately for unseen
queries (first occurrence), repeated ones (retrieval cached), filtered ones (all, and unseen
only), and sorted ones (the mix's query texts again, sorted by price or newness). Peers run the
unique query texts of the same mix on the same catalog; a peer that needs a query vector
(LanceDB) is timed including the same query encoder Vitrine uses, as Vitrine is.
--compare-capped runs the mix again on two fresh engines, request by request: exact results
(the default) and ranking.exact_results off (counts and sorting over the ranked pool, filters
masking the unfiltered pool, as before issue 17), and prints what exactness costs filtered and
sorted requests, measured under the same load.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.indexing import machine
from benchmarks.querymix import MixedQuery, build_mix
from benchmarks.servers import free_port
from indexer import format as fmt
from indexer.build import build_index, products_checksum
from indexer.sample import generate_catalog
from search.models import SearchRequest, Sort
from search.service import SearchService
from search.settings import Settings

CACHE = Path(__file__).parent / ".cache" / "latency"
ROOT = Path(__file__).parent.parent


def stats(samples_ms: list[float]) -> dict[str, float]:
    if not samples_ms:
        return {"n": 0}
    a = np.asarray(samples_ms)
    return {
        "n": len(a),
        "p50_ms": round(float(np.percentile(a, 50)), 2),
        "p95_ms": round(float(np.percentile(a, 95)), 2),
        "p99_ms": round(float(np.percentile(a, 99)), 2),
        "qps": round(1000.0 / float(a.mean()), 1),
    }


def cached_sample_index(size: int) -> tuple[Path, list]:
    products = generate_catalog(size, seed=7)
    index_dir = CACHE / f"sample-{size}"
    checksum = products_checksum(products)
    try:
        if fmt.read_manifest(fmt.current_version_dir(index_dir)).catalog_checksum == checksum:
            return index_dir, products
    except (fmt.IndexNotFound, fmt.UnsupportedIndexFormat):
        pass
    build_index(products, index_dir, checksum=checksum)
    return index_dir, products


def sorted_requests(mix: list[MixedQuery], n: int, seed: int = 3) -> list[SearchRequest]:
    """The mix's query texts again, each sorted by price or newness (no filter): most retrievals
    are cached by then, so this measures what sorting itself costs."""
    import random

    rng = random.Random(seed)
    texts = list(dict.fromkeys(item.request.q for item in mix))[:n]
    return [SearchRequest(q=q, sort=rng.choice([Sort.price_asc, Sort.price_desc, Sort.newest]), limit=20) for q in texts]


def run_in_process(engine: SearchService, mix: list[MixedQuery], sorts: list[SearchRequest] | None = None) -> dict[str, dict[str, float]]:
    seen: set[tuple] = set()
    groups: dict[str, list[float]] = {"all": [], "unseen": [], "repeated": [], "filtered": [], "filtered_unseen": [], "sorted": []}
    for item in mix:
        key = (item.request.q, item.request.filters.model_dump_json(), item.request.sort)
        started = time.perf_counter()
        engine.search(item.request)
        ms = (time.perf_counter() - started) * 1000
        groups["all"].append(ms)
        groups["repeated" if key in seen else "unseen"].append(ms)
        if not item.request.filters.is_empty():
            groups["filtered"].append(ms)
            if key not in seen:
                groups["filtered_unseen"].append(ms)
        seen.add(key)
    for request in sorts or []:
        started = time.perf_counter()
        engine.search(request)
        groups["sorted"].append((time.perf_counter() - started) * 1000)
    return {name: stats(values) for name, values in groups.items()}


def run_interleaved(engines: dict[str, SearchService], mix: list[MixedQuery], sorts: list[SearchRequest]) -> dict[str, Any]:
    """The same requests on several engines over the same index, request by request (the first
    engine alternates), so a shared machine's load falls on all of them alike. Filtered and
    sorted requests are reported per engine, with the p50 of each engine over the first's and
    the median of the per-request differences."""
    names = list(engines)
    seen: set[tuple] = set()
    groups = {name: {"filtered": [], "filtered_unseen": [], "sorted": [], "unfiltered": []} for name in names}
    requests = [(item.request, None) for item in mix] + [(request, "sorted") for request in sorts]
    for i, (request, kind) in enumerate(requests):
        key = (request.q, request.filters.model_dump_json(), request.sort)
        order = names if i % 2 == 0 else names[::-1]
        for name in order:
            started = time.perf_counter()
            engines[name].search(request)
            ms = (time.perf_counter() - started) * 1000
            if kind == "sorted":
                groups[name]["sorted"].append(ms)
            elif request.filters.is_empty():
                groups[name]["unfiltered"].append(ms)
            else:
                groups[name]["filtered"].append(ms)
                if key not in seen:
                    groups[name]["filtered_unseen"].append(ms)
        seen.add(key)
    out: dict[str, Any] = {name: {group: stats(values) for group, values in g.items()} for name, g in groups.items()}
    base = names[0]
    for name in names[1:]:
        out[f"{name}_over_{base}"] = {
            group: {
                "p50_difference_ms": round(out[name][group]["p50_ms"] - out[base][group]["p50_ms"], 2),
                "median_paired_difference_ms": round(float(np.median(np.subtract(groups[name][group], groups[base][group]))), 2),
            }
            for group in groups[base]
            if groups[base][group]
        }
    return out


def run_http(index_dir: Path, mix: list[MixedQuery]) -> dict[str, dict[str, float]]:
    """The mix over HTTP to a real `vitrine serve`, on one kept-alive connection of the
    standard library's http.client: the client the Typesense peer is timed with (httpx adds
    about a millisecond of its own per request on this machine, which is not the server's)."""
    import http.client

    port = free_port()
    # A scratch state directory, as the in-process run has: by default the server keeps its
    # search log beside the cached index, and a later run's server would start by encoding the
    # previous runs' head queries (warm_queries), so their first search here would not be unseen.
    state = tempfile.mkdtemp(prefix="vitrine-latency-http-")
    server = subprocess.Popen(
        [sys.executable, "-m", "search.cli", "--log-level", "warning", "serve", "--index-dir", str(index_dir), "--port", str(port)],
        # One client sending back to back: the per-client rate limit (50/s) would answer 429.
        cwd=ROOT, env={**os.environ, "HF_HUB_OFFLINE": "1", "VITRINE_LIMITS__PER_CLIENT_PER_SECOND": "0", "VITRINE_DATA_DIR": state},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def request(method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        connection.request(method, path, body=body, headers={"content-type": "application/json"})
        response = connection.getresponse()
        return response.status, response.read()

    try:
        deadline = time.monotonic() + 600  # a loaded machine takes minutes to load the model
        while True:
            try:
                if request("GET", "/health")[0] == 200:
                    break
            except (OSError, http.client.HTTPException):
                connection.close()
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError("the server did not start")
            time.sleep(0.2)
        seen: set[str] = set()
        groups: dict[str, list[float]] = {"all": [], "unseen": [], "repeated": []}
        for item in mix:
            body = {"q": item.request.q, "sort": item.request.sort.value, "limit": item.request.limit,
                    **item.request.filters.model_dump(exclude_none=True, exclude_defaults=True)}
            key = json.dumps(body, sort_keys=True)
            started = time.perf_counter()
            status, payload = request("POST", "/search", key.encode())
            ms = (time.perf_counter() - started) * 1000
            if status != 200:
                raise RuntimeError(f"/search answered {status}: {payload[:200]!r}")
            groups["all"].append(ms)
            groups["repeated" if key in seen else "unseen"].append(ms)
            seen.add(key)
        return {name: stats(values) for name, values in groups.items()}
    finally:
        connection.close()
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(state, ignore_errors=True)


def run_peers(engine: SearchService, products: list, mix: list[MixedQuery], names: list[str] | None = None) -> dict[str, dict[str, Any]]:
    from benchmarks.peers import PEERS

    snapshot = engine.engine.snapshot
    embeddings = np.ascontiguousarray(snapshot.vectors[[snapshot.id_to_ord[p.id] for p in products]])
    texts = list(dict.fromkeys(item.request.q for item in mix))
    out: dict[str, dict[str, Any]] = {}
    for name, factory in PEERS.items():
        if names and name not in names:
            continue
        peer = factory()
        needs_vector = "lancedb" in name
        with tempfile.TemporaryDirectory() as workdir:
            peer.build(products, embeddings if needs_vector else None, Path(workdir))
            peer.search("warm up", engine.engine.embedder.encode_query("warm up") if needs_vector else None, 20)
            samples = []
            for text in texts:
                started = time.perf_counter()
                vector = engine.engine.embedder.encode_query(text) if needs_vector else None
                peer.search(text, vector, 20)
                samples.append((time.perf_counter() - started) * 1000)
            close = getattr(peer, "close", None)
            if close:
                close()
        out[name] = stats(samples)
        print(f"  peer {name:<16} unseen p50 {out[name]['p50_ms']:>7.2f} ms  p99 {out[name]['p99_ms']:>7.2f} ms", flush=True)
    return out


def print_rows(size: int, where: str, groups: dict[str, dict[str, float]]) -> None:
    for name, s in groups.items():
        if s.get("n"):
            print(f"{size:>8,} {where:<11} {name:<9} n={s['n']:>5}  p50 {s['p50_ms']:>7.2f}  p95 {s['p95_ms']:>7.2f}  p99 {s['p99_ms']:>7.2f} ms  {s['qps']:>7.1f} q/s", flush=True)


def personalization_overhead(engine: SearchService, products: list, mix: list[MixedQuery], visitors: int = 100) -> dict[str, Any]:
    """p50 of the same (cached) searches for anonymous and for profiled visitors, interleaved.

    Visitors get a realistic history first (views, carts and purchases of sized variants), so
    each personalized search reads a real profile and runs the personalize and stock stages.
    """
    import random

    rng = random.Random(5)
    sized = [p for p in products if any(v.size for v in p.variants)]
    events = []
    for v in range(visitors):
        for product in rng.sample(sized, 12):
            variant = rng.choice(product.variants)
            base = {"visitor_id": f"bench-{v}", "session_id": f"bench-{v}", "product_id": product.id}
            events.append({**base, "type": "view"})
            events.append({**base, "type": rng.choice(["add_to_cart", "purchase"]), "variant_sku": variant.sku})
    for start in range(0, len(events), 1000):
        engine.visitors.ingest(events[start : start + 1000])
    plain: list[float] = []
    personal: list[float] = []
    for i, item in enumerate(mix):
        anonymous = item.request.model_copy(update={"visitor_id": None})
        visitor = item.request.model_copy(update={"visitor_id": f"bench-{i % visitors}", "session_id": f"bench-{i % visitors}"})
        for request, out in ((anonymous, plain), (visitor, personal)):
            started = time.perf_counter()
            engine.search(request)
            out.append((time.perf_counter() - started) * 1000)
    result = {"anonymous": stats(plain), "personalized": stats(personal)}
    result["added_p50_ms"] = round(result["personalized"]["p50_ms"] - result["anonymous"]["p50_ms"], 3)
    return result


def compare_capped(index_dir: Path, products: list, n_queries: int) -> dict[str, Any]:
    """Filtered and sorted requests with exact results against the capped behaviour, interleaved
    on two fresh engines (each with its own caches) over the same index."""
    engines = {}
    for name, exact in (("capped", False), ("exact", True)):
        state = Path(tempfile.mkdtemp(prefix=f"vitrine-latency-{name}-"))
        settings = Settings(index_dir=index_dir, data_dir=state)
        settings.ranking.exact_results = exact
        engines[name] = SearchService.open(index_dir, settings)
        engines[name].warm_up()
    mix = build_mix(products, n_queries, seed=1)
    try:
        out = run_interleaved(engines, mix, sorted_requests(mix, max(50, n_queries // 5)))
    finally:
        for engine in engines.values():
            engine.close()
    size = len(products)
    for name in engines:
        print_rows(size, name, out[name])
    for group, d in out["exact_over_capped"].items():
        print(f"  exact over capped, {group:<15} p50 {d['p50_difference_ms']:+7.2f} ms  "
              f"(median per-request difference {d['median_paired_difference_ms']:+7.2f} ms)", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description="Query latency of Vitrine and peers.")
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--http", action="store_true")
    parser.add_argument("--peers", nargs="?", const="all", default=None, help="also run the peers (all, or a comma-separated list: typesense,bm25s)")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--quick", action="store_true", help="1,000 products and 200 queries (smoke test)")
    parser.add_argument("--skip-personalization", action="store_true", help="leave out the personalization overhead run")
    parser.add_argument("--compare-capped", action="store_true",
                        help="also run the mix interleaved on an engine with ranking.exact_results off (counts and "
                             "sorting over the pool, filters masking it: the behaviour before exact results)")
    args = parser.parse_args()
    sizes = [1000] if args.quick else [int(s) for s in args.sizes.split(",")]
    n_queries = 200 if args.quick else args.queries
    info = machine()
    print(f"machine: {info['cpu']}, {info['cores']} cores, {info['memory_gb']} GB, load {info['load_at_start']:.2f}")
    results: dict[str, Any] = {"machine": info, "queries": n_queries, "sizes": {}}
    for size in sizes:
        index_dir, products = cached_sample_index(size)
        # Behaviour (search log, profiles) goes to a scratch directory, not into the cached index.
        state = Path(tempfile.mkdtemp(prefix="vitrine-latency-"))
        engine = SearchService.open(index_dir, Settings(index_dir=index_dir, data_dir=state))
        engine.warm_up()
        mix = build_mix(products, n_queries, seed=1)
        entry: dict[str, Any] = {"in_process": run_in_process(engine, mix, sorted_requests(mix, max(50, n_queries // 5)))}
        print_rows(size, "in-process", entry["in_process"])
        if not args.skip_personalization:
            entry["personalization"] = personalization_overhead(engine, products, mix)
            pers = entry["personalization"]
            print(f"  personalization (repeated queries): anonymous p50 {pers['anonymous']['p50_ms']} ms, "
                  f"personalized p50 {pers['personalized']['p50_ms']} ms, added {pers['added_p50_ms']:+.3f} ms")
        if args.http:
            entry["http"] = run_http(index_dir, mix)
            print_rows(size, "http", entry["http"])
        if args.peers:
            entry["peers"] = run_peers(engine, products, mix, None if args.peers == "all" else args.peers.split(","))
            ours = entry["in_process"]["unseen"]["p50_ms"]
            entry["peer_p50_over_vitrine_unseen_p50"] = {name: round(p["p50_ms"] / ours, 2) for name, p in entry["peers"].items()}
            print(f"  peer p50 / Vitrine unseen p50: {entry['peer_p50_over_vitrine_unseen_p50']}")
        if args.compare_capped:
            entry["capped_vs_exact"] = compare_capped(index_dir, products, n_queries)
        engine.close()
        results["sizes"][str(size)] = entry
    results["load_at_end"] = round(os.getloadavg()[0], 2)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
