"""Do the synonym suggestions find the catalog's words for the shoppers' words?

    python -m benchmarks.synonyms [--products 5000] [--crowdflower ../shared/data/crowdflower]
                                  [--json benchmarks/results/synonyms.json]

1. Vocabulary gaps on the generated shop: shopper words the catalog never uses ("couch",
   "gumboots", "frock"...), each with the catalog words that mean the same. Simulated visitors
   search them (alone and with a colour) through the engine, so they land in the search log as
   zero-result searches; a third of the gaps also get the behavioural signal (the visitor then
   searches the catalog word and clicks). Then `suggest` runs, and we measure:
     - coverage: gaps with at least one suggestion for the shopper word;
     - precision@1: the most confident suggestion for the word names a right catalog word;
     - rescued: after approving the right suggestions (and rejecting the others, as a
       merchandiser would), the share of the logged zero-result searches that now return
       products containing a right catalog word in their top 10.
2. CrowdFlower (optional): nDCG@10 of hybrid search with no synonyms, and with every suggestion
   the generators make from its 261 queries approved unreviewed (the worst case); a change
   below zero there is what human review is for.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.latency import cached_sample_index
from benchmarks.relevance import _cpu_model
from indexer.normalize import words
from search.models import SearchRequest
from search.query import stem
from search.service import SearchService
from search.settings import Settings
from synonyms.generators import suggest
from synonyms.synonym_store import Status

# shopper word -> catalog words that mean the same (any of them is a right answer)
GAPS: dict[str, list[str]] = {
    "couch": ["sofa", "sofas"], "settee": ["sofa", "sofas", "loveseat"], "carpet": ["rug", "rugs"],
    "gumboots": ["boots"], "wellies": ["boots"], "frock": ["dress", "dresses"], "pullover": ["jumper", "sweater", "jumpers"],
    "slacks": ["trousers", "chinos"], "sneaks": ["sneakers", "trainers"], "kicks": ["sneakers", "trainers"],
    "comforter": ["duvet", "blanket", "blankets"], "timepiece": ["watch", "wristwatch", "watches"],
    "eyewear": ["sunglasses", "glasses"], "raincoat": ["jacket", "coat", "parka", "coats"], "tshirt": ["t shirt", "t-shirt", "tee"],
    "hoody": ["hoodie", "hoodies"], "tunic": ["dress", "top", "blouse"], "wristband": ["bracelet", "bracelets"],
    "backpack": ["rucksack", "bag"], "flipflops": ["flip flops", "flip"], "tumbler": ["mug", "cup", "glass"],
    "lantern": ["lamp", "lamps", "lighting"], "jewelry": ["jewellery"], "gray": ["grey"], "color": ["colour"],
}


def _gap_run(products: int, seed: int) -> dict[str, Any]:
    index_dir, _ = cached_sample_index(products)
    state = Path(tempfile.mkdtemp(prefix="vitrine-synonyms-"))
    engine = SearchService.open(index_dir, Settings(index_dir=index_dir, data_dir=state))
    vocabulary = engine.engine.snapshot.vocabulary
    gaps = {w: [t for t in targets if all(part in vocabulary for part in t.replace("-", " ").split() if len(part) > 1)]
            for w, targets in GAPS.items() if w not in vocabulary}
    gaps = {w: t for w, t in gaps.items() if t}
    rng = random.Random(seed)
    colours = ["red", "black", "blue", "green", "white", "grey"]
    def right_in_top10(word: str, hits) -> bool:
        return any(any(t in h.title.lower().replace("-", " ") for t in gaps[word]) for h in hits[:10])

    searched: dict[str, int] = {}  # zero-result gap searches
    all_searches: list[tuple[str, str, bool]] = []  # (word, query, right product in the top 10)
    for i, (word, targets) in enumerate(sorted(gaps.items())):
        for v in range(3):
            visitor, session = f"{word}-{v}", f"{word}-{v}-s"
            for query in (word, f"{rng.choice(colours)} {word}"):
                result = engine.search(SearchRequest(q=query, visitor_id=visitor, session_id=session))
                all_searches.append((word, query, right_in_top10(word, result.hits)))
                if result.total == 0:
                    searched[query] = searched.get(query, 0) + 1
            if i % 3 == 0 and v == 0:  # behavioural signal: retry with the catalog's word and click
                retry = engine.search(SearchRequest(q=targets[0], visitor_id=visitor, session_id=session))
                if retry.hits:
                    engine.visitors.ingest([{"type": "click", "visitor_id": visitor, "session_id": session,
                                             "product_id": retry.hits[0].id, "search_id": retry.search_id}])
    started = time.perf_counter()
    created = suggest(engine.synonym_inputs())
    suggest_seconds = time.perf_counter() - started
    per_gap = {}
    store = engine.synonyms
    def is_right(suggested: list[str], targets: list[str]) -> bool:
        # "jackets & coats" names coats: a right answer for raincoat (compared by word stems).
        said = {stem(w) for w in words(" ".join(suggested))}
        return any({stem(w) for w in words(t)} <= said for t in targets)

    review_order = [s.id for s in store.list(Status.pending)]  # the review page's order
    for word, targets in gaps.items():
        mine = sorted((s for s in created if word in s.terms), key=lambda s: review_order.index(s.id))
        top = mine[0] if mine else None
        right = top is not None and is_right(top.targets, targets)
        per_gap[word] = {"targets": targets, "top": top.solr() if top else None, "source": top.source if top else None,
                         "confidence": top.confidence if top else None, "right": right,
                         "order": [[s.solr(), s.impact.get("score"), s.confidence] for s in mine],
                         "any_right": any(is_right(s.targets, targets) for s in mine)}
        for s in mine:
            if is_right(s.targets, targets):
                store.approve(s.id, "benchmark")
            else:
                store.reject(s.id, "benchmark")
    engine.reload_synonyms()
    zero_searches = sum(searched.values())
    rescued = 0
    for query, count in searched.items():
        word = next(w for w in gaps if w in query.split())
        result = engine.search(SearchRequest(q=query, limit=10), record=False)
        if any(any(t in (h.title.lower().replace("-", " ")) for t in gaps[word]) for h in result.hits):
            rescued += count
    after = [right_in_top10(word, engine.search(SearchRequest(q=query, limit=10), record=False).hits)
             for word, query, _ in all_searches]
    covered = [g for g in per_gap.values() if g["top"]]
    engine.close()
    shutil.rmtree(state, ignore_errors=True)
    return {
        "products": products, "gaps": len(gaps), "zero_result_searches": zero_searches,
        "coverage": len(covered) / len(gaps) if gaps else 0.0,
        "precision_at_1": sum(g["right"] for g in covered) / len(covered) if covered else 0.0,
        "right_among_suggestions": sum(g["any_right"] for g in per_gap.values()) / len(gaps) if gaps else 0.0,
        "rescued_share": rescued / zero_searches if zero_searches else 0.0,
        "gap_searches": len(all_searches),
        "right_in_top10_before": sum(b for _, _, b in all_searches) / len(all_searches) if all_searches else 0.0,
        "right_in_top10_after": sum(after) / len(after) if after else 0.0,
        "suggest_seconds": suggest_seconds, "per_gap": per_gap,
        "suggested": len(created),
        "zero_impact_suggested": sum(1 for s in created if not s.impact.get("rescued_searches")),
    }


def _crowdflower(dataset: Path) -> dict[str, Any]:
    from benchmarks.relevance import cached_index, evaluate, load_queries
    from indexer.config import IndexConfig

    index_dir = cached_index((dataset / "catalog.jsonl").resolve(), IndexConfig())
    queries, qrels = load_queries(dataset)
    state = Path(tempfile.mkdtemp(prefix="vitrine-synonyms-cf-"))
    engine = SearchService.open(index_dir, Settings(index_dir=index_dir, data_dir=state))

    def run(text: str) -> list[str]:
        return [h.id for h in engine.search(SearchRequest(q=text, limit=10), record=False).hits]

    before = evaluate(run, queries, qrels)
    for _ in range(3):  # searched a few times without a click: every query counts as failing
        for text in queries.values():
            engine.search(SearchRequest(q=text, visitor_id="cf"))
    created = suggest(engine.synonym_inputs())
    # Each suggestion alone: which queries it expands and what it does to their nDCG.
    per_suggestion = []
    for s in created:
        index = engine.engine.synonym_index_with(s.pairs())
        expanded = {qid: text for qid, text in queries.items()
                    if engine.search(SearchRequest(q=text, limit=0), record=False, synonyms=index).applied_synonyms}
        if not expanded:
            continue
        subset = {qid: qrels.get(qid, {}) for qid in expanded}
        without = evaluate(run, expanded, subset)["ndcg@10"]
        with_it = evaluate(lambda t, i=index: [h.id for h in engine.search(SearchRequest(q=t, limit=10), record=False, synonyms=i).hits],
                           expanded, subset)["ndcg@10"]
        per_suggestion.append({"synonym": s.solr(), "confidence": s.confidence, "queries": len(expanded),
                               "ndcg10_change_on_those_queries": round(with_it - without, 4)})
    # What a reviewer would approve: the suggestions that do not hurt the queries they touch.
    keep = {p["synonym"] for p in per_suggestion if p["ndcg10_change_on_those_queries"] >= 0}
    reviewed = engine.engine.synonym_index_with([pair for s in created if s.solr() in keep for pair in s.pairs()])
    after_reviewed = evaluate(
        lambda t: [h.id for h in engine.search(SearchRequest(q=t, limit=10), record=False, synonyms=reviewed).hits],
        queries, qrels)["ndcg@10"]
    for s in created:
        engine.synonyms.approve(s.id, "benchmark (unreviewed)")
    engine.reload_synonyms()
    after = evaluate(run, queries, qrels)
    harmless = [p for p in per_suggestion if p["ndcg10_change_on_those_queries"] >= 0]
    changed = sum(bool(engine.search(SearchRequest(q=t, limit=0), record=False).applied_synonyms) for t in queries.values())
    engine.close()
    shutil.rmtree(state, ignore_errors=True)
    return {"suggestions_approved_unreviewed": [s.solr() for s in created], "queries_expanded": changed,
            "per_suggestion": per_suggestion, "harmless_suggestions": len(harmless),
            "ndcg10_with_reviewed": after_reviewed,
            "ndcg10_without": before["ndcg@10"], "ndcg10_with": after["ndcg@10"],
            "ndcg10_change": after["ndcg@10"] - before["ndcg@10"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--products", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--crowdflower", type=Path, default=None)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    result: dict[str, Any] = {"gaps": _gap_run(args.products, args.seed)}
    gaps = result["gaps"]
    print(f"\n{gaps['gaps']} vocabulary gaps, {gaps['zero_result_searches']} zero-result searches, "
          f"{gaps['products']:,} products; suggest took {gaps['suggest_seconds']:.1f} s")
    print(f"coverage {gaps['coverage']:.2f} · precision@1 {gaps['precision_at_1']:.2f} · "
          f"right answer among suggestions {gaps['right_among_suggestions']:.2f}")
    print(f"{gaps['suggested']} suggestions, {gaps['zero_impact_suggested']} of them rescuing no search")
    print(f"zero-result searches rescued after approving the right suggestions: {gaps['rescued_share']:.2f}; "
          f"gap searches with a right product in the top 10: {gaps['right_in_top10_before']:.2f} before, "
          f"{gaps['right_in_top10_after']:.2f} after")
    for word, g in sorted(gaps["per_gap"].items()):
        mark = "ok " if g["right"] else ("-- " if g["top"] is None else "XX ")
        print(f"  {mark}{word:<12} {g['top'] or '(no suggestion)':<32} {g['source'] or ''}")
    if args.crowdflower:
        result["crowdflower"] = _crowdflower(args.crowdflower)
        cf = result["crowdflower"]
        print(f"CrowdFlower nDCG@10: {cf['ndcg10_without']:.4f} without synonyms, {cf['ndcg10_with']:.4f} with "
              f"{len(cf['suggestions_approved_unreviewed'])} suggestions approved unreviewed "
              f"({cf['queries_expanded']} queries expanded; change {cf['ndcg10_change']:+.4f})")
        print(f"  with only the {cf['harmless_suggestions']} suggestions a reviewer keeps (no loss on the queries they touch): "
              f"{cf['ndcg10_with_reviewed']:.4f} ({cf['ndcg10_with_reviewed'] - cf['ndcg10_without']:+.4f})")
        for p in sorted(cf["per_suggestion"], key=lambda p: p["ndcg10_change_on_those_queries"]):
            print(f"  {p['ndcg10_change_on_those_queries']:+.4f} on {p['queries']} queries  {p['synonym']}  ({p['confidence']:.2f})")
    result["machine"] = {"cpu": _cpu_model(), "cores": os.cpu_count()}
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
