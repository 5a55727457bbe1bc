"""Synonyms: the review workflow and its audit trail, Solr import/export, generators, and the
end-to-end path from zero-result searches to approved synonyms that change results."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from indexer.embedding import Embedder
from search.api.app import create_app
from search.database import Database
from search.models import SearchRequest
from search.service import SearchService
from search.settings import Settings
from synonyms.generators import spelling_variants
from synonyms.synonym_store import (
    Kind,
    Status,
    SynonymError,
    SynonymNotFound,
    SynonymStore,
    export_solr,
    parse_solr,
)

ADMIN = {"X-Admin-Key": "k", "X-Admin-User": "maria"}


# ---- the store -----------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SynonymStore]:
    if request.param == "postgres":
        database = Database.open(request.getfixturevalue("pg_url"))
        yield SynonymStore.on_postgres(database)
        database.close()
        return
    s = SynonymStore(tmp_path / "synonyms.db")
    yield s
    s.close()


def _pending(store: SynonymStore, typed: str, target: str):
    from synonyms.synonym_store import Synonym

    return store.suggest(Synonym(0, Kind.one_way, [typed], [target], Status.pending, "semantic", 0.7, {"cosine": 0.7}))


def test_decisions_are_audited_with_who_when_and_what_changed(store: SynonymStore) -> None:
    entry = _pending(store, "couch", "sofas")
    approved = store.approve(entry.id, "maria", "catalog says sofa", targets=["sofa"])
    assert (approved.status, approved.targets, approved.decided_by) == (Status.approved, ["sofa"], "maria")
    reverted = store.revert(entry.id, "tom", "wait for the new range")
    assert reverted.status == Status.pending
    trail = store.audit(entry.id)
    assert [(a["action"], a["actor"]) for a in trail] == [
        ("suggested", "semantic"), ("edited and approved", "maria"), ("reverted", "tom")]
    assert trail[1]["before"]["targets"] == ["sofas"] and trail[1]["after"]["targets"] == ["sofa"]
    assert trail[1]["note"] == "catalog says sofa"


def test_rejected_pairs_are_never_suggested_again(store: SynonymStore) -> None:
    entry = _pending(store, "settee", "set")
    store.reject(entry.id, "maria")
    assert _pending(store, "settee", "set") is None
    assert store.list(Status.pending) == []


def test_only_approved_entries_are_served_and_the_version_moves(store: SynonymStore) -> None:
    entry = _pending(store, "couch", "sofa")
    before = store.version()
    assert store.approved() == []
    store.approve(entry.id, "maria")
    assert [s.solr() for s in store.approved()] == ["couch => sofa"]
    assert store.version() > before


def test_invalid_edits_are_refused_and_nothing_changes(store: SynonymStore) -> None:
    entry = _pending(store, "couch", "sofa")
    with pytest.raises(SynonymError, match="differ"):
        store.approve(entry.id, "maria", targets=["couch"])
    with pytest.raises(SynonymError, match="at least two"):
        store.approve(entry.id, "maria", kind=Kind.equivalent, terms=["couch"], targets=[])
    assert store.get(entry.id).status == Status.pending
    with pytest.raises(SynonymNotFound):
        store.approve(999, "maria")


def test_entries_with_more_rescued_searches_are_listed_first(store: SynonymStore) -> None:
    low, high = _pending(store, "couch", "sofa"), _pending(store, "sneakers", "trainers")
    store.set_impact(low.id, {"rescued_searches": 2})
    store.set_impact(high.id, {"rescued_searches": 9})
    assert [s.id for s in store.list(Status.pending)] == [high.id, low.id]


def test_entries_rescuing_as_many_searches_are_listed_by_measured_impact(store: SynonymStore) -> None:
    boots, sneakers, older = _pending(store, "kicks", "boots"), _pending(store, "kicks", "sneakers"), _pending(store, "couch", "sofa")
    store.set_impact(boots.id, {"rescued_searches": 5, "score": 1.5})
    store.set_impact(sneakers.id, {"rescued_searches": 5, "score": 4.3})
    store.set_impact(older.id, {"rescued_searches": 3})  # measured before there were scores: its count stands in
    assert [s.id for s in store.list(Status.pending)] == [sneakers.id, older.id, boots.id]


def test_forgetting_queries_scrubs_evidence_and_the_audit_trail(store: SynonymStore) -> None:
    from synonyms.synonym_store import Synonym

    entry = store.suggest(Synonym(0, Kind.one_way, ["couch"], ["sofa"], Status.pending, "behavioural", 0.7,
                                  {"behavioural": {"queries": ["couch for anna", "couch"]}}))
    assert store.forget_queries({"couch for anna"}) == 2  # the entry and its audit row
    assert store.get(entry.id).evidence == {"behavioural": {"queries": ["couch"]}}
    assert store.audit(entry.id)[0]["after"]["evidence"]["behavioural"]["queries"] == ["couch"]


def test_decisions_survive_reopening_the_store(tmp_path: Path) -> None:
    first = SynonymStore(tmp_path / "s.db")
    entry = _pending(first, "couch", "sofa")
    first.approve(entry.id, "maria")
    first.close()
    again = SynonymStore(tmp_path / "s.db")
    assert again.get(entry.id).status == Status.approved
    again.close()


def test_solr_format_round_trips_and_reports_bad_lines() -> None:
    text = "# shop synonyms\ncouch, sofa, settee\nsneakers, trainers => running shoes\n\n"
    assert parse_solr(text) == [(Kind.equivalent, ["couch", "sofa", "settee"], []),
                                (Kind.one_way, ["sneakers", "trainers"], ["running shoes"])]
    with pytest.raises(SynonymError, match="line 2"):
        parse_solr("a, b\nlonely\n")
    with pytest.raises(SynonymError, match="line 1"):
        parse_solr("a => \n")


def test_export_writes_solr_lines(store: SynonymStore) -> None:
    store.create(Kind.equivalent, ["couch", "sofa"], [], "maria")
    store.create(Kind.one_way, ["gumboots"], ["boots"], "maria")
    assert export_solr(store.approved()).splitlines()[1:] == ["couch, sofa", "gumboots => boots"]


@pytest.mark.parametrize(("word", "variant"), [("color", "colour"), ("gray", "grey"), ("jewelry", "jewellery"),
                                               ("dresses", "dress"), ("hoody", "hoodies"), ("centre", "center")])
def test_spelling_variants_cover_british_american_and_number(word: str, variant: str) -> None:
    assert variant in [v for v, _ in spelling_variants(word)]


# ---- search with synonyms ------------------------------------------------------------------


@pytest.fixture
def live(mutable_index_dir: Path, embedder: Embedder) -> Iterator[tuple[SearchService, TestClient, Path]]:
    settings = Settings(index_dir=mutable_index_dir, server={"admin_key": "k"})
    service = SearchService.open(mutable_index_dir, settings, embedder=embedder)
    with TestClient(create_app(settings, service=service)) as client:
        yield service, client, mutable_index_dir
    service.close()


def _titles(client: TestClient, q: str) -> tuple[list[str], dict]:
    body = client.get("/search", params={"q": q, "limit": 20, "explain": "true", "visitor_id": "v"}).json()
    return [h["title"] for h in body["hits"]], body


def test_zero_result_queries_to_approved_synonyms_end_to_end(live) -> None:
    service, client, _ = live
    for q in ["gumboots", "gumboots", "settee"]:
        assert _titles(client, q)[1]["total"] == 0
    response = client.post("/synonyms/suggest", json={"since": "1h"}, headers=ADMIN)
    assert response.status_code == 200
    created = {s["terms"][0]: s for s in response.json()["synonyms"]}
    # A candidate that would rescue no logged search is not put in front of a merchandiser,
    # and the review list shows the ones rescuing most searches first.
    assert all(s["impact"]["rescued_searches"] > 0 for s in response.json()["synonyms"])
    listed = client.get("/synonyms", params={"status": "pending"}, headers=ADMIN).json()["synonyms"]
    rescued = [s["impact"]["rescued_searches"] for s in listed]
    assert rescued == sorted(rescued, reverse=True)
    gum = created["gumboots"]
    assert gum["targets"] == ["boots"] and gum["status"] == "pending"
    assert gum["evidence"]["semantic"]["cosine"] >= 0.5 and gum["evidence"]["semantic"]["queries"] == ["gumboots"]
    assert gum["impact"]["rescued_searches"] == 2  # both logged searches would have found products
    settee = next(s for s in response.json()["synonyms"] if s["terms"] == ["settee"] and s["targets"] == ["set"])
    # Nothing changes for shoppers before a person approves.
    assert _titles(client, "gumboots")[1]["total"] == 0
    assert client.post(f"/synonyms/{gum['id']}/approve", json={"note": "rubber boots"}, headers=ADMIN).status_code == 200
    titles, body = _titles(client, "gumboots")
    assert titles and all("Boots" in t for t in titles[:5]), titles
    assert body["applied_synonyms"] == ["gumboots → boots"]
    assert body["debug"]["synonyms"] == ["gumboots → boots"]
    # Rejected: never proposed again.
    assert client.post(f"/synonyms/{settee['id']}/reject", headers=ADMIN).json()["status"] == "rejected"
    again = client.post("/synonyms/suggest", json={"since": "1h"}, headers=ADMIN).json()
    rejected_pair = (["settee"], ["set"])
    assert all((s["terms"], s["targets"]) != rejected_pair for s in again["synonyms"])
    pending = client.get("/synonyms", params={"status": "pending"}, headers=ADMIN).json()["synonyms"]
    assert all((s["terms"], s["targets"]) != rejected_pair for s in pending)
    # The zero-result report says the query is fixed, and by what.
    rows = client.get("/reports/zero-results", params={"since": "1h"}, headers=ADMIN).json()["rows"]
    report = {r["query"]: r for r in rows}
    assert report["gumboots"]["fixed_by"] == "synonym" and report["gumboots"]["synonyms"] == ["gumboots → boots"]
    assert report["settee"]["fixed_by"] is None
    # The audit trail names who decided.
    detail = client.get(f"/synonyms/{gum['id']}", headers=ADMIN).json()
    assert [(a["action"], a["actor"]) for a in detail["audit"]][-1] == ("approved", "maria")


def test_behavioural_pair_from_a_failed_then_clicked_search(live) -> None:
    service, client, _ = live
    first = client.get("/search", params={"q": "wellies", "visitor_id": "b1", "session_id": "x"}).json()
    assert first["total"] == 0
    second = client.get("/search", params={"q": "boots", "visitor_id": "b1", "session_id": "x"}).json()
    client.post("/events", json={"events": [{"type": "click", "visitor_id": "b1", "session_id": "x",
                                              "product_id": second["hits"][0]["id"], "search_id": second["search_id"]}]})
    created = client.post("/synonyms/suggest", json={"generators": ["behavioural"]}, headers=ADMIN).json()["synonyms"]
    found = next(s for s in created if s["terms"] == ["wellies"])
    assert found["targets"] == ["boots"] and found["evidence"]["behavioural"]["sessions"] == 1


def test_equivalent_and_phrase_synonyms_expand_both_ways(live) -> None:
    service, client, _ = live
    assert _titles(client, "brolly")[1]["total"] == 0
    response = client.post("/synonyms", json={"kind": "equivalent", "terms": ["brolly", "bucket hat"]}, headers=ADMIN)
    assert response.status_code == 201
    titles, body = _titles(client, "brolly")
    # The phrase matches as a phrase: products saying "bucket hat" come first, found by words.
    assert titles and "bucket hat" in titles[0].lower(), titles
    assert body["applied_synonyms"] == ["brolly → bucket hat"]
    bad = client.post("/synonyms", json={"kind": "one_way", "terms": ["x"], "targets": []}, headers=ADMIN)
    assert bad.status_code == 422 and "targets" in bad.json()["detail"]


def test_approval_reaches_another_service_process_within_seconds(live, embedder: Embedder) -> None:
    service, client, index_dir = live
    other = SearchService.open(index_dir, Settings(index_dir=index_dir), embedder=embedder)
    other.start_watching(0.1)
    try:
        assert other.search(SearchRequest(q="gumboots"), record=False).total == 0
        client.post("/synonyms", json={"kind": "one_way", "terms": ["gumboots"], "targets": ["boots"]}, headers=ADMIN)
        deadline = time.time() + 5
        while other.search(SearchRequest(q="gumboots"), record=False).total == 0 and time.time() < deadline:
            time.sleep(0.1)
        assert other.search(SearchRequest(q="gumboots"), record=False).total > 0
        # Reverting takes it away again.
        entry = service.synonyms.approved()[0]
        client.post(f"/synonyms/{entry.id}/revert", headers=ADMIN)
        deadline = time.time() + 5
        while other.search(SearchRequest(q="gumboots"), record=False).total > 0 and time.time() < deadline:
            time.sleep(0.1)
        assert other.search(SearchRequest(q="gumboots"), record=False).total == 0
    finally:
        other.close()


def test_import_and_export_through_the_api(live) -> None:
    _, client, _ = live
    response = client.post("/synonyms/import", content="couch, sofa\ngumboots => boots\n", headers=ADMIN)
    assert response.json() == {"imported": 2, "skipped_existing": 0}
    assert client.post("/synonyms/import", content="couch, sofa\n", headers=ADMIN).json()["skipped_existing"] == 1
    bad = client.post("/synonyms/import", content="ok, fine\nlonely\n", headers=ADMIN)
    assert bad.status_code == 422 and "line 2" in bad.json()["detail"]
    exported = client.get("/synonyms/export", headers=ADMIN).text
    assert "couch, sofa" in exported and "gumboots => boots" in exported
    assert client.get("/synonyms/export", params={"format": "json"}, headers=ADMIN).json()[1]["targets"] == ["boots"]
    assert client.get("/synonyms").status_code == 401


def test_cli_suggest_list_approve_export(live, capsys) -> None:
    from search.cli import main

    service, client, index_dir = live
    client.get("/search", params={"q": "gumboots", "visitor_id": "c1"})
    service.search_log.flush()
    capsys.readouterr()
    assert main(["synonyms", "suggest", "--index-dir", str(index_dir)]) == 0
    assert "gumboots => boots" in capsys.readouterr().out
    entry = next(s for s in service.synonyms.list(Status.pending) if s.terms == ["gumboots"])
    assert main(["synonyms", "approve", str(entry.id), "--by", "cli-user", "--index-dir", str(index_dir)]) == 0
    assert main(["synonyms", "export", "--index-dir", str(index_dir)]) == 0
    assert "gumboots => boots" in capsys.readouterr().out
    assert main(["synonyms", "reject", "9999", "--index-dir", str(index_dir)]) == 2
