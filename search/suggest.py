"""Search-bar suggestions: what the shopper is probably typing, from the catalog itself.

Ordered: brands and categories whose name starts with the text, then the query completed with
catalog words ("red dre" -> "red dress"), then matching product titles. Popular past queries
join once search analytics exist.
"""

from __future__ import annotations

from collections.abc import Callable

from indexer.normalize import normalize, words
from search.models import Mode, SearchRequest, SearchResult, Suggestion
from search.snapshot import Snapshot


def suggest(snapshot: Snapshot, q: str, limit: int, search: Callable[[SearchRequest], SearchResult]) -> list[Suggestion]:
    """`search` answers the product-title part (the engine's, without logging)."""
    text = normalize(q)
    if not text:
        return []
    out: list[Suggestion] = []
    seen: set[str] = set()

    def add(text_: str, kind: str, id_: str | None = None) -> None:
        key = text_.lower()
        if key not in seen and len(out) < limit:
            seen.add(key)
            out.append(Suggestion(text=text_, kind=kind, id=id_))

    for column, kind in ((snapshot.brand, "brand"), (snapshot.category, "category")):
        for display in column.values.display:
            if display.lower().startswith(text):
                add(display, kind)
    query_words = words(text)
    if query_words and not q[-1:].isspace():
        head = " ".join(query_words[:-1])
        for completion in snapshot.vocabulary.complete(query_words[-1], limit=4):
            add(f"{head} {completion}".strip(), "query")
    result = search(SearchRequest(q=q, limit=limit, mode=Mode.bm25))
    for hit in result.hits:
        add(hit.title, "product", hit.id)
    return out[:limit]
