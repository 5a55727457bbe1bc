"""Abandoned-search webhook against a real local HTTP receiver: who gets notified, retries with
backoff, signature, and the dead-letter record."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from indexer.embedding import Embedder
from search.models import SearchRequest
from search.service import SearchService
from search.settings import Settings

WINDOW = 30 * 60


class Receiver:
    """An HTTP endpoint that answers with the next planned status and keeps what it got."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses
        self.received: list[tuple[dict, dict]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers["content-length"]))
                headers = {k.lower(): v for k, v in self.headers.items()}
                receiver.received.append((json.loads(body), {**headers, "_raw": body}))
                status = receiver.statuses.pop(0) if len(receiver.statuses) > 1 else receiver.statuses[0]
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/abandoned"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver([500, 200])
    yield r
    r.close()


def _service(index_dir: Path, embedder: Embedder, url: str, **analytics) -> SearchService:
    settings = Settings(index_dir=index_dir, analytics={
        "abandoned_webhook_url": url, "webhook_secret": "s3cret", "webhook_retry_seconds": 10, **analytics})
    return SearchService.open(index_dir, settings, embedder=embedder)


def test_abandoned_searches_of_identified_visitors_are_posted_with_retries(mutable_index_dir, embedder, receiver) -> None:
    service = _service(mutable_index_dir, embedder, receiver.url)
    try:
        abandoned = service.search(SearchRequest(q="dress", visitor_id="v1", session_id="a"))
        clicked = service.search(SearchRequest(q="dress", visitor_id="v2", session_id="b"))
        service.visitors.ingest([{"type": "click", "visitor_id": "v2", "product_id": clicked.hits[0].id,
                                 "search_id": clicked.search_id}])
        service.search(SearchRequest(q="dress"))  # anonymous: nobody to tell
        service.search(SearchRequest(q="qqqzzzx", visitor_id="v3"))  # no results: not abandoned
        now = time.time()
        assert service.webhook.run_once(now) == {"new": 0, "delivered": 0, "retrying": 0, "dead": 0}  # window still open
        later = now + WINDOW + 5
        assert service.webhook.run_once(later) == {"new": 1, "delivered": 0, "retrying": 1, "dead": 0}  # receiver said 500
        assert service.webhook.run_once(later + 5) == {"new": 0, "delivered": 0, "retrying": 0, "dead": 0}  # backoff: not yet
        assert service.webhook.run_once(later + 11) == {"new": 0, "delivered": 1, "retrying": 0, "dead": 0}
        assert service.webhook.run_once(later + 100)["new"] == 0  # never twice
        payload, headers = receiver.received[-1]
        assert (payload["search_id"], payload["visitor_id"], payload["query"], payload["event"]) == (
            abandoned.search_id, "v1", "dress", "search.abandoned")
        expected = hmac.new(b"s3cret", headers["_raw"], hashlib.sha256).hexdigest()
        assert headers["x-vitrine-signature"] == f"sha256={expected}"
        assert len(receiver.received) == 2
    finally:
        service.close()


def test_a_receiver_that_keeps_failing_ends_in_the_dead_letter_table(mutable_index_dir, embedder) -> None:
    failing = Receiver([503])
    service = _service(mutable_index_dir, embedder, failing.url, webhook_max_attempts=2)
    try:
        service.search(SearchRequest(q="dress", visitor_id="v1"))
        now = time.time() + WINDOW + 5
        service.webhook.run_once(now)
        assert service.webhook.run_once(now + 11) == {"new": 0, "delivered": 0, "retrying": 0, "dead": 1}
        [dead] = service.webhook.deliveries("dead")
        assert (dead.attempts, dead.last_error, dead.payload["visitor_id"]) == (2, "HTTP 503", "v1")
        assert service.webhook.run_once(now + 1000) == {"new": 0, "delivered": 0, "retrying": 0, "dead": 0}
    finally:
        service.close()
        failing.close()
