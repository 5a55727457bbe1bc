"""Admin synonym review: suggestions with evidence, decisions with an audit trail, import and
export (Solr synonyms.txt and JSON), and the review page."""

from __future__ import annotations

import json
import time
from enum import StrEnum
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Query, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from search.analytics.report_runner import parse_time
from search.api.deps import AdminDep, ServiceDep
from search.api.routes_reports import admin_page_guard, templates
from search.errors import NotFound
from synonyms.generators import GENERATORS, suggest
from synonyms.synonym_store import Kind, Status, SynonymError, export_solr, parse_solr, validate

router = APIRouter(tags=["synonyms"])

# Synonym ids are SQLite rowids: a larger number cannot name one (and overflows SQLite).
SynonymId = Annotated[int, Path(ge=1, le=2**63 - 1)]


def _actor(request: Request, by: str | None) -> str:
    return (by or request.headers.get("x-admin-user") or "admin").strip()[:100]


class Decision(BaseModel):
    model_config = ConfigDict(extra="forbid")
    by: str | None = Field(default=None, max_length=100)
    note: str | None = Field(default=None, max_length=2000)


class Approval(Decision):
    kind: Kind | None = None
    terms: list[str] | None = Field(default=None, max_length=50)
    targets: list[str] | None = Field(default=None, max_length=50)


class NewSynonym(Decision):
    kind: Kind = Kind.equivalent
    terms: list[str] = Field(min_length=1, max_length=50)
    targets: list[str] = Field(default_factory=list, max_length=50)


# The registered generators, as an enum so the OpenAPI schema lists the names it accepts.
GeneratorName = StrEnum("GeneratorName", {name: name for name in GENERATORS})  # type: ignore[misc]


class SuggestRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    since: str = "30d"
    generators: list[GeneratorName] = Field(default_factory=lambda: list(GeneratorName))  # type: ignore[valid-type]


def _decided(service, call) -> dict[str, Any]:
    try:
        entry = call()
    except NotFound as error:
        raise HTTPException(404, error.message) from None
    except SynonymError as error:
        raise HTTPException(422, str(error)) from None
    service.reload_synonyms()  # this process at once; others within their refresh interval
    return entry.to_json()


@router.get("/synonyms", dependencies=[AdminDep])
def list_synonyms(service: ServiceDep, status: Status | None = None) -> dict[str, Any]:
    """Synonym entries, optionally by status, most confident first."""
    return {"synonyms": [s.to_json() for s in service.synonyms.list(status)]}


@router.post("/synonyms/suggest", dependencies=[AdminDep])
def run_suggest(service: ServiceDep, body: SuggestRequest | None = None) -> dict[str, Any]:
    """Run the generators over the search log; new candidates arrive as pending."""
    body = body or SuggestRequest()
    try:
        since = parse_time(body.since, time.time())
        created = suggest(service.synonym_inputs(), since, tuple(body.generators))
    except ValueError as error:
        raise HTTPException(422, str(error)) from None
    return {"created": len(created), "synonyms": [s.to_json() for s in created]}


@router.post("/synonyms", status_code=201, dependencies=[AdminDep])
def create_synonym(request: Request, service: ServiceDep, body: NewSynonym) -> dict[str, Any]:
    """A hand-written entry, approved at once."""
    return _decided(service, lambda: service.synonyms.create(body.kind, body.terms, body.targets, _actor(request, body.by), body.note))


@router.get(
    "/synonyms/export",
    dependencies=[AdminDep],
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}, "application/json": {}},
                     "description": "Solr synonyms.txt (format=solr) or a JSON list (format=json)"}},
)
def export(service: ServiceDep, format: Literal["solr", "json"] = "solr") -> Response:
    """Approved synonyms as a Solr synonyms.txt or JSON."""
    approved = service.synonyms.approved()
    if format == "json":
        return Response(
            content=json.dumps([{"kind": s.kind.value, "terms": s.terms, "targets": s.targets} for s in approved], indent=2),
            media_type="application/json",
        )
    return PlainTextResponse(export_solr(approved), headers={"content-disposition": 'attachment; filename="synonyms.txt"'})


@router.post("/synonyms/import", dependencies=[AdminDep])
async def import_synonyms(request: Request, service: ServiceDep, format: Literal["solr", "json"] = "solr") -> dict[str, Any]:
    """Import a Solr synonyms.txt (text body) or a JSON list; every line is checked before any is stored."""
    text = (await request.body()).decode("utf-8", errors="replace")
    try:
        if format == "json":
            entries = [(Kind(e.get("kind", "equivalent")), e["terms"], e.get("targets", [])) for e in json.loads(text)]
        else:
            entries = parse_solr(text)
        for kind, terms, targets in entries:
            validate(kind, terms, targets)
    except (SynonymError, ValueError, KeyError, TypeError) as error:
        raise HTTPException(422, f"nothing imported: {error}") from None
    actor = _actor(request, None)
    imported = skipped = 0
    for kind, terms, targets in entries:
        try:
            service.synonyms.create(kind, terms, targets, actor, "imported", source="import")
            imported += 1
        except SynonymError:
            skipped += 1  # already there
    service.reload_synonyms()
    return {"imported": imported, "skipped_existing": skipped}


@router.get("/synonyms/{synonym_id}", dependencies=[AdminDep])
def get_synonym(service: ServiceDep, synonym_id: SynonymId) -> dict[str, Any]:
    try:
        entry = service.synonyms.get(synonym_id)
    except NotFound as error:
        raise HTTPException(404, error.message) from None
    return {**entry.to_json(), "audit": service.synonyms.audit(synonym_id)}


@router.post("/synonyms/{synonym_id}/approve", dependencies=[AdminDep])
def approve(request: Request, service: ServiceDep, synonym_id: SynonymId, body: Approval | None = None) -> dict[str, Any]:
    """Approve, optionally editing kind, terms or targets first."""
    body = body or Approval()
    return _decided(service, lambda: service.synonyms.approve(
        synonym_id, _actor(request, body.by), body.note, body.kind, body.terms, body.targets))


@router.post("/synonyms/{synonym_id}/reject", dependencies=[AdminDep])
def reject(request: Request, service: ServiceDep, synonym_id: SynonymId, body: Decision | None = None) -> dict[str, Any]:
    """Reject: the pair is never suggested again."""
    body = body or Decision()
    return _decided(service, lambda: service.synonyms.reject(synonym_id, _actor(request, body.by), body.note))


@router.post("/synonyms/{synonym_id}/revert", dependencies=[AdminDep])
def revert(request: Request, service: ServiceDep, synonym_id: SynonymId, body: Decision | None = None) -> dict[str, Any]:
    """Undo the last decision (back to pending)."""
    body = body or Decision()
    return _decided(service, lambda: service.synonyms.revert(synonym_id, _actor(request, body.by), body.note))


@router.get("/admin/synonyms", response_class=HTMLResponse, include_in_schema=False)
def review_page(request: Request, service: ServiceDep, status: Annotated[Status, Query()] = Status.pending) -> Response:
    denied = admin_page_guard(request)
    if denied is not None:
        return denied
    entries = service.synonyms.list(status)
    return templates.TemplateResponse(request, "synonyms.html", {"page": "synonyms", "entries": entries, "status": status.value,
                                                                 "statuses": [s.value for s in Status]})
