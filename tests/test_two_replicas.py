"""Two `vitrine serve` processes, each on its own copy of the index directory (as on two
machines), sharing one PostgreSQL schema: what one accepts, the other serves.

1. A stock change, a price change, a new product and a delete sent to replica A are served by
   replica B; each is awaited with a generous deadline (5 s: the design target is 1 s, the
   machine may be busy) and the measured delays are printed.
2. A synonym approved on A changes B's answers.
3. A visitor's events sent to A shape B's view of the visitor (recently viewed).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.services import free_port, wait_healthy

ROOT = Path(__file__).parent.parent
ADMIN = {"X-Admin-Key": "replica-key", "X-Admin-User": "maria"}
DEADLINE = 5.0

pytestmark = pytest.mark.slow


def _serve(index_dir: Path, database_url: str, log: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {
        **os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT), "VITRINE_DATABASE_URL": database_url,
        "VITRINE_SERVER__ADMIN_KEY": "replica-key", "VITRINE_LOG_FORMAT": "json",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "search.cli", "serve", "--index-dir", str(index_dir), "--port", str(port)],
        cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True,
    )
    return process, f"http://127.0.0.1:{port}"


@pytest.fixture
def two_replicas(index_dir: Path, tmp_path: Path, pg_url: str) -> Iterator[tuple[str, str]]:
    started: list[subprocess.Popen] = []
    urls = []
    try:
        for name in ("a", "b"):
            copy = tmp_path / name
            shutil.copytree(index_dir, copy, ignore=shutil.ignore_patterns("state"))
            process, url = _serve(copy, pg_url, tmp_path / f"{name}.log")
            started.append(process)
            urls.append(url)
        for process, url, name in zip(started, urls, ("a", "b"), strict=True):
            wait_healthy(url, process, log=tmp_path / f"{name}.log")
        yield urls[0], urls[1]
    finally:
        for process in started:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in started:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def _arrives(check: Callable[[], bool], what: str, delays: dict[str, float]) -> None:
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < DEADLINE, f"{what} did not reach the other replica within {DEADLINE} s"
        time.sleep(0.02)
    delays[what] = time.monotonic() - started


def test_changes_synonyms_and_events_sent_to_one_replica_are_served_by_the_other(
    two_replicas: tuple[str, str], sample_products
) -> None:
    a, b = two_replicas
    delays: dict[str, float] = {}
    stocked, priced, doomed, viewed = sample_products[10], sample_products[11], sample_products[12], sample_products[13]
    sku = stocked.variants[0].sku

    def product_on_b(product_id: str) -> httpx.Response:
        return httpx.get(f"{b}/products/{product_id}", timeout=5)

    assert httpx.patch(f"{a}/catalog/stock", json=[{"sku": sku, "stock": 0}], headers=ADMIN).status_code == 200
    _arrives(lambda: product_on_b(stocked.id).json()["variants"][0]["stock"] == 0, "stock", delays)

    assert httpx.patch(f"{a}/catalog/prices", json=[{"id": priced.id, "price": 321.5}], headers=ADMIN).status_code == 200
    _arrives(lambda: product_on_b(priced.id).json()["price"] == 321.5, "price", delays)

    new = {"id": "replica-kimono", "title": "Jade silk kimono robe", "price": 80.0,
           "variants": [{"sku": "replica-kimono-M", "size": "M", "stock": 2}]}
    assert httpx.put(f"{a}/catalog/products", json=[new], headers=ADMIN, timeout=60).status_code == 200
    _arrives(lambda: product_on_b("replica-kimono").status_code == 200, "new product", delays)
    hits = httpx.get(f"{b}/search", params={"q": "jade kimono"}).json()["hits"]
    assert "replica-kimono" in [h["id"] for h in hits]

    assert httpx.delete(f"{a}/catalog/products/{doomed.id}", headers=ADMIN).status_code == 204
    _arrives(lambda: product_on_b(doomed.id).status_code == 404, "delete", delays)

    def zorbling_total() -> int:
        return httpx.get(f"{b}/search", params={"q": "zorbling"}).json()["total"]

    assert zorbling_total() == 0
    created = httpx.post(f"{a}/synonyms", json={"kind": "one_way", "terms": ["zorbling"], "targets": ["dress"]},
                         headers=ADMIN)
    assert created.status_code == 201, created.text
    _arrives(lambda: zorbling_total() > 0, "synonym", delays)

    events = [{"type": "view", "visitor_id": "replica-visitor", "product_id": viewed.id}]
    assert httpx.post(f"{a}/events", json={"events": events}).status_code == 202

    def recent_on_b() -> list[str]:
        return [p["id"] for p in httpx.get(f"{b}/visitors/replica-visitor/recent").json()["products"]]

    _arrives(lambda: recent_on_b() == [viewed.id], "events", delays)
    print("replica propagation delays (s): " + ", ".join(f"{k} {v:.3f}" for k, v in delays.items()))
