"""Unknown query parameters are refused with a 422 that names them and lists the known ones.

Without this, `page=2` or a misspelt `colour` (`color=red`) is silently ignored and the shopper
gets page one or unfiltered results, which looks like a ranking bug.
"""

from __future__ import annotations

from fastapi import HTTPException, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

# Parameters no route declares but that are harmless everywhere: cache busters and analytics
# tags that link builders add.
ALWAYS_ALLOWED = frozenset({"_", "utm_source", "utm_campaign", "utm_term", "utm_content"})

_known: dict[int, frozenset[str]] = {}


def _query_names(dependant: Dependant) -> set[str]:
    # Walked by hand: FastAPI's own flattening helpers are private and change between releases.
    names = {param.alias for param in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


def _declared(route: APIRoute) -> frozenset[str]:
    names = _known.get(id(route))
    if names is None:
        names = frozenset(_query_names(route.dependant)) | ALWAYS_ALLOWED
        _known[id(route)] = names
    return names


async def reject_unknown_query_params(request: Request) -> None:
    """Router dependency: 422 when the query string holds a parameter the route does not take.
    A coroutine (it never blocks): FastAPI would run a plain function in its thread pool."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    known = _declared(route)
    unknown = sorted({name for name in request.query_params if name not in known})
    if unknown:
        hint = " (results are paged with limit and offset)" if "page" in unknown else ""
        raise HTTPException(
            422,
            [
                {
                    "loc": ["query", name],
                    "msg": f"unknown query parameter {name!r}{hint}; this endpoint takes: "
                    + ", ".join(sorted(known - ALWAYS_ALLOWED)),
                    "type": "unknown_parameter",
                }
                for name in unknown
            ],
        )
