"""Scaling out on loopback: 1 vs 2 workers on one machine, two replicas, and a PostgreSQL outage.

    python -m benchmarks.scale                 # the full run: 20k products, 16 clients, 30 s per scenario
    python -m benchmarks.scale --quick         # a smoke run: 1000 products, 4 clients, 6 s each
    python -m benchmarks.scale --scenarios workers-1,workers-2 --seconds 60

Scenarios (each a real server, loaded by `--clients` concurrent shoppers doing search, search,
suggest, events):
  workers-1       `vitrine serve --workers 1`
  workers-2       `vitrine serve --workers 2` (same port, Prometheus metrics over both)
  replicas-2      two `vitrine serve` processes on two ports, each on its own copy of the
                  index, the shoppers alternating between them as a load balancer would
  pg-outage       `vitrine serve` on a throwaway PostgreSQL cluster of its own (never the
                  shared server), stopped (`pg_ctl stop -m immediate`) for `--outage` seconds
                  mid-run: searches must keep answering, and every event answered 202 must be
                  in the event log once PostgreSQL is back. Needs the PostgreSQL stores
                  (`database_url`); skipped, and said so, without them.

Reported per scenario: requests per second, p50/p99 per kind, failed requests. The machine
(cores, load average before and after) is written beside the figures, since shoppers and
servers share its cores. Results: benchmarks/results/scale.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack, suppress
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from benchmarks.indexing import machine
from benchmarks.latency import cached_sample_index
from benchmarks.servers import free_port, serving
from search.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).parent / "results" / "scale.json"
WORDS = ["dress", "red", "linen", "shirt", "boots", "leather", "wool", "sweater", "blue", "jacket", "summer", "hat"]
PG_BIN = Path("/usr/lib/postgresql/15/bin")
SCENARIOS = ("workers-1", "workers-2", "replicas-2", "pg-outage")
FULL = {"products": 20_000, "clients": 16, "seconds": 30.0, "warmup": 5.0, "outage": 10.0}
QUICK = {"products": 1000, "clients": 4, "seconds": 6.0, "warmup": 1.0, "outage": 4.0}


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    return {
        **os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1",
        # The load comes from one address: the per-client limit would be the thing measured.
        "VITRINE_LIMITS__PER_CLIENT_PER_SECOND": "0", "VITRINE_LIMITS__PER_KEY_PER_SECOND": "0",
        **(extra or {}),
    }


def _server(index_dir: Path, workers: int = 1, env: dict[str, str] | None = None):
    """A `vitrine serve` process, ready for traffic (its workers stop with it)."""
    return serving("--index-dir", str(index_dir), "--workers", str(workers), env=_env(env), timeout=600)


def _copy_index(index_dir: Path, target: Path) -> Path:
    shutil.copytree(index_dir, target, ignore=shutil.ignore_patterns("state", "embeddings.sqlite*"))
    return target


async def _load(urls: list[str], products: list[str], clients: int, seconds: float, tag: str) -> dict[str, Any]:
    """`clients` shoppers for `seconds`, each request to the next URL in turn. Every event has
    its own visitor id (`tag-n`), so the ones answered 202 can be looked up afterwards."""
    latencies: dict[str, list[float]] = {"search": [], "suggest": [], "events": []}
    failures: list[tuple[float, str, str]] = []
    accepted_visitors: list[str] = []
    start = time.monotonic()
    stop = start + seconds
    counter = iter(range(10**9))

    async def shopper(n: int) -> None:
        rng = random.Random(n)
        turn = n
        async with httpx.AsyncClient(timeout=30) as client:
            while time.monotonic() < stop:
                url = urls[turn % len(urls)]
                turn += 1
                kind = rng.choice(["search", "search", "suggest", "events"])
                began = time.monotonic()
                try:
                    if kind == "search":
                        r = await client.get(f"{url}/search", params={"q": " ".join(rng.sample(WORDS, 2))})
                    elif kind == "suggest":
                        r = await client.get(f"{url}/suggest", params={"q": rng.choice(WORDS)[:3]})
                    else:
                        visitor = f"{tag}-{next(counter)}"
                        event = {"type": "view", "visitor_id": visitor, "product_id": rng.choice(products)}
                        r = await client.post(f"{url}/events", json={"events": [event]})
                        if r.status_code == 202:
                            accepted_visitors.append(visitor)
                    ok, detail = r.status_code < 400, str(r.status_code)
                except httpx.HTTPError as error:
                    ok, detail = False, type(error).__name__
                if ok:
                    latencies[kind].append((time.monotonic() - began) * 1000)
                else:
                    failures.append((began - start, kind, detail))
                    await asyncio.sleep(0.05)

    await asyncio.gather(*(shopper(n) for n in range(clients)))
    elapsed = time.monotonic() - start
    done = sum(len(v) for v in latencies.values())
    result: dict[str, Any] = {
        "requests_ok": done,
        "throughput_rps": round(done / elapsed, 1),
        "latency_ms": {
            kind: {"p50": round(float(np.percentile(v, 50)), 1), "p99": round(float(np.percentile(v, 99)), 1), "n": len(v)}
            for kind, v in latencies.items() if v
        },
        "failed": len(failures),
        "failed_by_kind": {k: sum(1 for f in failures if f[1] == k) for k in latencies},
        "failure_examples": [f"{round(t, 1)}s {k}:{d}" for t, k, d in failures[:10]],
        "events_accepted": len(accepted_visitors),
    }
    result["_accepted_visitors"] = accepted_visitors
    return result


def _scenario_workers(index_dir: Path, products: list[str], args: argparse.Namespace, workers: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="vitrine-scale-") as tmp, _server(
        _copy_index(index_dir, Path(tmp) / "index"), workers=workers,
    ) as url:
        asyncio.run(_load([url], products, args.clients, args.warmup, "warmup"))
        result = asyncio.run(_load([url], products, args.clients, args.seconds, f"w{workers}"))
    result.pop("_accepted_visitors")
    return result


def _scenario_replicas(index_dir: Path, products: list[str], args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="vitrine-scale-") as tmp, ExitStack() as stack:
        urls = [stack.enter_context(_server(_copy_index(index_dir, Path(tmp) / f"replica-{n}"))) for n in range(2)]
        asyncio.run(_load(urls, products, args.clients, args.warmup, "warmup"))
        result = asyncio.run(_load(urls, products, args.clients, args.seconds, "r2"))
    result.pop("_accepted_visitors")
    return result


# ---- a PostgreSQL cluster of the benchmark's own -----------------------------------------------


class ThrowawayPostgres:
    """initdb in a temporary directory, on a free port, owned by the postgres user; stopped and
    deleted at the end. The shared server on 5432 is never touched."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="vitrine-scale-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        shutil.chown(self.dir, "postgres", "postgres")
        self._run(PG_BIN / "initdb", "-D", str(self.data), "--auth=trust", "-U", "postgres")

    def _run(self, *command: str | Path) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", *map(str, command)], check=True, capture_output=True, timeout=120)

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        self._run(PG_BIN / "pg_ctl", "-D", self.data, "-w", "-l", self.dir / "log",
                  "-o", f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run(PG_BIN / "pg_ctl", "-D", self.data, "-w", "-m", mode, "stop")

    def remove(self) -> None:
        with suppress(subprocess.CalledProcessError):  # already stopped
            self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


def postgres_stores_available() -> tuple[bool, str]:
    if "database_url" not in Settings.model_fields:
        return False, "this Vitrine has no PostgreSQL stores (setting database_url)"
    if not (PG_BIN / "initdb").exists() or shutil.which("runuser") is None:
        return False, f"no PostgreSQL 15 binaries in {PG_BIN} (apt-get install postgresql-15) or no runuser"
    return True, ""


def _scenario_pg_outage(index_dir: Path, products: list[str], args: argparse.Namespace) -> dict[str, Any]:
    available, why = postgres_stores_available()
    if not available:
        return {"skipped": why}
    pg = ThrowawayPostgres()
    try:
        pg.start()
        with tempfile.TemporaryDirectory(prefix="vitrine-scale-") as tmp:
            replica = _copy_index(index_dir, Path(tmp) / "index")
            env = {"VITRINE_DATABASE_URL": pg.url}
            seconds = max(args.seconds, args.outage * 2)
            marks: dict[str, float] = {}
            with _server(replica, env=env) as url:
                asyncio.run(_load([url], products, args.clients, args.warmup, "warmup"))

                async def run() -> dict[str, Any]:
                    async def outage() -> None:
                        await asyncio.sleep(seconds / 3)
                        marks["stopped_at_s"] = round(seconds / 3, 1)
                        await asyncio.to_thread(pg.stop, "immediate")
                        await asyncio.sleep(args.outage)
                        await asyncio.to_thread(pg.start)
                        marks["restarted_after_s"] = args.outage

                    load, _ = await asyncio.gather(_load([url], products, args.clients, seconds, "pg"), outage())
                    return load

                result = asyncio.run(run())
                # Then every event answered 202 is in the event log (buffered ones included).
                accepted = set(result.pop("_accepted_visitors"))
                stored = _stored_visitors(replica, env, accepted, timeout=120)
            result.update(marks)
            result["events_accepted_not_stored"] = len(accepted - stored)
            result["outage_s"] = args.outage
        return result
    finally:
        pg.remove()


def _stored_visitors(index_dir: Path, env: dict[str, str], wanted: set[str], timeout: float) -> set[str]:
    """Visitor ids with an event in the service's event log, read through the library (the same
    store the server writes), waiting up to `timeout` for buffered events to be written."""
    code = (
        "import json, sys\n"
        "from search.service import SearchService\n"
        "from search.settings import Settings\n"
        "service = SearchService(Settings())\n"
        "print(json.dumps(sorted({e.visitor_id for e in service.visitors.events.between(None)})))\n"
        "service.close()\n"
    )
    deadline = time.monotonic() + timeout
    stored: set[str] = set()
    while time.monotonic() < deadline:
        out = subprocess.run([sys.executable, "-c", code], env=_env({**env, "VITRINE_INDEX_DIR": str(index_dir)}),
                             cwd=ROOT, capture_output=True, text=True, timeout=300)
        if out.returncode == 0:
            stored = set(json.loads(out.stdout.strip().splitlines()[-1]))
            if wanted <= stored:
                break
        time.sleep(2)
    return stored


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--products", type=int, default=None, help="default 20000 (quick: 1000)")
    parser.add_argument("--clients", type=int, default=None, help="default 16 (quick: 4)")
    parser.add_argument("--seconds", type=float, default=None, help="measured seconds per scenario, default 30 (quick: 6)")
    parser.add_argument("--warmup", type=float, default=None, help="unmeasured seconds of load first, default 5 (quick: 1)")
    parser.add_argument("--outage", type=float, default=None, help="seconds PostgreSQL stays stopped, default 10 (quick: 4)")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--quick", action="store_true", help="a smoke run with small sizes (explicit options still win)")
    parser.add_argument("--json", default=str(RESULTS))
    args = parser.parse_args()
    defaults = QUICK if args.quick else FULL
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    scenarios = list(dict.fromkeys(s.strip() for s in args.scenarios.split(",") if s.strip()))
    unknown = set(scenarios) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios {sorted(unknown)}; choose from {', '.join(SCENARIOS)}")

    info = machine()
    print(f"machine: {info['cpu']}, {info['cores']} cores, {info['memory_gb']} GB, load {info['load_at_start']:.2f}")
    index_dir, catalog = cached_sample_index(args.products)
    products = [p.id for p in catalog]
    runs = {
        "workers-1": lambda: _scenario_workers(index_dir, products, args, 1),
        "workers-2": lambda: _scenario_workers(index_dir, products, args, 2),
        "replicas-2": lambda: _scenario_replicas(index_dir, products, args),
        "pg-outage": lambda: _scenario_pg_outage(index_dir, products, args),
    }
    results: dict[str, Any] = {}
    for name in scenarios:
        print(f"{name} ...", flush=True)
        results[name] = runs[name]()
    info["load_at_end"] = os.getloadavg()[0]
    report = {
        "machine": info, "products": args.products, "clients": args.clients, "seconds": args.seconds, "warmup": args.warmup,
        "quick": args.quick, "scenarios": results,
    }
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")

    print(f"\n{args.products} products, {args.clients} clients, {args.seconds:g} s per scenario; "
          f"load average {info['load_at_start']:.2f} -> {info['load_at_end']:.2f}")
    print("| scenario | req/s | search p50 ms | search p99 ms | events p99 ms | failed | notes |")
    print("|---|---|---|---|---|---|---|")
    for name, r in results.items():
        if "skipped" in r:
            print(f"| {name} | - | - | - | - | - | skipped: {r['skipped']} |")
            continue
        search = r["latency_ms"].get("search", {})
        events = r["latency_ms"].get("events", {})
        notes = ""
        if name == "pg-outage":
            notes = (f"PostgreSQL stopped {r['outage_s']:g} s; failed {r['failed_by_kind']}; "
                     f"events 202 {r['events_accepted']}, not stored {r['events_accepted_not_stored']}")
        print(f"| {name} | {r['throughput_rps']} | {search.get('p50', '-')} | {search.get('p99', '-')} | "
              f"{events.get('p99', '-')} | {r['failed']} | {notes} |")
    print(f"\nwritten to {out}")


if __name__ == "__main__":
    main()
