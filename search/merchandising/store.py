"""Rules, ranking profiles and experiments in SQLite (`merchandising.db` in the state directory)
or in the shared PostgreSQL database.

Each object is stored as its JSON body with a version that grows with every change; every
change is one transaction writing the object and an audit row (who, when, before, after),
with `synchronous=FULL`: an acknowledged change survives a crash. `version()` (the audit's last
sequence number) tells a search process, without reading everything, that something changed.
"""

from __future__ import annotations

import builtins
import json
import sqlite3
import time
import uuid
from pathlib import Path
from typing import Any

from search.database import Database
from search.merchandising.experiments import Experiment, ExperimentBody
from search.merchandising.profiles import DEFAULT_PROFILE, Profile, ProfileBody
from search.merchandising.rules import Rule, RuleBody
from search.sql import PostgresRunner, Runner, SqliteRunner

MERCHANDISING_FILE = "merchandising.db"


class NotFound(KeyError):
    """No such rule, profile or experiment."""


class Conflict(ValueError):
    """A change the current state refuses (a second running experiment, a stale version)."""


class MerchandisingStore:
    """On either store (`search/sql.py`): `merchandising.db` by default, the shared PostgreSQL
    database with `MerchandisingStore.on_postgres` (its tables prefixed `merch_`)."""

    # Table names: the SQLite file holds only merchandising; PostgreSQL holds every store's.
    _objects, _audit, _counters = "objects", "audit", "counters"
    # Objects are listed in creation order: SQLite's rowid, PostgreSQL's `created` serial.
    _created = "rowid"

    def __init__(self, path: str | Path) -> None:
        self.path: Path | None = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.executescript(
            """
            CREATE TABLE IF NOT EXISTS objects (
                kind TEXT NOT NULL, key TEXT NOT NULL, version INTEGER NOT NULL, body TEXT NOT NULL,
                deleted INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (kind, key)
            );
            CREATE TABLE IF NOT EXISTS audit (
                seq INTEGER PRIMARY KEY, kind TEXT NOT NULL, key TEXT NOT NULL, ts REAL NOT NULL,
                actor TEXT NOT NULL, action TEXT NOT NULL, before TEXT, after TEXT
            );
            CREATE TABLE IF NOT EXISTS counters (kind TEXT PRIMARY KEY, next INTEGER NOT NULL);
            """
        )
        self._sql: Runner = SqliteRunner(db)

    @classmethod
    def on_postgres(cls, database: Database) -> MerchandisingStore:
        store = cls.__new__(cls)
        store.path = None
        store._objects, store._audit, store._counters = "merch_objects", "merch_audit", "merch_counters"
        store._created = "created"
        store._sql = PostgresRunner(database)
        return store

    # ---- generic -------------------------------------------------------------------------

    def _get(self, kind: str, key: str) -> dict[str, Any]:
        rows = self._sql.query(f"SELECT body FROM {self._objects} WHERE kind = ? AND key = ? AND deleted = 0", (kind, key))
        if not rows:
            raise NotFound(f"no {kind} {key!r}")
        return json.loads(rows[0][0])

    def _list(self, kind: str) -> list[dict[str, Any]]:
        rows = self._sql.query(
            f"SELECT body FROM {self._objects} WHERE kind = ? AND deleted = 0 ORDER BY {self._created}", (kind,)
        )
        return [json.loads(r[0]) for r in rows]

    def _write(self, kind: str, key: str | None, actor: str, action: str, make) -> dict[str, Any]:
        """One transaction: read the current body, build the new one (`make(before, key, version)`),
        write it and its audit row. `key=None` allocates the next numeric key. Writers take turns
        (SQLite's write lock; a PostgreSQL advisory lock), so two replicas never share a key."""
        with self._sql.transaction(serialize="vitrine.merchandising") as tx:
            if key is None:
                row = tx.execute(f"SELECT next FROM {self._counters} WHERE kind = ?", (kind,)).fetchone()
                number = row[0] if row else 1
                tx.execute(
                    f"INSERT INTO {self._counters}(kind, next) VALUES (?, ?) "
                    "ON CONFLICT(kind) DO UPDATE SET next = excluded.next",
                    (kind, number + 1),
                )
                key = str(number)
            row = tx.execute(
                f"SELECT body, version, deleted FROM {self._objects} WHERE kind = ? AND key = ?", (kind, key)
            ).fetchone()
            before = json.loads(row[0]) if row and not row[2] else None
            version = (row[1] if row else 0) + 1
            after = make(before, key, version)
            deleted = int(after is None)
            body = json.dumps(after if after is not None else before)
            tx.execute(
                f"INSERT INTO {self._objects}(kind, key, version, body, deleted) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT(kind, key) DO UPDATE SET version = excluded.version, body = excluded.body, "
                "deleted = excluded.deleted",
                (kind, key, version, body, deleted),
            )
            tx.execute(
                f"INSERT INTO {self._audit}(kind, key, ts, actor, action, before, after) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (kind, key, time.time(), actor, action, json.dumps(before) if before else None,
                 json.dumps(after) if after is not None else None),
            )
        return after if after is not None else before or {}

    def audit(self, kind: str, key: str) -> builtins.list[dict[str, Any]]:
        rows = self._sql.query(
            f"SELECT ts, actor, action, before, after FROM {self._audit} WHERE kind = ? AND key = ? ORDER BY seq",
            (kind, key),
        )
        return [{"ts": ts, "actor": actor, "action": action, "before": json.loads(b) if b else None,
                 "after": json.loads(a) if a else None} for ts, actor, action, b, a in rows]

    def version(self) -> int:
        return int(self._sql.query(f"SELECT COALESCE(MAX(seq), 0) FROM {self._audit}")[0][0])

    def ping(self) -> None:
        """Raises when the store cannot be reached (readiness)."""
        self._sql.ping()

    # ---- rules ---------------------------------------------------------------------------

    def rules(self) -> builtins.list[Rule]:
        return [Rule.model_validate(body) for body in self._list("rule")]

    def rule(self, rule_id: int) -> Rule:
        return Rule.model_validate(self._get("rule", str(rule_id)))

    def create_rule(self, body: RuleBody, actor: str) -> Rule:
        def make(before, key, version):
            now = time.time()
            return Rule(id=int(key), version=version, created_at=now, updated_at=now, updated_by=actor,
                        **body.model_dump(by_alias=True)).to_json()

        return Rule.model_validate(self._write("rule", None, actor, "created", make))

    def update_rule(self, rule_id: int, body: RuleBody, actor: str) -> Rule:
        def make(before, key, version):
            if before is None:
                raise NotFound(f"no rule {rule_id}")
            return Rule(id=rule_id, version=version, created_at=before["created_at"], updated_at=time.time(),
                        updated_by=actor, **body.model_dump(by_alias=True)).to_json()

        return Rule.model_validate(self._write("rule", str(rule_id), actor, "updated", make))

    def delete_rule(self, rule_id: int, actor: str) -> None:
        def make(before, key, version):
            if before is None:
                raise NotFound(f"no rule {rule_id}")
            return None

        self._write("rule", str(rule_id), actor, "deleted", make)

    # ---- profiles ------------------------------------------------------------------------

    def profiles(self) -> builtins.list[Profile]:
        stored = [Profile.model_validate(body) for body in self._list("profile")]
        if not any(p.name == DEFAULT_PROFILE for p in stored):
            stored.insert(0, default_profile())
        return stored

    def profile(self, name: str) -> Profile:
        try:
            return Profile.model_validate(self._get("profile", name))
        except NotFound:
            if name == DEFAULT_PROFILE:
                return default_profile()
            raise

    def put_profile(self, name: str, body: ProfileBody, actor: str) -> Profile:
        def make(before, key, version):
            return Profile(name=name, version=version, updated_at=time.time(), updated_by=actor,
                           **body.model_dump()).model_dump(mode="json")

        return Profile.model_validate(self._write("profile", name, actor, "saved", make))

    # ---- experiments ---------------------------------------------------------------------

    def experiments(self) -> builtins.list[Experiment]:
        return [Experiment.model_validate(body) for body in self._list("experiment")]

    def experiment(self, experiment_id: str) -> Experiment:
        return Experiment.model_validate(self._get("experiment", experiment_id))

    def running(self) -> Experiment | None:
        return next((e for e in self.experiments() if e.status == "running"), None)

    def start_experiment(self, body: ExperimentBody, actor: str) -> Experiment:
        running = self.running()
        if running is not None:
            raise Conflict(f"experiment {running.id!r} ({running.name}) is running: stop it first "
                           "(one experiment at a time keeps every search in at most one test)")
        key = uuid.uuid4().hex[:12]

        def make(before, key_, version):
            return Experiment(id=key, status="running", started_at=time.time(), created_by=actor,
                              **body.model_dump()).model_dump(mode="json")

        return Experiment.model_validate(self._write("experiment", key, actor, "started", make))

    def stop_experiment(self, experiment_id: str, actor: str) -> Experiment:
        def make(before, key, version):
            if before is None:
                raise NotFound(f"no experiment {experiment_id!r}")
            if before["status"] != "running":
                raise Conflict(f"experiment {experiment_id!r} is already stopped")
            return {**before, "status": "stopped", "stopped_at": time.time()}

        return Experiment.model_validate(self._write("experiment", experiment_id, actor, "stopped", make))

    def close(self) -> None:
        self._sql.close()


def default_profile() -> Profile:
    return Profile(name=DEFAULT_PROFILE, version=0, updated_at=0.0, updated_by="vitrine",
                   description="Relevance only (every signal weight 0)")
