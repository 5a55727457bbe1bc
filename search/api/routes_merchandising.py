"""Admin API for merchandising: rules, ranking profiles, A/B tests and their reports.

Routes parse, call the store or the engine, and shape; every change is audited with the
`X-Admin-User` header (else "admin") as who.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Request, status
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from search.api.deps import AdminDep, ServiceDep
from search.api.routes_reports import admin_page_guard, templates
from search.merchandising.experiments import ExperimentBody
from search.merchandising.profiles import SIGNALS, Profile, ProfileBody
from search.merchandising.rules import Rule, RuleBody
from search.merchandising.service import experiment_report
from search.merchandising.store import Conflict, NotFound
from search.models import SearchRequest
from search.service import SearchService

router = APIRouter(tags=["merchandising"], dependencies=[AdminDep])
pages = APIRouter(include_in_schema=False)

ActorHeader = Annotated[str | None, Header(description="Who makes the change (audit trail)")]


def _actor(x_admin_user: str | None) -> str:
    return (x_admin_user or "admin").strip()[:100] or "admin"


def _changed(service: SearchService) -> None:
    service.merchandising.changed()


# ---- rules ----------------------------------------------------------------------------------


@router.get("/rules")
def list_rules(service: ServiceDep) -> dict[str, Any]:
    return {"rules": [r.to_json() for r in service.merchandising.store.rules()]}


@router.post("/rules", status_code=status.HTTP_201_CREATED)
def create_rule(service: ServiceDep, body: RuleBody, x_admin_user: ActorHeader = None) -> dict[str, Any]:
    rule = service.merchandising.store.create_rule(body, _actor(x_admin_user))
    _changed(service)
    return rule.to_json()


@router.get("/rules/{rule_id}")
def get_rule(service: ServiceDep, rule_id: int) -> dict[str, Any]:
    store = service.merchandising.store
    try:
        rule = store.rule(rule_id)
    except NotFound as error:
        raise HTTPException(404, error.args[0]) from None
    return {**rule.to_json(), "audit": store.audit("rule", str(rule_id))}


@router.put("/rules/{rule_id}")
def replace_rule(service: ServiceDep, rule_id: int, body: RuleBody, x_admin_user: ActorHeader = None) -> dict[str, Any]:
    try:
        rule = service.merchandising.store.update_rule(rule_id, body, _actor(x_admin_user))
    except NotFound as error:
        raise HTTPException(404, error.args[0]) from None
    _changed(service)
    return rule.to_json()


@router.delete("/rules/{rule_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_rule(service: ServiceDep, rule_id: int, x_admin_user: ActorHeader = None) -> None:
    try:
        service.merchandising.store.delete_rule(rule_id, _actor(x_admin_user))
    except NotFound as error:
        raise HTTPException(404, error.args[0]) from None
    _changed(service)


# ---- profiles -------------------------------------------------------------------------------


@router.get("/profiles")
def list_profiles(service: ServiceDep) -> dict[str, Any]:
    return {"profiles": [p.model_dump(mode="json") for p in service.merchandising.store.profiles()]}


@router.get("/profiles/{name}")
def get_profile(service: ServiceDep, name: str) -> dict[str, Any]:
    store = service.merchandising.store
    try:
        profile = store.profile(name)
    except NotFound as error:
        raise HTTPException(404, error.args[0]) from None
    return {**profile.model_dump(mode="json"), "audit": store.audit("profile", name)}


@router.put("/profiles/{name}")
def put_profile(service: ServiceDep, name: str, body: ProfileBody, x_admin_user: ActorHeader = None) -> dict[str, Any]:
    if not name.strip() or len(name) > 100:
        raise HTTPException(422, "a profile name is 1 to 100 characters")
    profile = service.merchandising.store.put_profile(name, body, _actor(x_admin_user))
    _changed(service)
    return profile.model_dump(mode="json")


# ---- preview --------------------------------------------------------------------------------


class Preview(BaseModel):
    """A search as it would be answered with an unsaved rule and/or profile."""

    model_config = ConfigDict(extra="forbid")

    search: SearchRequest = Field(default_factory=SearchRequest)
    rule: RuleBody | None = None
    profile: ProfileBody | None = None


@router.post("/merchandising/preview")
def preview(service: ServiceDep, body: Preview) -> dict[str, Any]:
    """Results with and without the unsaved rule or profile (nothing is stored or logged)."""
    request = body.search.model_copy(update={"explain": True})
    extra: dict[str, Any] = {}
    if body.rule is not None:
        now = time.time()
        extra["extra_rules"] = [Rule(id=0, version=0, created_at=now, updated_at=now, updated_by="preview",
                                           **body.rule.model_dump(by_alias=True))]
    if body.profile is not None:
        extra["profile"] = Profile(name="preview", version=0, updated_at=time.time(), updated_by="preview",
                                   **body.profile.model_dump())
    before = service.search(request, record=False)
    after = service.search(request, record=False, preview=extra)

    def shape(result) -> dict[str, Any]:
        data = result.model_dump(mode="json")
        return {"total": data["total"], "hits": data["hits"], "rules": (data.get("debug") or {}).get("rules", [])}

    return {"current": shape(before), "preview": shape(after)}


# ---- experiments ----------------------------------------------------------------------------


@router.get("/experiments")
def list_experiments(service: ServiceDep) -> dict[str, Any]:
    return {"experiments": [e.model_dump(mode="json") for e in service.merchandising.store.experiments()]}


@router.post("/experiments", status_code=status.HTTP_201_CREATED)
def start_experiment(service: ServiceDep, body: ExperimentBody, x_admin_user: ActorHeader = None) -> dict[str, Any]:
    store = service.merchandising.store
    known = {p.name for p in store.profiles()}
    unknown = sorted({v.profile for v in body.variants if v.profile and v.profile not in known})
    if unknown:
        raise HTTPException(422, f"unknown ranking profiles {unknown}: create them with PUT /profiles/{{name}} first")
    try:
        experiment = store.start_experiment(body, _actor(x_admin_user))
    except Conflict as error:
        raise HTTPException(409, str(error)) from None
    _changed(service)
    return experiment.model_dump(mode="json")


@router.post("/experiments/{experiment_id}/stop")
def stop_experiment(service: ServiceDep, experiment_id: str, x_admin_user: ActorHeader = None) -> dict[str, Any]:
    try:
        experiment = service.merchandising.store.stop_experiment(experiment_id, _actor(x_admin_user))
    except NotFound as error:
        raise HTTPException(404, error.args[0]) from None
    except Conflict as error:
        raise HTTPException(409, str(error)) from None
    _changed(service)
    return experiment.model_dump(mode="json")


@router.get("/reports/experiments/{experiment_id}", tags=["reports"])
def report(service: ServiceDep, experiment_id: str) -> dict[str, Any]:
    """Per variant: searches, visitors, rates, revenue; uplift vs control with a 95% CI."""
    try:
        return experiment_report(service.merchandising.store, service.search_log, service.visitors.events,
                                 service.settings.analytics.attribution_window_minutes * 60.0, experiment_id)
    except NotFound as error:
        raise HTTPException(404, error.args[0]) from None



@pages.get("/admin/merchandising")
def merchandising_page(request: Request, service: ServiceDep) -> Response:
    """Rules, ranking profiles and A/B tests: list, create, edit, preview, stop, report."""
    denied = admin_page_guard(request)
    if denied is not None:
        return denied
    store = service.merchandising.store
    rules = []
    for rule in store.rules():
        data = rule.to_json()
        body = {k: data[k] for k in RuleBody.model_fields}
        data["body"] = RuleBody.model_validate(body).model_dump(mode="json", by_alias=True, exclude_none=True)
        rules.append(data)
    profiles = []
    for profile in store.profiles():
        data = profile.model_dump(mode="json")
        data["body"] = ProfileBody.model_validate({k: v for k, v in data.items() if k in ProfileBody.model_fields}).model_dump()
        profiles.append(data)
    experiments = []
    for experiment in reversed(store.experiments()):
        data = experiment.model_dump(mode="json")
        data["started"] = datetime.fromtimestamp(experiment.started_at, UTC).isoformat(timespec="minutes")
        experiments.append(data)
    return templates.TemplateResponse(request, "merchandising.html", {
        "page": "merchandising", "rules": rules, "profiles": profiles, "experiments": experiments, "signals": SIGNALS,
    })
