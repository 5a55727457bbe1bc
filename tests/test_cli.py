"""The `vitrine` command line, run as a shopkeeper would run it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent
FIXTURES = Path(__file__).parent / "fixtures" / "catalogs"


def vitrine(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "search.cli", *args],
        cwd=ROOT,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_index_build_lists_rejections_and_fails_over_the_allowed_share(tmp_path) -> None:
    result = vitrine("index", "build", "--catalog", str(FIXTURES / "products_v1.jsonl"), "--index-dir", str(tmp_path), "--quiet")
    assert result.returncode == 2
    assert "products_v1.jsonl:3: invalid JSON" in result.stderr
    assert "--max-rejected-share" in result.stderr
    assert not (tmp_path / "CURRENT").exists()


def test_index_build_publishes_and_reports_a_summary(tmp_path) -> None:
    result = vitrine("index", "build", "--catalog", str(FIXTURES / "merchant_feed.tsv"), "--index-dir", str(tmp_path), "--max-rejected-share", "0.5", "--quiet")
    assert result.returncode == 0, result.stderr
    assert "merchant_feed.tsv:6: price" in result.stderr
    assert "products          3" in result.stdout
    info = vitrine("index", "info", "--index-dir", str(tmp_path))
    assert json.loads(info.stdout)["products"] == 3

    stock = vitrine("index", "stock", "DRS-1-S=0", "nope=1", "--index-dir", str(tmp_path))
    assert stock.returncode == 1
    assert "updated 1 variant" in stock.stdout and "unknown SKU: nope" in stock.stderr

    search = vitrine("search", "floral dress", "--index-dir", str(tmp_path), "--json")
    hits = json.loads(search.stdout)["hits"]
    assert hits[0]["id"] == "DRS-1" and hits[0]["available_sizes"] == ["L"]
