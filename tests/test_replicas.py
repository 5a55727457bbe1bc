"""Two replicas, each on its own copy of the index, follow a version published once.

Properties checked, on two real `vitrine serve` processes on different ports:
  1. `vitrine index build --publish DIR` builds a version once and publishes it to the shared
     directory; both replicas (polling it) pull it into their own index directories and serve
     it: a product only the new version has is found by both, and /ready names the version;
  2. no request fails during the swap: clients searching both replicas the whole time get an
     answer (200) every time.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from indexer.catalog import Product
from indexer.publish import published_version
from indexer.sample import write_catalog
from tests.conftest import SAMPLE_SEED, SAMPLE_SIZE
from tests.servers import ROOT, serving

pytestmark = pytest.mark.slow

NEW_PRODUCT = Product(id="replica-new-1", title="Zephyrquill glacier parka", brand="Northwind", categories=["Jackets"])
QUERY = "zephyrquill parka"


class Searcher(threading.Thread):
    """Searches one replica in a loop until told to stop; records every answer."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.stop = threading.Event()
        self.answers = 0
        self.answers_before_new = 0
        self.failures: list[str] = []
        self.first_new: float | None = None

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=60) as client:
            while not self.stop.is_set():
                try:
                    response = client.get("/search", params={"q": QUERY})
                except httpx.HTTPError as error:
                    self.failures.append(type(error).__name__)
                    continue
                if response.status_code != 200:
                    self.failures.append(f"{response.status_code}: {response.text[:200]}")
                    continue
                self.answers += 1
                if any(h["id"] == NEW_PRODUCT.id for h in response.json()["hits"]):
                    self.first_new = self.first_new or time.monotonic()
                elif self.first_new is None:
                    self.answers_before_new += 1


def test_a_version_published_once_is_served_by_both_replicas_with_no_failed_request(index_dir: Path, tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    replicas = []
    for name in ("a", "b"):
        copy = tmp_path / f"replica-{name}"
        shutil.copytree(index_dir, copy, ignore=shutil.ignore_patterns("state"))
        replicas.append(copy)
    env = {"VITRINE_INDEX__PUBLISH_POLL_SECONDS": "0.5"}
    with ExitStack() as stack:
        urls = [
            stack.enter_context(serving("--index-dir", str(replica), "--publish-dir", str(shared), env=env))
            for replica in replicas
        ]
        searchers = [Searcher(url) for url in urls]
        for searcher in searchers:
            searcher.start()
        try:
            # The new catalog: the sample shop and one product more, built once (on a copy of
            # the index, whose embedding cache spares re-embedding the rest) and published.
            catalog = tmp_path / "catalog.jsonl"
            write_catalog(catalog, SAMPLE_SIZE, SAMPLE_SEED)
            with catalog.open("a", encoding="utf-8") as handle:
                handle.write(NEW_PRODUCT.to_json() + "\n")
            build_dir = tmp_path / "build"
            shutil.copytree(index_dir, build_dir, ignore=shutil.ignore_patterns("state"))
            built = subprocess.run(
                [sys.executable, "-m", "search.cli", "index", "build", "--catalog", str(catalog), "--index-dir", str(build_dir),
                 "--publish", str(shared), "--quiet"],
                cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"},
                capture_output=True, text=True, timeout=600,
            )
            assert built.returncode == 0, built.stderr[-2000:]
            version = published_version(shared)
            assert version is not None and f"Index {version} published to" in built.stdout

            deadline = time.monotonic() + 300
            while time.monotonic() < deadline and not all(s.first_new for s in searchers):
                assert all(s.is_alive() for s in searchers)
                time.sleep(0.2)
            time.sleep(1.0)  # and a little more traffic on the new version
        finally:
            for searcher in searchers:
                searcher.stop.set()
            for searcher in searchers:
                searcher.join(timeout=120)
        ready = [httpx.get(f"{url}/ready", timeout=30).json() for url in urls]

    assert [s.failures for s in searchers] == [[], []]
    assert all(s.first_new is not None for s in searchers), "a replica never served the new version"
    # The swap happened under traffic: each replica answered on the old version first.
    assert all(s.answers_before_new > 0 and s.answers > s.answers_before_new for s in searchers)
    assert [r["index"]["version"] for r in ready] == [version, version]
    assert all(r["index"]["products"] == SAMPLE_SIZE + 1 for r in ready)
