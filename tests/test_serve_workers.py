"""`vitrine serve --workers 2`: one server, two worker processes, one view of their metrics.

Properties checked, on a real server process:
  1. both workers answer (two process ids behind one port), each ready;
  2. /metrics, whichever worker answers it, adds up the requests every worker served
     (Prometheus multiprocess mode): the /health requests counted equal those sent, although
     each worker answered only some of them; searches likewise;
  3. with `--log-format json` every line is JSON, and each search's request line carries the
     search_id its response returned.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest

from tests.servers import serving

KEY = "workers-admin-key"

pytestmark = pytest.mark.slow


def _metric(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        key, value = line.rsplit(" ", 1)
        if key.split("{")[0] != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', key))
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(value)
    return total


def test_two_workers_answer_and_metrics_and_logs_cover_both(mutable_index_dir: Path, tmp_path: Path) -> None:
    log_path = tmp_path / "server.log"
    env = {"VITRINE_SERVER__ADMIN_KEY": KEY}
    with log_path.open("wb") as log_file, serving(
        "--index-dir", str(mutable_index_dir), "--workers", "2", env=env, stderr=log_file, cli_args=("--log-format", "json"),
    ) as url:
        # A new connection per request: the kernel hands each to whichever worker accepts.
        pids: dict[int, int] = {}
        sent = 0
        while len(pids) < 2 and sent < 2000:
            response = httpx.get(f"{url}/health", timeout=30)
            assert response.status_code == 200
            pids[response.json()["pid"]] = pids.get(response.json()["pid"], 0) + 1
            sent += 1
        assert len(pids) == 2, f"one worker answered all {sent} requests"
        search_ids = []
        for q in ("dress", "red shirt", "boots", "wool sweater", "qqqxzzv wwwkkjj"):
            response = httpx.get(f"{url}/search", params={"q": q}, timeout=30)
            assert response.status_code == 200
            search_ids.append(response.json()["search_id"])
        scrapes = [
            httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {KEY}"}, timeout=30).text for _ in range(6)
        ]
    for text in scrapes:
        assert _metric(text, "vitrine_http_requests_total", route="/health", status="200") == sent
        assert _metric(text, "vitrine_searches_total") == len(search_ids)
        assert _metric(text, "vitrine_zero_result_searches_total") == 1
    assert all(count < sent for count in pids.values())

    # Every log line is JSON. Python's multiprocessing resource tracker (a helper process of
    # its own, no logger) may add its leaked-semaphore warning at exit: not a log line.
    lines = [line for line in log_path.read_text().splitlines() if line.strip()]
    lines = [line for line in lines if "resource_tracker" not in line and not line.startswith("  warnings.warn")]
    records = [json.loads(line) for line in lines]
    assert any(r.get("event", "").startswith("Uvicorn running") for r in records)  # uvicorn's own lines too
    logged = {r.get("search_id") for r in records if r.get("event") == "request" and r.get("path") == "/search"}
    assert set(search_ids) <= logged
