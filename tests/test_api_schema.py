"""The OpenAPI schema, tested against the running app by Schemathesis (property-based).

Properties checked, for every operation, with a bounded number of generated requests each:
  1. no 5xx, whatever the input (schemathesis' `not_a_server_error`);
  2. every status code, content type, header and body the app sends is the one the schema
     documents (all of Schemathesis' checks, including `ignored_auth`: the key matters).
The app runs on a private copy of the sample index with an admin key set; generated writes
(catalog, synonyms, erasure) land in that copy only.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from indexer.embedding import Embedder
from search.api.app import create_app
from search.service import SearchService
from search.settings import Settings

KEY = "schema-admin-key"
# Generated requests per operation: bounded so the suite stays minutes, not hours.
EXAMPLES = 12


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory, index_dir: Path, embedder: Embedder) -> Iterator:
    target = tmp_path_factory.mktemp("schema") / "index"
    shutil.copytree(index_dir, target, ignore=shutil.ignore_patterns("state"))
    app_settings = Settings(index_dir=target, server={"admin_key": KEY})
    engine = SearchService.open(target, app_settings, embedder=embedder)
    app = create_app(app_settings, service=engine)
    with TestClient(app):  # runs the lifespan (warm-up, watcher) like a real server
        yield schemathesis.openapi.from_asgi("/openapi.json", app)
    engine.close()


def test_every_operation_conforms_to_its_schema_and_never_answers_5xx(api_schema) -> None:
    # Operation by operation (schemathesis' pytest plugin predates pytest 9), every failure
    # gathered so one run shows them all.
    failures: list[str] = []
    for result in api_schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None,
                  derandomize=True)  # the same examples every run: CI is repeatable
        def check(case) -> None:
            case.call_and_validate(headers={"Authorization": f"Bearer {KEY}"}, excluded_checks=excluded)  # noqa: B023 - called at once, below

        # Rules no JSON schema can state, so "schema-valid" requests are rightly refused:
        # PUT /catalog/products takes any JSON (a list or {"products": [...]}, validated item by
        # item to name the bad one); /search refuses price_min > price_max; a price update names
        # either a sku or an id; POST /events validates each event on its own (to name the bad
        # one by index) and refuses a batch with no valid event; a synonym needs non-blank terms
        # and an equivalent one two different terms (checked by the store); an import is a file
        # sent as the raw body, so an empty one is refused; merchandising rules, profiles and
        # experiments are checked across fields (a bury by a text field needs a value, weights
        # keep relevance dominant, shares add up to 100); the synonym round's `since` is a time
        # in any of several spellings (7d, 24h, a date, Unix seconds) that no pattern states.
        # Every other check still runs on these operations.
        loose = {"PUT /catalog/products", "GET /search", "POST /search", "PATCH /catalog/prices", "POST /events",
                 "POST /synonyms", "POST /synonyms/{synonym_id}/approve", "POST /synonyms/import",
                 "POST /rules", "PUT /rules/{rule_id}", "PUT /profiles/{name}", "POST /experiments",
                 "POST /merchandising/preview", "POST /synonyms/suggest"}
        excluded = [positive_data_acceptance] if operation.label in loose else []

        try:
            check()
        except Exception as error:  # noqa: BLE001 - reported below, with the operation
            failures.append(f"{operation.label}: {error}")
    assert not failures, "\n\n".join(failures)
