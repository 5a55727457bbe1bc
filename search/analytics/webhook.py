"""Abandoned-search webhook: one JSON POST per abandoned search of an identified visitor.

A search is abandoned when it showed results and nothing (click, cart, purchase) was
attributed to it within the attribution window. "Identified" means the search carried a
visitor_id: the shop maps its own visitor ids to customers (Vitrine never sees who they are).
Off unless `analytics.abandoned_webhook_url` is set.

Every delivery is recorded: delivered, waiting for a retry (exponential backoff), or, after
`webhook_max_attempts`, dead — kept in the dead-letter table with the last error, so nothing
is silently dropped and an operator can see and replay it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from search.analytics.event_log import EventLog
from search.analytics.reports import abandoned_searches, attribute
from search.analytics.search_log import SearchLog, connect
from search.settings import AnalyticsSettings

log = structlog.get_logger("vitrine.webhook")


@dataclass(frozen=True)
class Delivery:
    search_id: str
    status: str  # pending | delivered | dead
    attempts: int
    last_error: str | None
    next_attempt_at: float
    payload: dict[str, Any]


class AbandonedSearchWebhook:
    def __init__(self, search_log: SearchLog, events: EventLog, settings: AnalyticsSettings, db_path: Path) -> None:
        self.search_log = search_log
        self.events = events
        self.settings = settings
        self._db = connect(db_path)
        self._db.execute(
            """CREATE TABLE IF NOT EXISTS webhook_deliveries (
                search_id TEXT PRIMARY KEY, status TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
                last_error TEXT, next_attempt_at REAL NOT NULL, payload TEXT NOT NULL, created_at REAL NOT NULL)"""
        )
        self._lock = threading.Lock()

    # ---- finding abandoned searches -------------------------------------------------------

    def enqueue_abandoned(self, now: float | None = None, lookback_hours: float = 24.0) -> int:
        """Record a pending delivery for each newly abandoned search; returns how many."""
        now = time.time() if now is None else now
        window = self.settings.attribution_window_minutes * 60.0
        until = now - window  # younger searches may still get their click
        since = until - lookback_hours * 3600
        log_ = self.search_log
        log_.flush()
        searches = [s for s in log_.between(since, until) if s.visitor_id]
        outcomes = attribute(searches, self.events.between(since, now), window)
        added = 0
        with self._lock:
            for s in abandoned_searches(searches, outcomes):
                payload = {
                    "event": "search.abandoned", "search_id": s.search_id, "visitor_id": s.visitor_id,
                    "session_id": s.session_id, "query": s.query, "results": s.total,
                    "searched_at": s.ts, "segment": s.segment,
                }
                cursor = self._db.execute(
                    "INSERT OR IGNORE INTO webhook_deliveries(search_id, status, next_attempt_at, payload, created_at) "
                    "VALUES (?, 'pending', ?, ?, ?)",
                    (s.search_id, now, json.dumps(payload), now),
                )
                added += cursor.rowcount
        return added

    # ---- delivering ------------------------------------------------------------------------

    def deliver_due(self, now: float | None = None) -> dict[str, int]:
        now = time.time() if now is None else now
        with self._lock:
            rows = self._db.execute(
                "SELECT search_id, attempts, payload FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= ? "
                "ORDER BY next_attempt_at LIMIT 500",
                (now,),
            ).fetchall()
        counts = {"delivered": 0, "retrying": 0, "dead": 0}
        for search_id, attempts, payload in rows:
            error = self._post(payload)
            attempts += 1
            if error is None:
                status, next_at = "delivered", now
            elif attempts >= self.settings.webhook_max_attempts:
                status, next_at = "dead", now
                log.warning("webhook delivery dead-lettered", search_id=search_id, attempts=attempts, error=error)
            else:
                status, next_at = "pending", now + self.settings.webhook_retry_seconds * 2 ** (attempts - 1)
            counts["delivered" if status == "delivered" else "dead" if status == "dead" else "retrying"] += 1
            with self._lock:
                self._db.execute(
                    "UPDATE webhook_deliveries SET status=?, attempts=?, last_error=?, next_attempt_at=? WHERE search_id=?",
                    (status, attempts, error, next_at, search_id),
                )
        return counts

    def _post(self, payload: str) -> str | None:
        url = self.settings.abandoned_webhook_url
        assert url
        headers = {"content-type": "application/json", "user-agent": "vitrine-webhook"}
        if self.settings.webhook_secret:
            # The receiver checks the body came from us: HMAC-SHA256 of the body with the shared secret.
            digest = hmac.new(self.settings.webhook_secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
            headers["x-vitrine-signature"] = f"sha256={digest}"
        request = urllib.request.Request(url, data=payload.encode(), headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.settings.webhook_timeout_seconds) as response:
                if 200 <= response.status < 300:
                    return None
                return f"HTTP {response.status}"
        except urllib.error.HTTPError as error:
            return f"HTTP {error.code}"
        except (urllib.error.URLError, OSError) as error:
            return str(getattr(error, "reason", error))

    def deliveries(self, status: str | None = None) -> list[Delivery]:
        sql = "SELECT search_id, status, attempts, last_error, next_attempt_at, payload FROM webhook_deliveries"
        args: tuple = ()
        if status:
            sql += " WHERE status = ?"
            args = (status,)
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY created_at", args).fetchall()
        return [Delivery(r[0], r[1], r[2], r[3], r[4], json.loads(r[5])) for r in rows]

    def run_once(self, now: float | None = None) -> dict[str, int]:
        added = self.enqueue_abandoned(now)
        return {"new": added, **self.deliver_due(now)}

    def close(self) -> None:
        with self._lock:
            self._db.close()
