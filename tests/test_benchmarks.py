"""Benchmark scripts: metric functions on hand-computed examples, and quick end-to-end runs.

Timings are never asserted here (they live in benchmarks/README.md); these tests only prove the
scripts run on real components and produce the documented shapes.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.latency import run_in_process
from benchmarks.metrics import ndcg_at_k, recall_at_k, reciprocal_rank
from benchmarks.querymix import build_mix
from benchmarks.relevance import run_benchmark

ROOT = Path(__file__).parent.parent


def test_ndcg_matches_a_hand_computed_example() -> None:
    qrels = {"a": 3, "b": 2, "c": 0, "d": 1}
    ranked = ["c", "a", "x", "d"]
    dcg = 0 / math.log2(2) + 7 / math.log2(3) + 0 / math.log2(4) + 1 / math.log2(5)
    ideal = 7 / math.log2(2) + 3 / math.log2(3) + 1 / math.log2(4)
    assert ndcg_at_k(ranked, qrels, 10) == pytest.approx(dcg / ideal)
    assert ndcg_at_k(["a", "b", "d"], qrels, 10) == pytest.approx(1.0)
    assert ndcg_at_k(["a"], {}, 10) == 0.0


def test_mrr_and_recall_count_grades_from_one() -> None:
    qrels = {"a": 0, "b": 1, "c": 3}
    assert reciprocal_rank(["a", "x", "b"], qrels) == pytest.approx(1 / 3)
    assert reciprocal_rank(["a", "x"], qrels) == 0.0
    assert recall_at_k(["c", "a"], qrels, 100) == pytest.approx(0.5)
    assert recall_at_k(["a", "c", "b"], qrels, 2) == pytest.approx(0.5)


def test_relevance_benchmark_runs_end_to_end_on_a_tiny_dataset(tmp_path, sample_products, monkeypatch) -> None:
    import benchmarks.relevance as relevance

    monkeypatch.setattr(relevance, "CACHE", tmp_path / "cache")
    dataset = tmp_path / "tiny"
    dataset.mkdir()
    products = sample_products[:40]
    (dataset / "catalog.jsonl").write_text("".join(p.to_json() + "\n" for p in products))
    picks = [products[0], products[5], products[9]]
    (dataset / "queries.tsv").write_text("".join(f"q{i}\t{p.title}\n" for i, p in enumerate(picks)))
    (dataset / "qrels.tsv").write_text("".join(f"q{i}\t{p.id}\t3\n" for i, p in enumerate(picks)))
    result = run_benchmark(dataset)
    assert result["queries"] == 3
    for mode in ("bm25", "vector", "hybrid"):
        assert set(result["metrics"][mode]) == {"ndcg@10", "mrr", "recall@100"}
    assert result["metrics"]["hybrid"]["mrr"] == pytest.approx(1.0)
    json.dumps(result)


def test_latency_replay_reports_percentiles_per_group(engine, sample_products) -> None:
    mix = build_mix(sample_products, 120, seed=3)
    assert {m.kind for m in mix} >= {"head", "tail", "typo", "prefix", "filter"}
    groups = run_in_process(engine, mix)
    assert groups["all"]["n"] == 120
    assert groups["unseen"]["n"] + groups["repeated"]["n"] == 120
    assert groups["repeated"]["n"] > 0 and groups["filtered"]["n"] > 0
    assert set(groups["all"]) == {"n", "p50_ms", "p95_ms", "p99_ms", "qps"}


def test_indexing_benchmark_quick_mode_writes_its_json(tmp_path) -> None:
    out = tmp_path / "indexing.json"
    subprocess.run(
        [sys.executable, "-m", "benchmarks.indexing", "--quick", "--json", str(out)],
        cwd=ROOT, check=True, capture_output=True, timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    result = json.loads(out.read_text())
    row = result["results"][0]
    assert row["products"] == 500 and row["rebuild_embedded"] == 0
    assert result["machine"]["cores"] >= 1


def test_peers_get_the_same_sold_out_rule_as_vitrine() -> None:
    from benchmarks.relevance import apply_stock_rule

    in_stock = {"a": True, "b": False, "c": True, "d": False}
    assert apply_stock_rule(["b", "a", "d", "c"], in_stock, "sink") == ["a", "c", "b", "d"]
    assert apply_stock_rule(["b", "a", "d", "c"], in_stock, "hide") == ["a", "c"]
    assert apply_stock_rule(["b", "a"], in_stock, None) == ["b", "a"]
    assert apply_stock_rule(["x", "b"], in_stock, "sink") == ["x", "b"]  # unknown ids count as in stock


def test_generated_queries_judge_every_product_of_the_type(sample_products) -> None:
    from benchmarks.datasets import _facts, make_queries

    queries, qrels = make_queries(sample_products, 20, seed=3)
    type_only = [qid for qid, text in queries.items() if " " not in text.strip()]
    assert type_only
    for qid in type_only:
        kind = queries[qid]
        of_type = {p.id for p in sample_products if _facts(p)["type"] == kind}
        assert set(qrels[qid]) == of_type and set(qrels[qid].values()) == {3}
    assert all(qrels[qid] for qid in queries)


def test_experiments_benchmark_runs_end_to_end_in_quick_mode(tmp_path, mutable_index_dir, embedder) -> None:
    from benchmarks import experiments
    from tests.conftest import SAMPLE_SEED, SAMPLE_SIZE

    out = tmp_path / "experiments.json"
    result = experiments.main([
        "--products", str(SAMPLE_SIZE), "--seed", str(SAMPLE_SEED), "--index-dir", str(mutable_index_dir),
        "--warmup", "60", "--visitors", "120", "--aa-runs", "4", "--aa-visitors", "80", "--json", str(out),
    ], embedder=embedder)
    written = json.loads(out.read_text())
    variants = {row["variant"]: row for row in written["ab"]["variants"]}
    assert set(variants) == {"control", "popular"} and written == json.loads(json.dumps(result))
    assert sum(row["visitors"] for row in variants.values()) == 120
    assert set(variants["popular"]["uplift"]) == {"converted", "revenue", "clicked", "carted"}
    assert written["aa"]["runs"] == 4 and 0.0 <= written["aa"]["false_positive_rate_converted"] <= 1.0
def test_judgements_with_fractional_grades_are_read_and_scored(tmp_path) -> None:
    from benchmarks.relevance import load_queries

    (tmp_path / "queries.tsv").write_text("q1\tangle bracket\n")
    (tmp_path / "qrels.tsv").write_text("q1\ta\t2.67\nq1\tb\t1.33\nq1\tc\t1\n")
    queries, qrels = load_queries(tmp_path)
    assert qrels == {"q1": {"a": 2.67, "b": 1.33, "c": 1.0}}
    assert ndcg_at_k(["a", "b", "c"], qrels["q1"], 10) == pytest.approx(1.0)
    assert ndcg_at_k(["b", "a"], qrels["q1"], 10) < 1.0


@pytest.mark.slow
def test_scale_benchmark_runs_workers_and_replicas_without_failed_requests(tmp_path) -> None:
    out = tmp_path / "scale.json"
    subprocess.run(
        [sys.executable, "-m", "benchmarks.scale", "--quick", "--products", "300", "--clients", "2", "--seconds", "2",
         "--warmup", "0.5", "--scenarios", "workers-2,replicas-2", "--json", str(out)],
        cwd=ROOT, check=True, capture_output=True, timeout=900, env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    result = json.loads(out.read_text())
    assert set(result["scenarios"]) == {"workers-2", "replicas-2"}
    for scenario in result["scenarios"].values():
        assert scenario["failed"] == 0, scenario["failure_examples"]
        assert scenario["requests_ok"] > 0 and scenario["latency_ms"]["search"]["p99"] > 0
    assert result["machine"]["cores"] >= 1 and "load_at_end" in result["machine"]


@pytest.mark.slow
def test_scale_benchmark_keeps_searching_through_a_postgresql_outage_and_stores_every_accepted_event(tmp_path) -> None:
    from benchmarks.scale import postgres_stores_available
    from tests.services import unavailable

    available, why = postgres_stores_available()
    if not available:
        unavailable("a throwaway PostgreSQL cluster", RuntimeError(why))
    out = tmp_path / "scale.json"
    subprocess.run(
        [sys.executable, "-m", "benchmarks.scale", "--quick", "--products", "300", "--clients", "2", "--seconds", "4",
         "--warmup", "0.5", "--outage", "2", "--scenarios", "pg-outage", "--json", str(out)],
        cwd=ROOT, check=True, capture_output=True, timeout=900, env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    outage = json.loads(out.read_text())["scenarios"]["pg-outage"]
    assert outage["failed_by_kind"]["search"] == 0, outage["failure_examples"]
    assert outage["events_accepted"] > 0
    assert outage["events_accepted_not_stored"] == 0


def test_sweep_chooses_each_datasets_setting_without_its_own_judgements() -> None:
    """benchmarks.sweep: the left-out score uses the setting best on the other datasets, and
    cross-validation scores each fold with a setting chosen without that fold."""
    import numpy as np

    from benchmarks.sweep import evaluate

    off, good_elsewhere, good_here = (("w", 0),), (("w", 1),), (("w", 2),)
    grid = [off, good_elsewhere, good_here]
    n = 50
    here = {"name": "here", "scores": {off: np.full(n, 0.5), good_elsewhere: np.full(n, 0.4), good_here: np.full(n, 0.9)}}
    other = {"name": "other", "scores": {off: np.full(n, 0.5), good_elsewhere: np.full(n, 0.6), good_here: np.full(n, 0.45)}}
    for d in (here, other):
        d["timing"] = {s: (0.1, 0.2) for s in grid}
    report = evaluate([here, other], grid)
    assert report["here"]["lodo_setting"] == "w=1" and report["here"]["lodo"] == 0.4
    assert report["other"]["lodo_setting"] == "w=2" and report["other"]["lodo"] == 0.45
    # In CV, each dataset's own four folds (+0.4 for w=2) outweigh the other dataset (-0.05).
    assert set(report["here"]["cv_settings"]) == {"w=2"} and report["here"]["cv"] == 0.9
