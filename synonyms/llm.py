"""The client of an OpenAI-compatible chat endpoint, asked which words a shop's catalog uses
for a shopper's query. Optional (off unless `synonyms.llm_url` is set) and never trusted: what
it answers becomes a pending suggestion a merchandiser reviews, measured like any other."""

from __future__ import annotations

import json
import re
import urllib.request

import structlog

from search.settings import SynonymSettings

log = structlog.get_logger("vitrine.synonyms.llm")


def catalog_words_for(config: SynonymSettings, query: str, categories: list[str]) -> list[tuple[str, str]]:
    """(typed word, catalog word) pairs the model proposes for a failed query; [] on any failure
    (an optional helper never fails the other generators)."""
    if not config.llm_url:
        return []
    context = ", ".join(categories)
    prompt = (
        f"A shopper searched an online shop for: {query!r} and found nothing useful. The shop's catalog "
        f"uses these category names: {context}. Reply with JSON only: a list of objects "
        '{"typed": <word from the query>, "catalog": <word or short phrase the catalog likely uses>}.'
    )
    body = json.dumps({"model": config.llm_model, "messages": [{"role": "user", "content": prompt}], "temperature": 0})
    request = urllib.request.Request(
        config.llm_url.rstrip("/") + "/chat/completions", data=body.encode(), method="POST",
        headers={"content-type": "application/json", **({"authorization": f"Bearer {config.llm_key}"} if config.llm_key else {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=config.llm_timeout_seconds) as response:
            content = json.loads(response.read())["choices"][0]["message"]["content"]
        pairs = json.loads(re.sub(r"^```(json)?|```$", "", content.strip(), flags=re.M))
    except Exception as error:
        log.warning("generative synonym provider failed", error=str(error))
        return []
    out = []
    for pair in pairs if isinstance(pairs, list) else []:
        if not isinstance(pair, dict):
            continue
        typed, target = str(pair.get("typed", "")).lower().strip(), str(pair.get("catalog", "")).lower().strip()
        if typed and target:
            out.append((typed, target))
    return out
