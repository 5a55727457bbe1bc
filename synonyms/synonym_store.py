"""Synonym entries, their review workflow and its audit trail, in SQLite or PostgreSQL.

An entry is either one-way (`sneakers => trainers`: a search for sneakers also finds
trainers) or equivalent (`couch, sofa`: each finds the others). Suggestions arrive `pending`;
a person approves (optionally editing), rejects, or reverts a decision. Every change is one
transaction writing the entry and an audit row, with `synchronous=FULL`: an acknowledged
decision survives a crash. A rejected pair is remembered and never suggested again.

Only approved entries reach search (`approved()`); `version()` changes with every decision so
a search process notices within its refresh interval.
"""

from __future__ import annotations

import builtins
import json
import sqlite3
import time
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from indexer.normalize import normalize
from search.database import Database
from search.errors import InvalidInput, NotFound
from search.sql import PostgresRunner, Runner, SqliteRunner

SYNONYMS_FILE = "synonyms.db"


class Kind(StrEnum):
    one_way = "one_way"
    equivalent = "equivalent"


class Status(StrEnum):
    pending = "pending"
    approved = "approved"
    rejected = "rejected"


class SynonymError(InvalidInput):
    """A request the store refuses, with a reason a person can act on."""


class SynonymNotFound(NotFound):
    def __init__(self, synonym_id: int) -> None:
        super().__init__(f"no synonym #{synonym_id}")
        self.synonym_id = synonym_id


def clean_terms(terms: list[str]) -> list[str]:
    out = [normalize(t) for t in terms]
    return list(dict.fromkeys(t for t in out if t))


@dataclass
class Synonym:
    id: int
    kind: Kind
    # one_way: `terms` are what shoppers type, `targets` what they should also find.
    # equivalent: `terms` are interchangeable, `targets` is empty.
    terms: list[str]
    targets: list[str]
    status: Status
    source: str  # semantic | behavioural | lexical | generative | manual | import
    confidence: float
    evidence: dict[str, Any] = field(default_factory=dict)
    impact: dict[str, Any] = field(default_factory=dict)
    created_at: float = 0.0
    decided_by: str | None = None
    decided_at: float | None = None
    note: str | None = None

    def pairs(self) -> list[tuple[str, str]]:
        """(what is typed, what is also found) pairs this entry adds to search."""
        if self.kind == Kind.one_way:
            return [(t, target) for t in self.terms for target in self.targets]
        return [(a, b) for a in self.terms for b in self.terms if a != b]

    def key(self) -> str:
        """Identity for duplicate and rejected-pair checks."""
        if self.kind == Kind.one_way:
            return f"{'|'.join(sorted(self.terms))}=>{'|'.join(sorted(self.targets))}"
        return "~".join(sorted(self.terms))

    def solr(self) -> str:
        if self.kind == Kind.one_way:
            return f"{', '.join(self.terms)} => {', '.join(self.targets)}"
        return ", ".join(self.terms)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["kind"], data["status"] = self.kind.value, self.status.value
        return data


def validate(kind: Kind, terms: list[str], targets: list[str]) -> tuple[list[str], list[str]]:
    terms, targets = clean_terms(terms), clean_terms(targets)
    if kind == Kind.one_way:
        if not terms or not targets:
            raise SynonymError("a one-way synonym needs terms (what shoppers type) and targets (what they should find)")
        if set(terms) & set(targets):
            raise SynonymError("a one-way synonym's targets must differ from its terms")
    else:
        if targets:
            terms = list(dict.fromkeys(terms + targets))
            targets = []
        if len(terms) < 2:
            raise SynonymError("an equivalent synonym needs at least two different terms")
    return terms, targets


_COLUMNS = "id, kind, terms, targets, status, source, confidence, evidence, impact, created_at, decided_by, decided_at, note"


