"""Admin reports (JSON and CSV) and the report page a merchandiser looks at."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    Response,
)
from fastapi.templating import Jinja2Templates

from search.analytics.report_runner import REPORTS, Period
from search.analytics.reports import to_csv
from search.api.admin_login import login_form
from search.api.charts import bar_chart, line_chart
from search.api.deps import AdminDep, ServiceDep
from search.api.security import is_admin

router = APIRouter()
templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))

SinceQuery = Annotated[str | None, Query(description="7d, 24h, 30m, 2w, an ISO date or time, or Unix seconds (default 7d)")]
UntilQuery = Annotated[str | None, Query(description="same forms as since (default now)")]


def _period(since: str | None, until: str | None) -> Period:
    try:
        return Period.parse(since, until)
    except ValueError as error:
        raise HTTPException(422, str(error)) from None


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="minutes")


@router.get("/reports/{name}", tags=["reports"], dependencies=[AdminDep])
def report(
    service: ServiceDep,
    name: str,
    since: SinceQuery = None,
    until: UntilQuery = None,
    traffic_source: str | None = None,
    visitor: Annotated[str | None, Query(description="new or returning")] = None,
    device: str | None = None,
    format: Literal["json", "csv"] = "json",
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
    min_searches: Annotated[int, Query(ge=1, le=1_000_000)] = 5,
) -> Response:
    """Search reports: zero-results, abandoned, top, low-ctr, conversion, zero-results-over-time."""
    if name not in REPORTS:
        raise HTTPException(404, f"no report {name!r}: one of {', '.join(REPORTS)}")
    period = _period(since, until)
    segment = {"traffic_source": traffic_source, "visitor": visitor, "device": device}
    rows = service.run_report(name, period, segment, limit, min_searches)
    if format == "csv":
        return PlainTextResponse(
            to_csv(rows), media_type="text/csv",
            headers={"content-disposition": f'attachment; filename="{name}.csv"'},
        )
    return JSONResponse({"report": name, "since": _iso(period.since), "until": _iso(period.until),
                         "segment": {k: v for k, v in segment.items() if v}, "rows": rows})


def admin_page_guard(request: Request) -> Response | None:
    # The app-wide guard already answers unauthenticated page requests with the login form.
    return None if is_admin(request) else login_form(request.url.path)


@router.get("/admin", response_class=HTMLResponse, include_in_schema=False)
def reports_page(request: Request, service: ServiceDep, since: SinceQuery = None, until: UntilQuery = None) -> Response:
    denied = admin_page_guard(request)
    if denied is not None:
        return denied
    period = _period(since, until)
    over_time = service.run_report("zero-results-over-time", period)
    zero = service.run_report("zero-results", period, limit=20)
    context: dict[str, Any] = {
        "page": "reports",
        "since": _iso(period.since), "until": _iso(period.until),
        "periods": [("24 hours", "24h"), ("7 days", "7d"), ("30 days", "30d"), ("90 days", "90d")],
        "over_time": over_time, "line": line_chart(over_time, "day", ["searches", "zero_results"]),
        "zero": zero, "bars": bar_chart(zero[:10], "query", "searches"),
        "tables": [
            ("Abandoned searches (results shown, no click)", "abandoned", service.run_report("abandoned", period, limit=20),
             ["query", "searches", "with_results", "abandoned", "abandonment_rate", "visitors"]),
            ("Top queries", "top", service.run_report("top", period, limit=20),
             ["query", "searches", "visitors", "ctr", "conversion_rate", "revenue", "zero_results"]),
            ("Lowest click-through", "low-ctr", service.run_report("low-ctr", period, limit=20),
             ["query", "searches", "ctr", "with_click"]),
            ("Search conversion by segment", "conversion", service.run_report("conversion", period),
             ["segment", "value", "searches", "ctr", "conversion_rate", "revenue", "revenue_per_search", "zero_result_rate"]),
        ],
    }
    return templates.TemplateResponse(request, "reports.html", context)
