"""Search-bar suggestions: what the shopper is probably typing, from the catalog itself.

Ordered: brands and categories whose name starts with the text, then the query completed with
catalog words ("red dre" -> "red dress"), typo-tolerant ("cofe" -> "coffee mug": a catalog
word within an edit or two, continued with the phrase titles most often say), ranked by what
shoppers buy (products' popularity), then matching product titles (for the corrected text
when the typed word was a typo).
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
    vocabulary = snapshot.vocabulary
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
    corrected: str | None = None
    if query_words and not q[-1:].isspace():
        head = " ".join(query_words[:-1])
        for word, is_correction in vocabulary.suggest_words(query_words[-1], limit=4):
            if is_correction and corrected is None:
                corrected = f"{head} {word}".strip()
            phrase = vocabulary.phrase(word) if is_correction or word == query_words[-1] else None
            if phrase:
                add(f"{head} {phrase}".strip(), "query")
            add(f"{head} {word}".strip(), "query")
    result = search(SearchRequest(q=q, limit=limit, mode=Mode.bm25, understand=False))
    if not result.hits and corrected:
        result = search(SearchRequest(q=corrected, limit=limit, mode=Mode.bm25, understand=False))
    for hit in result.hits:
        add(hit.title, "product", hit.id)
    return out[:limit]
