"""Two service processes writing the same catalog at once: every write answered, none lost.

Properties checked:
  1. concurrent PUT /catalog/products against two real `vitrine serve` processes on one index
     all answer 200 (formerly 500: `UNIQUE constraint failed: products.ord`);
  2. every product each writer was told was written is live, once, in the store and in both
     processes' answers; a product both write in turn ends with exactly one live row.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from indexer import format as fmt
from indexer.product_store import ProductStore
from tests.services import free_port, wait_healthy

KEY = "writers-key"
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def two_servers(mutable_index_dir: Path) -> Iterator[list[str]]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "VITRINE_SERVER__ADMIN_KEY": KEY}
    processes, urls = [], []
    try:
        for _ in range(2):
            port = free_port()
            processes.append(subprocess.Popen(
                [sys.executable, "-m", "search.cli", "serve", "--index-dir", str(mutable_index_dir), "--port", str(port)],
                env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            ))
            urls.append(f"http://127.0.0.1:{port}")
        for url, process in zip(urls, processes, strict=True):
            wait_healthy(url, process)
        yield urls
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def test_concurrent_upserts_from_two_processes_all_succeed_and_none_is_lost(two_servers, mutable_index_dir) -> None:
    rounds = 12
    results: list[tuple[int, str]] = []
    written: list[str] = []
    lock = threading.Lock()

    def writer(url: str, name: str) -> None:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {KEY}"}, timeout=120) as client:
            for n in range(rounds):
                batch = [
                    {"id": f"{name}-{n}-{k}", "title": f"Writer {name} round {n} item {k} linen shirt"} for k in range(3)
                ] + [{"id": "shared-1", "title": f"Shared product last written by {name} in round {n}"}]
                response = client.put("/catalog/products", json=batch)
                with lock:
                    results.append((response.status_code, response.text[:200]))
                    if response.status_code == 200:
                        written.extend(p["id"] for p in batch)

    threads = [threading.Thread(target=writer, args=(url, f"w{i}{j}")) for i, url in enumerate(two_servers) for j in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert [r for r in results if r[0] != 200] == []
    assert len(results) == 4 * rounds
    store = ProductStore(fmt.current_version_dir(mutable_index_dir) / fmt.STORE_FILE)
    try:
        live = [row.product.id for row in store.iter_rows(live_only=True)]
    finally:
        store.close()
    assert len(live) == len(set(live)), "a product has two live rows"
    assert set(written) <= set(live)
    # Both processes serve every product (each applies the other's changes on refresh).
    for url in two_servers:
        for product_id in (f"w00-{rounds - 1}-2", f"w11-{rounds - 1}-2", "shared-1"):
            deadline = time.monotonic() + 60
            while httpx.get(f"{url}/products/{product_id}", timeout=10).status_code != 200:
                assert time.monotonic() < deadline, f"{url} never served {product_id}"
                time.sleep(0.1)
