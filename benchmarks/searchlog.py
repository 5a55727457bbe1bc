"""The search log's cost and durability.

    python -m benchmarks.searchlog [--products 10000] [--json benchmarks/results/searchlog.json]

1. Sustained rate: searches recorded at 1,000/s for 10 s (and as fast as possible), with the
   writer thread committing in the background: does it keep up, how deep does the queue get?
2. Cost on the request path: p50 search latency with the log on and off (same engine, same
   repeated queries, where any overhead shows most).
3. kill -9: a process records searches at 1,000/s and is killed with SIGKILL; the records it
   had accepted but that never reached the database are the loss (goal: at most one second's).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import signal
import sqlite3
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.relevance import _cpu_model
from search.analytics.search_log import SearchLog
from search.models import SearchRequest, SearchResult

RATE = 1000


def _fake(i: int) -> tuple[SearchRequest, SearchResult]:
    request = SearchRequest(q=f"red dress {i % 500}", visitor_id=f"v{i % 3000}", session_id=f"s{i % 5000}")
    result = SearchResult(search_id=uuid.uuid4().hex, query=request.q, total=i % 40, hits=[], facets={}, took_ms=3.2,
                          segment="direct/new/mobile")
    return request, result


def sustained(seconds: float = 10.0) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        log = SearchLog(Path(tmp) / "analytics.db")
        pairs = [_fake(i) for i in range(int(RATE * seconds))]
        started = time.perf_counter()
        deepest = 0
        record_us = []
        for i, (request, result) in enumerate(pairs):
            target = started + i / RATE
            while time.perf_counter() < target:
                time.sleep(0.0002)
            t0 = time.perf_counter()
            log.record(request, result)
            record_us.append((time.perf_counter() - t0) * 1e6)
            deepest = max(deepest, log._queue.qsize())
        log.flush()
        paced = {"rate_per_s": RATE, "seconds": seconds, "written": log.written, "dropped": log.dropped,
                 "max_queue_depth": deepest, "record_call_p50_us": float(np.percentile(record_us, 50)),
                 "record_call_p99_us": float(np.percentile(record_us, 99))}
        # As fast as possible: the writer's ceiling.
        burst = [_fake(i) for i in range(100_000)]
        started = time.perf_counter()
        for request, result in burst:
            log.record(request, result)
        log.flush()
        elapsed = time.perf_counter() - started
        log.close()
    return {"paced": paced, "burst": {"records": len(burst), "seconds": elapsed, "per_s": len(burst) / elapsed}}


def _child(path: str, counter: Any, flush_interval: float) -> None:
    log = SearchLog(path, flush_interval=flush_interval)
    started = time.perf_counter()
    i = 0
    while True:
        target = started + i / RATE
        while time.perf_counter() < target:
            time.sleep(0.0002)
        request, result = _fake(i)
        log.record(request, result)
        i += 1
        counter.value = i


def kill9(runs: int = 5, flush_interval: float = 0.25) -> dict[str, Any]:
    losses = []
    ctx = mp.get_context("spawn")
    for run in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            path = str(Path(tmp) / "analytics.db")
            counter = ctx.Value("q", 0, lock=False)
            child = ctx.Process(target=_child, args=(path, counter, flush_interval))
            child.start()
            while counter.value < RATE:  # a second of steady recording first
                time.sleep(0.01)
            time.sleep(1.5 + 0.37 * run)  # kill at a different phase of the flush cycle each run
            os.kill(child.pid, signal.SIGKILL)
            child.join()
            accepted = counter.value
            with sqlite3.connect(path) as db:
                written = db.execute("SELECT COUNT(*) FROM searches").fetchone()[0]
            losses.append({"accepted": accepted, "written": written, "lost": accepted - written,
                           "lost_seconds": (accepted - written) / RATE})
    return {"flush_interval_s": flush_interval, "runs": losses,
            "max_lost_seconds": max(r["lost_seconds"] for r in losses)}


def latency_cost(products: int, queries: int = 3000) -> dict[str, Any]:
    from benchmarks.latency import cached_sample_index
    from search.service import SearchService
    from search.settings import Settings

    index_dir, _ = cached_sample_index(products)
    mix = ["red dress", "linen shirt", "running shoes", "wool jumper", "leather bag", "floral skirt", "black boots",
           "cotton t-shirt", "summer hat", "denim jacket"]
    out = {}
    for label, enabled in (("log_off", False), ("log_on", True)):
        with tempfile.TemporaryDirectory() as state:
            settings = Settings(index_dir=index_dir, data_dir=Path(state), analytics={"search_log": enabled})
            engine = SearchService.open(index_dir, settings)
            for q in mix:
                engine.search(SearchRequest(q=q), record=False)
            samples = []
            for i in range(queries):
                request = SearchRequest(q=mix[i % len(mix)], visitor_id=f"v{i % 100}")
                t0 = time.perf_counter()
                engine.search(request)
                samples.append((time.perf_counter() - t0) * 1000)
            engine.close()
        out[label] = {"p50_ms": float(np.percentile(samples, 50)), "p99_ms": float(np.percentile(samples, 99))}
    out["added_p50_ms"] = out["log_on"]["p50_ms"] - out["log_off"]["p50_ms"]
    out["products"] = products
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--products", type=int, default=10_000, help="catalog size for the latency part")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    result = {"sustained": sustained(), "kill9": kill9(), "latency": latency_cost(args.products),
              "machine": {"cpu": _cpu_model(), "cores": os.cpu_count(), "load_avg": os.getloadavg()}}
    paced, burst = result["sustained"]["paced"], result["sustained"]["burst"]
    print(f"paced {paced['rate_per_s']}/s for {paced['seconds']:.0f} s: written {paced['written']}, dropped {paced['dropped']}, "
          f"deepest queue {paced['max_queue_depth']}, record() p50 {paced['record_call_p50_us']:.1f} us")
    print(f"burst: {burst['per_s']:,.0f} records/s written")
    lat = result["latency"]
    print(f"search p50 at {lat['products']:,} products: log off {lat['log_off']['p50_ms']:.2f} ms, "
          f"on {lat['log_on']['p50_ms']:.2f} ms (added {lat['added_p50_ms']:+.3f} ms)")
    k = result["kill9"]
    print(f"kill -9 (flush every {k['flush_interval_s']} s): lost " + ", ".join(f"{r['lost']}" for r in k["runs"])
          + f" records; worst {k['max_lost_seconds']:.2f} s of searches")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