class SynonymStore:
    """On either store (`search/sql.py`): a SQLite file by default, the shared PostgreSQL
    database with `SynonymStore.on_postgres` (where an approval on one replica reaches every
    replica's answers through `version()`)."""

    # Table names: the SQLite file holds only synonyms; PostgreSQL holds every store's tables.
    _audit = "audit"
    _rejected = "rejected_pairs"

    def __init__(self, path: str | Path) -> None:
        self.path: Path | None = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("PRAGMA secure_delete=ON")
        db.executescript(
            """
            CREATE TABLE IF NOT EXISTS synonyms (
                id INTEGER PRIMARY KEY, kind TEXT NOT NULL, terms TEXT NOT NULL, targets TEXT NOT NULL,
                status TEXT NOT NULL, source TEXT NOT NULL, confidence REAL NOT NULL DEFAULT 0,
                evidence TEXT NOT NULL DEFAULT '{}', impact TEXT NOT NULL DEFAULT '{}', created_at REAL NOT NULL,
                decided_by TEXT, decided_at REAL, note TEXT, key TEXT NOT NULL
            );
            CREATE INDEX IF NOT EXISTS synonyms_status ON synonyms(status);
            CREATE INDEX IF NOT EXISTS synonyms_key ON synonyms(key);
            CREATE TABLE IF NOT EXISTS audit (
                seq INTEGER PRIMARY KEY, synonym_id INTEGER NOT NULL, ts REAL NOT NULL, actor TEXT NOT NULL,
                action TEXT NOT NULL, before TEXT, after TEXT, note TEXT
            );
            CREATE TABLE IF NOT EXISTS rejected_pairs (pair TEXT PRIMARY KEY, synonym_id INTEGER NOT NULL);
            """
        )
        self._sql: Runner = SqliteRunner(db)

    @classmethod
    def on_postgres(cls, database: Database) -> SynonymStore:
        store = cls.__new__(cls)
        store.path = None
        store._audit, store._rejected = "synonym_audit", "synonym_rejected_pairs"
        store._sql = PostgresRunner(database)
        return store

    # ---- reads ---------------------------------------------------------------------------

    def _row(self, row: tuple) -> Synonym:
        (id_, kind, terms, targets, status, source, confidence, evidence, impact, created, by, at, note) = row
        return Synonym(id_, Kind(kind), json.loads(terms), json.loads(targets), Status(status), source, confidence,
                       json.loads(evidence), json.loads(impact), created, by, at, note)

    def get(self, synonym_id: int) -> Synonym:
        rows = self._sql.query(f"SELECT {_COLUMNS} FROM synonyms WHERE id = ?", (synonym_id,))
        if not rows:
            raise SynonymNotFound(synonym_id)
        return self._row(rows[0])

    def list(self, status: Status | None = None) -> builtins.list[Synonym]:
        sql = f"SELECT {_COLUMNS} FROM synonyms"
        args: tuple = ()
        if status is not None:
            sql += " WHERE status = ?"
            args = (status.value,)
        # Most measured impact first: rescued searches weighted by how well what they find fits
        # (synonyms.impact; entries measured before that have only the count). The one
        # expression the dialects spell apart.
        def field(name: str) -> str:
            return (f"(impact::json->>'{name}')::float" if self._sql.dialect == "postgres"
                    else f"json_extract(impact, '$.{name}')")

        order = f"COALESCE({field('score')}, {field('rescued_searches')}, 0) DESC, confidence DESC, id"
        rows = self._sql.query(sql + f" ORDER BY {order}", args)
        return [self._row(r) for r in rows]

    def approved(self) -> builtins.list[Synonym]:
        return self.list(Status.approved)

    def version(self) -> int:
        """Changes with every decision (the audit trail only grows)."""
        return int(self._sql.query(f"SELECT COALESCE(MAX(seq), 0) FROM {self._audit}")[0][0])

    def audit(self, synonym_id: int) -> builtins.list[dict[str, Any]]:
        rows = self._sql.query(
            f"SELECT ts, actor, action, before, after, note FROM {self._audit} WHERE synonym_id = ? ORDER BY seq",
            (synonym_id,),
        )
        return [{"ts": ts, "actor": actor, "action": action, "before": json.loads(before) if before else None,
                 "after": json.loads(after) if after else None, "note": note} for ts, actor, action, before, after, note in rows]

    def is_rejected(self, pair: tuple[str, str]) -> bool:
        return bool(self._sql.query(f"SELECT 1 FROM {self._rejected} WHERE pair = ?", (f"{pair[0]}=>{pair[1]}",)))

    def known(self, candidate: Synonym) -> bool:
        """Already an entry (any status) or one of its pairs was rejected."""
        if self._sql.query("SELECT 1 FROM synonyms WHERE key = ?", (candidate.key(),)):
            return True
        return any(self.is_rejected(pair) for pair in candidate.pairs())

    def ping(self) -> None:
        """Raises when the store cannot be reached (readiness)."""
        self._sql.ping()

    # ---- writes: one transaction each, with its audit row --------------------------------

    def _write(self, action: str, actor: str, note: str | None, before: Synonym | None, after: Synonym) -> Synonym:
        with self._sql.transaction() as tx:
            values = (after.kind.value, json.dumps(after.terms), json.dumps(after.targets), after.status.value,
                      after.source, after.confidence, json.dumps(after.evidence), json.dumps(after.impact),
                      after.created_at, after.decided_by, after.decided_at, after.note, after.key())
            if before is None:
                after.id = int(tx.execute(
                    "INSERT INTO synonyms (kind, terms, targets, status, source, confidence, evidence, impact, "
                    "created_at, decided_by, decided_at, note, key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                    "RETURNING id",
                    values,
                ).fetchall()[0][0])
            else:
                tx.execute(
                    "UPDATE synonyms SET kind=?, terms=?, targets=?, status=?, source=?, confidence=?, evidence=?, "
                    "impact=?, created_at=?, decided_by=?, decided_at=?, note=?, key=? WHERE id=?",
                    (*values, after.id),
                )
            if after.status == Status.rejected:
                tx.executemany(
                    f"INSERT INTO {self._rejected}(pair, synonym_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
                    [(f"{a}=>{b}", after.id) for a, b in after.pairs()],
                )
            elif before is not None and before.status == Status.rejected:
                tx.execute(f"DELETE FROM {self._rejected} WHERE synonym_id = ?", (after.id,))
            tx.execute(
                f"INSERT INTO {self._audit}(synonym_id, ts, actor, action, before, after, note) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (after.id, time.time(), actor, action, json.dumps(before.to_json()) if before else None,
                 json.dumps(after.to_json()), note),
            )
        return after

    def suggest(self, candidate: Synonym) -> Synonym | None:
        """Store a generator's candidate as pending, unless known or rejected before."""
        if self.known(candidate):
            return None
        candidate.status = Status.pending
        candidate.created_at = candidate.created_at or time.time()
        return self._write("suggested", candidate.source, None, None, candidate)

    def create(self, kind: Kind, terms: builtins.list[str], targets: builtins.list[str], actor: str, note: str | None = None,
               source: str = "manual") -> Synonym:
        terms, targets = validate(kind, terms, targets)
        now = time.time()
        entry = Synonym(0, kind, terms, targets, Status.approved, source, 1.0, {}, {}, now, actor, now, note)
        if self.known(entry):
            existing = [s for s in self.list() if s.key() == entry.key()]
            if existing and existing[0].status == Status.approved:
                raise SynonymError(f"this synonym already exists (#{existing[0].id})")
        return self._write("created", actor, note, None, entry)

    def approve(self, synonym_id: int, actor: str, note: str | None = None, kind: Kind | None = None,
                terms: builtins.list[str] | None = None, targets: builtins.list[str] | None = None) -> Synonym:
        before = self.get(synonym_id)
        if before.status == Status.approved and terms is None and targets is None and kind is None:
            raise SynonymError(f"synonym #{synonym_id} is already approved")
        new_kind = kind or before.kind
        new_terms, new_targets = validate(
            new_kind, terms if terms is not None else before.terms,
            targets if targets is not None else (before.targets if new_kind == Kind.one_way else []),
        )
        after = Synonym(**{**before.__dict__, "kind": new_kind, "terms": new_terms, "targets": new_targets,
                           "status": Status.approved, "decided_by": actor, "decided_at": time.time(), "note": note})
        edited = (new_kind, new_terms, new_targets) != (before.kind, before.terms, before.targets)
        return self._write("edited and approved" if edited else "approved", actor, note, before, after)

    def reject(self, synonym_id: int, actor: str, note: str | None = None) -> Synonym:
        before = self.get(synonym_id)
        if before.status == Status.rejected:
            raise SynonymError(f"synonym #{synonym_id} is already rejected")
        after = Synonym(**{**before.__dict__, "status": Status.rejected, "decided_by": actor,
                           "decided_at": time.time(), "note": note})
        return self._write("rejected", actor, note, before, after)

    def revert(self, synonym_id: int, actor: str, note: str | None = None) -> Synonym:
        """Undo the last decision: back to pending (search stops using it at once if it was approved)."""
        before = self.get(synonym_id)
        if before.status == Status.pending:
            raise SynonymError(f"synonym #{synonym_id} is pending: there is no decision to revert")
        after = Synonym(**{**before.__dict__, "status": Status.pending, "decided_by": actor,
                           "decided_at": time.time(), "note": note})
        return self._write("reverted", actor, note, before, after)

    def forget_queries(self, queries: set[str]) -> int:
        """Erasure: remove these shopper queries from every entry's evidence and from the audit
        trail's copies of it. The only change ever made to past audit rows: a visitor's right
        to erasure outranks an unchanged history. Returns how many rows changed."""
        if not queries:
            return 0

        def scrub(text: str | None) -> str | None:
            if not text:
                return text
            data = json.loads(text)
            # "queries" lists sit at any depth (evidence per generator: {"semantic": {"queries": ...}}).
            stack = [data]
            while stack:
                item = stack.pop()
                if isinstance(item, dict):
                    if isinstance(item.get("queries"), list):
                        item["queries"] = [q for q in item["queries"] if q not in queries]
                    stack.extend(item.values())
                elif isinstance(item, list):
                    stack.extend(item)
            return json.dumps(data)

        changed = 0
        with self._sql.transaction() as tx:
            for id_, evidence in tx.execute("SELECT id, evidence FROM synonyms").fetchall():
                new = scrub(evidence)
                if new is not None and new != evidence and json.loads(new) != json.loads(evidence):
                    tx.execute("UPDATE synonyms SET evidence = ? WHERE id = ?", (new, id_))
                    changed += 1
            for seq, before, after in tx.execute(f"SELECT seq, before, after FROM {self._audit}").fetchall():
                new_before, new_after = scrub(before), scrub(after)
                if (before and json.loads(new_before or "null") != json.loads(before)) or (
                    after and json.loads(new_after or "null") != json.loads(after)
                ):
                    tx.execute(f"UPDATE {self._audit} SET before = ?, after = ? WHERE seq = ?", (new_before, new_after, seq))
                    changed += 1
        self._sql.checkpoint()
        return changed

    def set_impact(self, synonym_id: int, impact: dict[str, Any]) -> None:
        self._sql.execute("UPDATE synonyms SET impact = ? WHERE id = ?", (json.dumps(impact), synonym_id))

    def close(self) -> None:
        self._sql.close()


# ---- Solr synonyms.txt and JSON --------------------------------------------------------------


def parse_solr(text: str) -> builtins.list[tuple[Kind, builtins.list[str], builtins.list[str]]]:
    """Solr's format: `a, b, c` (equivalent) or `a, b => c` (one-way); `#` comments."""
    entries = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.count("=>") > 1:
            raise SynonymError(f"line {number}: more than one '=>'")
        if "=>" in line:
            left, right = line.split("=>")
            terms, targets = _split(left), _split(right)
            if not terms or not targets:
                raise SynonymError(f"line {number}: '=>' needs terms on both sides")
            entries.append((Kind.one_way, terms, targets))
        else:
            terms = _split(line)
            if len(terms) < 2:
                raise SynonymError(f"line {number}: an equivalent line needs at least two comma-separated terms")
            entries.append((Kind.equivalent, terms, []))
    return entries


def _split(text: str) -> builtins.list[str]:
    return [part.strip().replace("\\,", ",") for part in text.split(",") if part.strip()]


def export_solr(entries: builtins.list[Synonym]) -> str:
    lines = ["# Vitrine approved synonyms (Solr synonyms.txt format)"]
    lines += [s.solr() for s in entries]
    return "\n".join(lines) + "\n"
