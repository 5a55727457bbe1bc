"""Indexing throughput: full build and no-change rebuild of the generated sample catalog.

    python -m benchmarks.indexing [--sizes 10000,50000] [--backends onnx-int8] \
        [--encode-workers 0] [--compare-backends-at 10000] \
        [--json benchmarks/results/indexing.json] [--quick]

Each build runs in a child process so that its peak memory (RSS high-water mark) is its own
(encoding worker processes are not counted in it). A full build starts from an empty index
directory (empty embedding cache); the no-change rebuild then builds the same catalog again
into the same directory. The exported ONNX model is cached per machine and loading it in the
build process is not part of either timing; starting encoding workers is. The machine's load
average is recorded beside each figure: on a shared machine, figures under load are not
comparable.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).parent.parent


def _child(catalog: str, index_dir: str, backend: str, encode_workers: str = "0") -> None:
    """Run one build and print its figures as JSON (runs in a fresh process)."""
    from indexer.build import build_from_catalog
    from indexer.config import IndexConfig
    from indexer.embedding import Embedder

    config = IndexConfig(backend=backend, encode_workers=int(encode_workers))  # type: ignore[arg-type]
    embedder = Embedder(config)
    _ = embedder.model  # load the model outside the timing: a server keeps it loaded
    started = time.perf_counter()
    result = build_from_catalog(catalog, index_dir, config, embedder=embedder, progress=False)
    seconds = time.perf_counter() - started
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"seconds": seconds, "embedded": result.manifest.embedded, "products": result.manifest.products,
                      "vector_index": result.manifest.vector_index.kind, "peak_rss_mb": round(peak_kb / 1024, 1)}))


def run_build(catalog: Path, index_dir: Path, backend: str, encode_workers: int = 0) -> dict[str, Any]:
    load_before = os.getloadavg()[0]
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.indexing", "--child", str(catalog), str(index_dir), backend,
         str(encode_workers)],
        cwd=ROOT, capture_output=True, text=True, check=True, env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    # 1-minute load averages; our own build adds up to one per core to the figure after.
    figures["load"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    return figures


def measure(size: int, backend: str, workdir: Path, encode_workers: int = 0) -> dict[str, Any]:
    from indexer.sample import write_catalog

    catalog = workdir / f"sample-{size}.jsonl"
    if not catalog.exists():
        write_catalog(catalog, size, seed=7)
    index_dir = workdir / f"index-{size}-{backend}"
    shutil.rmtree(index_dir, ignore_errors=True)
    full = run_build(catalog, index_dir, backend, encode_workers)
    rebuild = run_build(catalog, index_dir, backend, encode_workers)
    shutil.rmtree(index_dir, ignore_errors=True)
    row = {
        "products": size,
        "backend": backend,
        "encode_workers": encode_workers,
        "full_seconds": round(full["seconds"], 1),
        "full_products_per_s": round(size / full["seconds"], 1),
        "full_peak_rss_mb": full["peak_rss_mb"],
        "full_load": full["load"],
        "rebuild_seconds": round(rebuild["seconds"], 1),
        "rebuild_products_per_s": round(size / rebuild["seconds"], 1),
        "rebuild_embedded": rebuild["embedded"],
        "rebuild_peak_rss_mb": rebuild["peak_rss_mb"],
        "rebuild_load": rebuild["load"],
        "vector_index": full["vector_index"],
    }
    print(
        f"{size:>8,} {backend:<10} full {row['full_seconds']:>7.1f} s {row['full_products_per_s']:>7.0f}/s "
        f"peak {row['full_peak_rss_mb']:>6.0f} MB load {_loads(full)} | no-change rebuild "
        f"{row['rebuild_seconds']:>6.1f} s {row['rebuild_products_per_s']:>7.0f}/s (embedded {row['rebuild_embedded']}) "
        f"load {_loads(rebuild)} [{row['vector_index']}]",
        flush=True,
    )
    return row


def _loads(figures: dict[str, Any]) -> str:
    before, after = figures["load"]
    return f"{before:.2f}->{after:.2f}"


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gb": round(memory_gb, 1), "load_at_start": os.getloadavg()[0]}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _child(*sys.argv[2:6])
        return
    parser = argparse.ArgumentParser(description="Indexing throughput of Vitrine.")
    parser.add_argument("--sizes", default="10000,50000")
    parser.add_argument("--backends", default="onnx-int8")
    parser.add_argument("--encode-workers", type=int, default=0,
                        help="encoding worker processes (IndexConfig.encode_workers; 0 = one per core, 1 = none)")
    parser.add_argument("--compare-backends-at", type=int, default=None, help="also run torch and onnx at this size")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--quick", action="store_true", help="500 products, for a smoke test")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    sizes = [500] if args.quick else [int(s) for s in args.sizes.split(",")]
    backends = args.backends.split(",")
    info = machine()
    print(f"machine: {info['cpu']}, {info['cores']} cores, {info['memory_gb']} GB, load {info['load_at_start']:.2f}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        if args.compare_backends_at and not args.quick:
            for backend in ("torch", "onnx", "onnx-int8"):
                if backend not in backends:
                    rows.append(measure(args.compare_backends_at, backend, workdir, args.encode_workers))
        for size in sizes:
            for backend in backends:
                rows.append(measure(size, backend, workdir, args.encode_workers))
    result = {"machine": info, "results": rows, "goals": {"full_50k_seconds": 180, "rebuild_50k_seconds": 20}}
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
