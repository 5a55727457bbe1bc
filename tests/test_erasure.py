"""Right to erasure leaves no trace: not in any table, not in any file on disk.

Properties checked:
  1. DELETE /visitors/{id} removes the visitor's profile, events and searches, the searches
     their sessions sent without a visitor id, and their queries from synonym evidence and
     the audit trail, while a query others searched too stays as evidence;
  2. afterwards no row of any table in any state database holds the visitor id, their session
     id or their query text, and neither do the database files and WAL files byte for byte;
  3. other visitors' data is untouched.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from indexer.embedding import Embedder
from search.api.app import create_app
from search.service import SearchService
from search.settings import Settings
from synonyms.synonym_store import Kind, Status, Synonym

VISITOR = "erase-me-8841"
SESSION = "sess-erase-7730"
PRIVATE = ("zqxv privatequery", "zzpriv sessiononly", "zzpriv fromevent")


@pytest.fixture
def live(mutable_index_dir: Path, embedder: Embedder) -> Iterator[tuple[SearchService, TestClient]]:
    settings = Settings(index_dir=mutable_index_dir)
    engine = SearchService.open(mutable_index_dir, settings, embedder=embedder)
    with TestClient(create_app(settings, service=engine)) as client:
        yield engine, client
    engine.close()


def _rows(state_dir: Path) -> list[str]:
    cells = []
    for path in sorted(state_dir.glob("*.db")):
        db = sqlite3.connect(path)
        try:
            tables = [name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            for table in tables:
                for row in db.execute(f'SELECT * FROM "{table}"'):
                    cells.extend(f"{path.name}:{table}:{cell}" for cell in row if isinstance(cell, str))
        finally:
            db.close()
    return cells


def test_erasure_leaves_no_trace_in_any_table_or_file(live, sample_products) -> None:
    engine, client = live
    product = sample_products[0].id
    client.get("/search", params={"q": PRIVATE[0], "visitor_id": VISITOR, "session_id": SESSION})
    client.get("/search", params={"q": PRIVATE[1], "session_id": SESSION})  # the session, no visitor id
    client.get("/search", params={"q": "dress", "visitor_id": VISITOR, "session_id": SESSION})
    client.get("/search", params={"q": "dress", "visitor_id": "someone-else", "session_id": "their-session"})
    client.post("/events", json={"events": [
        {"type": "view", "visitor_id": VISITOR, "session_id": SESSION, "product_id": product},
        {"type": "search", "visitor_id": VISITOR, "session_id": SESSION, "query": PRIVATE[2]},
        {"type": "view", "visitor_id": "someone-else", "product_id": product},
    ]})
    entry = engine.synonyms.suggest(Synonym(
        id=0, kind=Kind.one_way, terms=["zqxv"], targets=["dress"], status=Status.pending, source="semantic",
        confidence=0.7, evidence={"queries": [PRIVATE[0], "dress"], "searches": 2},
    ))
    engine.synonyms.approve(entry.id, "maria")
    engine.search_log.flush()
    state = engine.settings.state_dir
    before = "\n".join(_rows(state))
    assert VISITOR in before and SESSION in before and all(q in before for q in PRIVATE)

    response = client.delete(f"/visitors/{VISITOR}")
    assert response.status_code == 200
    erased = response.json()["erased"]
    assert erased["profiles"] == 1 and erased["events"] == 2 and erased["searches"] == 2
    assert erased["session_searches"] == 1 and erased["synonym_evidence"] >= 2

    after = "\n".join(_rows(state))
    for trace in (VISITOR, SESSION, *PRIVATE):
        assert trace not in after, trace
    # Evidence others share stays; so does everybody else's behaviour.
    assert engine.synonyms.get(entry.id).evidence["queries"] == ["dress"]
    assert [a["after"]["evidence"]["queries"] for a in engine.synonyms.audit(entry.id)] == [["dress"], ["dress"]]
    assert "someone-else" in after and engine.visitors.profiles.get("someone-else") is not None

    # On disk too: deleted cells are zeroed and each WAL is checkpointed and emptied.
    files = [p for p in state.iterdir() if p.is_file()]
    for path in files:
        data = path.read_bytes()
        for trace in (VISITOR, SESSION, *PRIVATE):
            assert trace.encode() not in data, (path.name, trace)
