"""Shared fixtures: one real index of the generated sample shop, built once per test session.

Tests that change an index get their own copy (`mutable_index_dir`), so the shared one stays
pristine and the suite stays fast.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# Rate limits are off unless a test turns them on (tests/test_security.py does): the suite
# sends requests far faster than any shopper.
os.environ.setdefault("VITRINE_LIMITS__PER_CLIENT_PER_SECOND", "0")
os.environ.setdefault("VITRINE_LIMITS__PER_KEY_PER_SECOND", "0")
os.environ.setdefault("VITRINE_LIMITS__LOGINS_PER_MINUTE", "0")

from indexer.build import build_index  # noqa: E402
from indexer.catalog import Product  # noqa: E402
from indexer.embedding import Embedder  # noqa: E402
from indexer.sample import generate_catalog  # noqa: E402
from search.engine import SearchEngine  # noqa: E402
from search.logs import configure_logging  # noqa: E402
from search.service import SearchService  # noqa: E402
from search.settings import Settings  # noqa: E402

# Logs to stderr as in production, so tests reading a command's stdout see only its output.
configure_logging("info", "console")

SAMPLE_SIZE = 600
SAMPLE_SEED = 11


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    return Embedder()


@pytest.fixture(scope="session")
def sample_products() -> list[Product]:
    return generate_catalog(SAMPLE_SIZE, SAMPLE_SEED)


@pytest.fixture(scope="session")
def index_dir(tmp_path_factory: pytest.TempPathFactory, sample_products: list[Product], embedder: Embedder) -> Path:
    path = tmp_path_factory.mktemp("index")
    build_index(sample_products, path, embedder=embedder, progress=False)
    return path


@pytest.fixture(scope="session")
def engine(index_dir: Path, embedder: Embedder) -> Iterator[SearchEngine]:
    engine = SearchEngine(index_dir, Settings(index_dir=index_dir), embedder=embedder)
    yield engine
    engine.close()


@pytest.fixture(scope="session")
def service(engine: SearchEngine, index_dir: Path) -> Iterator[SearchService]:
    """The shared engine run as a service: with stores (search log, visitors, synonyms)."""
    service = SearchService(Settings(index_dir=index_dir), engine=engine)
    yield service
    service.close()


@pytest.fixture
def mutable_index_dir(index_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the sample index, for tests that write to it (without the behaviour
    other tests left in its state directory: search log, profiles, synonyms)."""
    target = tmp_path / "index"
    shutil.copytree(index_dir, target, ignore=shutil.ignore_patterns("state"))
    return target


@pytest.fixture
def mutable_service(mutable_index_dir: Path, embedder: Embedder) -> Iterator[SearchService]:
    service = SearchService.open(mutable_index_dir, Settings(index_dir=mutable_index_dir), embedder=embedder)
    yield service
    service.close()


@pytest.fixture
def mutable_engine(mutable_service: SearchService) -> SearchEngine:
    """The private copy's search library (the one `mutable_service` runs)."""
    return mutable_service.engine


# ---- real database servers: PostgreSQL and Redis (tests/services.py) ------------------------

from search.database import Database  # noqa: E402
from tests.services import (  # noqa: E402
    SERVICE_SKIP,
    check_postgres,
    drop_schema,
    new_schema,
    postgres_url,
    services_required,
    with_schema,
)


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A PostgreSQL URL on a fresh schema of the test server, dropped after the test."""
    base = postgres_url()
    check_postgres(base)
    schema = new_schema()
    yield with_schema(base, schema)
    drop_schema(base, schema)


@pytest.fixture
def pg_database(pg_url: str) -> Iterator[Database]:
    database = Database.open(pg_url)
    yield database
    database.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    """In CI a store suite skipped for want of its server is a failure, not a quiet skip."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and services_required() and isinstance(report.longrepr, tuple):
        reason = str(report.longrepr[2])
        if SERVICE_SKIP in reason:
            report.outcome = "failed"
