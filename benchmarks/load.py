"""Load and crash test of the service on loopback: concurrent shoppers, a stock writer, one kill -9.

    python -m benchmarks.load                      # the full run: 100k products, 50 clients, 60 s
    python -m benchmarks.load --products 2000 --clients 10 --seconds 20   # a small run

A real `vitrine serve` process serves a generated sample shop. `--clients` shoppers loop over
search, suggest and events; a writer PATCHes /catalog/stock every 100 ms with an increasing
value per SKU; half-way, the service is killed with SIGKILL and started again, and the run goes
on until the restarted service has served half the duration again. Reported: requests per
second (overall and while the service was up), p50/p99 latency per kind, errors outside the
restart window (the window runs from the kill until the restarted service answers /health; a
request in flight at the kill fails with it and counts in the window), and whether every
acknowledged stock write is there at the end. Results: benchmarks/results/load.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np

from benchmarks.servers import free_port

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).parent / "results" / "load.json"
KEY = "load-bench-admin-key"
WORDS = ["dress", "red", "linen", "shirt", "boots", "leather", "wool", "sweater", "blue", "jacket", "summer", "hat"]


def _index(products: int, path: Path) -> list:
    from indexer import format as fmt
    from indexer.build import build_index
    from indexer.sample import generate_catalog

    catalog = generate_catalog(products, 7)
    try:
        fmt.current_version_dir(path)
    except Exception:  # noqa: BLE001 - no index yet: build it once, reused by later runs
        build_index(catalog, path, progress=True)
    return catalog


def _serve(index_dir: Path, port: int) -> subprocess.Popen:
    env = {
        **os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "VITRINE_SERVER__ADMIN_KEY": KEY,
        # The load comes from one address: the per-client limit would be the thing measured.
        "VITRINE_LIMITS__PER_CLIENT_PER_SECOND": "0", "VITRINE_LIMITS__PER_KEY_PER_SECOND": "0",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "search.cli", "serve", "--index-dir", str(index_dir), "--port", str(port)],
        env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


async def _healthy(url: str, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=2) as client:
        while time.monotonic() < deadline:
            try:
                if (await client.get(f"{url}/health")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError("service did not start")


async def run(args: argparse.Namespace) -> dict:
    index_dir = Path(args.index_dir or ROOT / "var" / f"load-{args.products}")
    catalog = _index(args.products, index_dir)
    skus = [(p.id, v.sku) for p in catalog[:50] for v in p.variants[:1]]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = _serve(index_dir, port)
    await _healthy(url)
    headers = {"Authorization": f"Bearer {KEY}"}
    latencies: dict[str, list[float]] = {"search": [], "suggest": [], "events": [], "stock": []}
    errors: list[tuple[float, float, str, str]] = []  # (began, ended, kind, detail)
    acknowledged: dict[str, tuple[str, int]] = {}
    window: list[float] = []
    start = time.monotonic()
    # The run ends `seconds` after the start, but never before the restarted service has
    # served half of `seconds` of traffic: what happens after the restart is half the point.
    stop = start + args.seconds
    restarted = asyncio.Event()

    def running() -> bool:
        return not restarted.is_set() or time.monotonic() < stop

    async def shopper(n: int) -> None:
        rng = random.Random(n)
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as client:
            while running():
                kind = rng.choice(["search", "search", "suggest", "events"])
                began = time.monotonic()
                try:
                    if kind == "search":
                        r = await client.get("/search", params={"q": " ".join(rng.sample(WORDS, 2)), "visitor_id": f"v{n}"})
                    elif kind == "suggest":
                        r = await client.get("/suggest", params={"q": rng.choice(WORDS)[:3]})
                    else:
                        product = rng.choice(catalog).id
                        r = await client.post("/events", json={"events": [{"type": "view", "visitor_id": f"v{n}", "product_id": product}]})
                    ok = r.status_code < 400
                    detail = str(r.status_code)
                except httpx.HTTPError as error:
                    ok, detail = False, type(error).__name__
                if ok:
                    latencies[kind].append((time.monotonic() - began) * 1000)
                else:
                    errors.append((began, time.monotonic(), kind, detail))
                    await asyncio.sleep(0.05)

    async def writer() -> None:
        value = 0
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as client:
            while running():
                value += 1
                product_id, sku = skus[value % len(skus)]
                began = time.monotonic()
                try:
                    r = await client.patch("/catalog/stock", json=[{"sku": sku, "stock": value}])
                    if r.status_code == 200:
                        acknowledged[sku] = (product_id, value)  # the last value per SKU is what must be there
                        latencies["stock"].append((time.monotonic() - began) * 1000)
                    else:
                        errors.append((began, time.monotonic(), "stock", str(r.status_code)))
                except httpx.HTTPError as error:
                    errors.append((began, time.monotonic(), "stock", type(error).__name__))
                await asyncio.sleep(0.1)

    async def killer() -> None:
        nonlocal process, stop
        await asyncio.sleep(args.seconds / 2)
        window.append(time.monotonic())
        process.send_signal(signal.SIGKILL)
        process.wait()
        process = _serve(index_dir, port)
        await _healthy(url)
        window.append(time.monotonic())
        stop = max(stop, window[1] + args.seconds / 2)
        restarted.set()

    await asyncio.gather(*(shopper(n) for n in range(args.clients)), writer(), killer())
    elapsed = time.monotonic() - start
    # Every acknowledged stock write must be there (the last value written per SKU).
    lost = []
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as client:
        for sku, (product_id, value) in acknowledged.items():
            product = (await client.get(f"/products/{product_id}")).json()
            stock = next(v["stock"] for v in product["variants"] if v["sku"] == sku)
            if stock != value:
                lost.append({"sku": sku, "acknowledged": value, "found": stock})
    process.terminate()
    process.wait(timeout=30)
    # A request in flight when the process was killed fails with it: it belongs to the
    # restart window although it began before the kill.
    outside = [e for e in errors if e[1] < window[0] or e[0] > window[1]]
    done = sum(len(v) for v in latencies.values())
    up = elapsed - (window[1] - window[0])
    return {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores (shared), {platform.python_version()}",
        "products": args.products, "clients": args.clients, "seconds": args.seconds,
        "requests_ok": done, "throughput_rps": round(done / elapsed, 1),
        "throughput_rps_while_up": round(done / up, 1), "seconds_run": round(elapsed, 1),
        "seconds_served_after_restart": round(elapsed - (window[1] - start), 1),
        "latency_ms": {k: {"p50": round(float(np.percentile(v, 50)), 1), "p99": round(float(np.percentile(v, 99)), 1), "n": len(v)}
                       for k, v in latencies.items() if v},
        "restart_window_s": round(window[1] - window[0], 2),
        "errors_in_restart_window": len(errors) - len(outside),
        "errors_outside_restart_window": len(outside),
        "error_examples_outside": [f"{k}:{d}" for _, _, k, d in outside[:10]],
        "stock_writes_acknowledged": len(latencies["stock"]), "skus_checked": len(acknowledged),
        "acknowledged_writes_lost": lost,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--products", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--index-dir", default=None, help="reuse or build the sample index here (default var/load-<products>)")
    args = parser.parse_args()
    result = asyncio.run(run(args))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print("| products | clients | s run | ok req/s (while up) | errors outside restart | restart window s | s served after restart | acked writes lost |")
    print("|---|---|---|---|---|---|---|---|")
    print(f"| {result['products']} | {result['clients']} | {result['seconds_run']:g} | {result['throughput_rps']} ({result['throughput_rps_while_up']}) | "
          f"{result['errors_outside_restart_window']} | {result['restart_window_s']} | {result['seconds_served_after_restart']} | "
          f"{len(result['acknowledged_writes_lost'])} of {result['stock_writes_acknowledged']} ({result['skus_checked']} SKUs) |")
    for kind, stats in result["latency_ms"].items():
        print(f"{kind:8s} p50 {stats['p50']} ms  p99 {stats['p99']} ms  (n={stats['n']})")


if __name__ == "__main__":
    main()
