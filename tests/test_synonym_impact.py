"""Synonym candidates ranked by what they would do for the shoppers who needed them.

Properties checked, on the sample index with searches logged through the service:
1. A shopper word re-phrased in the same visit, then a click: the candidate whose rescued
   products are of the type the shopper chose outranks one rescuing as many searches with
   another type, whatever the generators' confidence.
2. Without any behaviour, the specific word outranks an over-broad one by meaning alone: its
   rescued products are closer to the shopper's word.
3. Through the whole suggestion run: the review list shows first the word a shopper re-phrased
   to, and any other candidate for the word after it, its confidence tempered by what it finds.
4. The measurement stays within its scale and names its evidence per rescued search.
5. Candidates measured one after another are each answered with their own words (no cached
   plan of the one before).
(The review list's order by measured impact is a store property: tests/test_synonyms.py.)
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from indexer.embedding import Embedder
from search.models import SearchRequest
from search.service import SearchService
from search.settings import Settings
from synonyms.generators import SearchHistory, failed_queries, impact, suggest
from synonyms.synonym_store import Kind, Status, Synonym


@pytest.fixture
def service(mutable_index_dir: Path, embedder: Embedder) -> Iterator[SearchService]:
    svc = SearchService.open(mutable_index_dir, Settings(index_dir=mutable_index_dir), embedder=embedder)
    yield svc
    svc.close()


def _search(service: SearchService, q: str, visitor: str, session: str):
    return service.search(SearchRequest(q=q, visitor_id=visitor, session_id=session))


def _fails(service: SearchService, q: str, visitor: str, session: str) -> bool:
    """Searched and logged as failing: nothing found on the query's own terms."""
    result = _search(service, q, visitor, session)
    return result.total == 0 or result.relaxed


def _click(service: SearchService, result, visitor: str, session: str, position: int = 0) -> None:
    service.visitors.ingest([{"type": "click", "visitor_id": visitor, "session_id": session,
                              "product_id": result.hits[position].id, "search_id": result.search_id}])


def _measure(service: SearchService, typed: str, target: str) -> dict:
    inputs = service.synonym_inputs()
    history = SearchHistory.since(inputs, 0.0)
    candidate = Synonym(0, Kind.one_way, [typed], [target], Status.pending, "test", 0.5, {})
    return impact(service.engine, candidate, failed_queries(history), history)


def test_the_type_shoppers_chose_after_rephrasing_outranks_another_rescuing_as_much(service: SearchService) -> None:
    for v in range(3):
        assert _fails(service, "kicks", f"k{v}", f"k{v}-s")
    retry = _search(service, "sneakers", "k0", "k0-s")
    _click(service, retry, "k0", "k0-s")
    sneakers, boots = _measure(service, "kicks", "sneakers"), _measure(service, "kicks", "boots")
    # Both rescue every logged search: the count alone cannot tell them apart.
    assert sneakers["rescued_searches"] == boots["rescued_searches"] == 3
    [found] = sneakers["rescued_queries"]
    assert found["chosen_sessions"] == 1 and found["chosen_type_share"] > 0.5
    assert boots["rescued_queries"][0]["chosen_type_share"] < 0.2
    assert sneakers["score"] > boots["score"]


def test_the_specific_word_outranks_an_over_broad_one_without_behaviour(service: SearchService) -> None:
    for v in range(2):
        assert _fails(service, "sneaks", f"s{v}", f"s{v}-s")
    specific, broad = _measure(service, "sneaks", "sneakers"), _measure(service, "sneaks", "shoes")
    assert specific["rescued_searches"] == broad["rescued_searches"] == 2
    assert "chosen_type_share" not in specific["rescued_queries"][0]  # nobody showed a choice
    # "shoes" also brings boots, heels and sandals: further from what "sneaks" means.
    assert specific["rescued_queries"][0]["fit"] > broad["rescued_queries"][0]["fit"]
    assert specific["score"] > broad["score"]


def test_review_list_shows_first_the_word_shoppers_rephrased_to(service: SearchService) -> None:
    for v in range(3):
        assert _fails(service, "kicks", f"r{v}", f"r{v}-s")
    retry = _search(service, "sneakers", "r0", "r0-s")
    _click(service, retry, "r0", "r0-s")
    created = suggest(service.synonym_inputs(), since=0.0)
    mine = [s for s in service.synonyms.list(Status.pending) if s.terms == ["kicks"]]
    assert mine and {s.id for s in mine} <= {s.id for s in created}
    assert mine[0].targets == ["sneakers"], [(s.targets, s.impact.get("score")) for s in mine]
    for other in mine[1:]:  # proposed (they do rescue the searches), measured for what they find
        assert other.impact["score"] < mine[0].impact["score"]
        assert other.confidence <= other.impact["generator_confidence"]


def test_measurement_stays_within_its_scale_and_explains_each_rescue(service: SearchService) -> None:
    for q in ["gumboots", "red gumboots", "gumboots"]:
        assert _fails(service, q, "g", "g-s")
    measured = _measure(service, "gumboots", "boots")
    assert measured["zero_result_searches"] == 3
    by_query = {q["query"]: q for q in measured["rescued_queries"]}
    assert by_query["gumboots"]["searches"] == 2
    assert measured["rescued_searches"] == sum(q["searches"] for q in by_query.values())
    assert 0.0 <= measured["quality"] <= 1.0 and 0.0 <= measured["score"] <= measured["rescued_searches"]
    assert all(0.0 <= q["fit"] <= 1.0 and q["now_results"] > 0 for q in by_query.values())
    # Something that rescues nothing scores nothing.
    nothing = _measure(service, "gumboots", "zzqx")
    assert (nothing["rescued_searches"], nothing["score"], nothing["rescued_queries"]) == (0, 0.0, [])



def test_each_candidate_measured_in_turn_is_answered_with_its_own_words(service: SearchService) -> None:
    # What-if indexes are made and dropped one after another: none may be answered from the
    # plan or results cached for the one before it (which Python may have freed at the same address).
    engine = service.engine
    for target in ["boots", "sneakers", "boots", "sneakers"]:
        index = engine.synonym_index_with([("kicks", target)])
        result = engine.search(SearchRequest(q="kicks", limit=5), synonyms=index)
        del index
        assert result.applied_synonyms == [f"kicks → {target}"]
        assert all(target in h.title.lower() for h in result.hits[:3]), [h.title for h in result.hits]
