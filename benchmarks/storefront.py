"""Keystroke to rendered results in the search widget, measured in a real browser.

    python -m benchmarks.storefront [--products 5000] [--queries 40] [--json benchmarks/results/storefront.json]

Serves the demo shop (the sample catalog, seed 7, as `vitrine demo` builds it) with uvicorn,
opens it in headless chromium and types shopper queries one key at a time at 120 ms per key
(a fast typist). For every keystroke the widget times, with `performance.now()`, the moment
the input event fired to the moment the dropdown holding that text's suggestions and product
previews is in the DOM (debounce, both HTTP requests, JSON parsing and rendering included);
keystrokes superseded by the next one before their results arrive are not counted (their
requests are aborted). Prints p50/p95/p99 and the widget's gzipped size.
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import uvicorn

from benchmarks.indexing import machine
from benchmarks.latency import cached_sample_index
from benchmarks.servers import free_port
from search.api.app import create_app
from search.api.routes_storefront import STATIC
from search.settings import Settings

QUERIES = [
    "red dress", "linen shirt", "sneakers", "wool jumper", "black jeans", "leather bag", "floral midi dress",
    "running shoes", "throw pillow", "ceramic mug", "denim jacket", "silk scarf", "white tee", "rain jacket",
    "cashmere sweater", "oak table lamp", "summer sandals", "navy chinos", "pink blouse", "velvet cushion",
]
KEY_INTERVAL_S = 0.12
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


def run(products: int, n_queries: int) -> dict:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    host = machine()  # before the run: its load average is the other work on the machine
    index_dir, _ = cached_sample_index(products)
    work = Path(tempfile.mkdtemp(prefix="vitrine-storefront-"))
    target = work / "index"
    shutil.copytree(index_dir, target, ignore=shutil.ignore_patterns("state"))
    settings = Settings(index_dir=target, server={"demo_shop": True})
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,900"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        driver.get(f"http://127.0.0.1:{port}/")
        box = driver.find_element(By.CSS_SELECTOR, "input.vt-input")
        box.send_keys("warm up")
        time.sleep(1.0)
        driver.execute_script("Vitrine.widgets[0].timings.length = 0")
        keystrokes = 0
        for i in range(n_queries):
            box.clear()
            for ch in QUERIES[i % len(QUERIES)]:
                box.send_keys(ch)
                keystrokes += 1
                time.sleep(KEY_INTERVAL_S)
            time.sleep(0.4)
        timings = driver.execute_script("return Vitrine.timings()")
    finally:
        driver.quit()
        server.should_exit = True
        thread.join(timeout=10)
        shutil.rmtree(work, ignore_errors=True)
    a = np.asarray(timings)
    size = len(gzip.compress((STATIC / "widget" / "vitrine.js").read_bytes() + (STATIC / "widget" / "vitrine.css").read_bytes(), 9))
    return {
        "products": products,
        "queries": n_queries,
        "keystrokes": keystrokes,
        "rendered": len(a),
        "key_interval_ms": KEY_INTERVAL_S * 1000,
        "p50_ms": round(float(np.percentile(a, 50)), 1),
        "p95_ms": round(float(np.percentile(a, 95)), 1),
        "p99_ms": round(float(np.percentile(a, 99)), 1),
        "max_ms": round(float(a.max()), 1),
        "widget_gzip_bytes": size,
        "machine": host,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=5000)
    parser.add_argument("--queries", type=int, default=40)
    parser.add_argument("--json", default="benchmarks/results/storefront.json")
    args = parser.parse_args()
    result = run(args.products, args.queries)
    print(f"keystroke -> rendered dropdown, {result['products']} products, {result['keystrokes']} keystrokes "
          f"({result['rendered']} rendered, the rest superseded)")
    print(f"{'p50':>8} {'p95':>8} {'p99':>8} {'max':>8}  widget gzip")
    print(f"{result['p50_ms']:>6.1f}ms {result['p95_ms']:>6.1f}ms {result['p99_ms']:>6.1f}ms {result['max_ms']:>6.1f}ms  "
          f"{result['widget_gzip_bytes'] / 1024:.1f} KB")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
