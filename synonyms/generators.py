"""Synonym suggestion generators, each proposing candidates with evidence and a confidence.

They read the search log (zero-result and low-click queries) and the catalog vocabulary:
  - semantic: a word shoppers use that the catalog never does, mapped to the catalog word or
    phrase closest in meaning (same embedding model as the index);
  - behavioural: within a visit, a failed search (no results, or no click) followed shortly
    by a successful one suggests the pair;
  - lexical: British/American spelling, plural/singular, compound splits ("tshirt" / "t shirt"),
    and spelling variants, towards words the catalog uses;
  - generative (off by default): any OpenAI-compatible chat endpoint, asked for the catalog's
    words for a query.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import structlog

from indexer.normalize import words
from search.analytics.event_log import EventLog
from search.analytics.reports import attribute
from search.analytics.search_log import LoggedSearch, SearchLog
from search.engine import SearchEngine
from search.errors import InvalidInput
from search.query import STOPWORDS
from search.settings import Settings, SynonymSettings
from synonyms.impact import ChosenAfter, Judge, product_type
from synonyms.llm import catalog_words_for
from synonyms.synonym_store import Kind, Status, Synonym, SynonymStore

log = structlog.get_logger("vitrine.synonyms")

# A product type proposed for an unknown word must itself be at least this close in meaning
# to the word (all-MiniLM-L6-v2 cosine): "gumboots"~"boots" 0.5, "kaftan"~"sneakers" far less.
TYPE_MIN_COSINE = 0.3

# British -> American whole words the suffix rules below do not cover.
_SPELLING_PAIRS = {
    "grey": "gray", "jewellery": "jewelry", "pyjamas": "pajamas", "aluminium": "aluminum", "tyre": "tire",
    "moustache": "mustache", "plough": "plow", "cheque": "check", "mould": "mold", "sulphur": "sulfur",
}
_SUFFIX_RULES = [("our", "or"), ("ise", "ize"), ("yse", "yze"), ("tre", "ter"), ("ogue", "og"), ("ence", "ense"),
                 ("lled", "led"), ("lling", "ling"), ("ising", "izing"), ("ised", "ized")]


@dataclass
class FailedQuery:
    """A normalized query that failed shoppers: searches with no results or no click.

    A search answered only by relaxation (no product matched the query on its own terms, the
    page shows loosely related ones) counts as a zero-result search here: it needs a synonym
    just as much ("gumboots" answered with a moccasin)."""

    query: str
    zero_result_searches: int = 0
    no_click_searches: int = 0
    visitors: set[str] = field(default_factory=set)

    @property
    def searches(self) -> int:
        return self.zero_result_searches + self.no_click_searches


@dataclass
class SearchHistory:
    """The logged searches since some time and what each led to (read once per suggest run)."""

    searches: list[LoggedSearch]
    outcomes: dict[str, Any]

    @classmethod
    def since(cls, inputs: SynonymInputs, since: float) -> SearchHistory:
        log_ = inputs.search_log
        log_.flush()
        searches = list(log_.between(since))
        window = inputs.settings.analytics.attribution_window_minutes * 60.0
        return cls(searches, attribute(searches, inputs.events.between(since), window))


def failed_queries(history: SearchHistory, min_low_click_searches: int = 3) -> dict[str, FailedQuery]:
    """Zero-result queries, and queries with results but no click in any of several searches."""
    searches, outcomes = history.searches, history.outcomes
    failed: dict[str, FailedQuery] = {}
    shown: Counter[str] = Counter()
    clicked: set[str] = set()
    for s in searches:
        if s.total == 0 or s.relaxed:
            item = failed.setdefault(s.normalized, FailedQuery(s.normalized))
            item.zero_result_searches += 1
            if s.visitor_id:
                item.visitors.add(s.visitor_id)
        else:
            shown[s.normalized] += 1
            if s.search_id in outcomes:
                clicked.add(s.normalized)
    for query, count in shown.items():
        if query not in clicked and count >= min_low_click_searches:
            failed.setdefault(query, FailedQuery(query)).no_click_searches += count
    return failed


def unknown_words(engine: SearchEngine, query: str) -> list[str]:
    vocabulary = engine.snapshot.vocabulary
    return [w for w in words(query) if w not in STOPWORDS and not w.isdigit() and len(w) > 2 and w not in vocabulary]


def _candidate(typed: str, target: str, source: str, confidence: float, evidence: dict[str, Any]) -> Synonym:
    return Synonym(0, Kind.one_way, [typed], [target], Status.pending, source, round(float(confidence), 4), evidence)


# ---- lexical ---------------------------------------------------------------------------------


def spelling_variants(word: str) -> list[tuple[str, str]]:
    """(variant, rule) pairs across British/American spelling and number."""
    out = []
    reverse = {v: k for k, v in _SPELLING_PAIRS.items()}
    for table in (_SPELLING_PAIRS, reverse):
        if word in table:
            out.append((table[word], "british/american"))
    for british, american in _SUFFIX_RULES:
        for a, b in ((british, american), (american, british)):
            if word.endswith(a) and len(word) > len(a) + 2:
                out.append((word[: -len(a)] + b, "british/american"))
    if word.endswith("ies") and len(word) > 4:
        out.append((word[:-3] + "y", "plural/singular"))
    if word.endswith("es") and len(word) > 4:
        out.append((word[:-2], "plural/singular"))
    if word.endswith("s") and not word.endswith("ss") and len(word) > 3:
        out.append((word[:-1], "plural/singular"))
    if word.endswith("y") and len(word) > 3:
        out.append((word[:-1] + "ies", "plural/singular"))
    out.append((word + "s", "plural/singular"))
    out.append((word + "es", "plural/singular"))
    return out


def lexical(engine: SearchEngine, failed: dict[str, FailedQuery]) -> list[Synonym]:
    vocabulary = engine.snapshot.vocabulary
    candidates = []
    for item in failed.values():
        typed_words = words(item.query)
        for word in unknown_words(engine, item.query):
            evidence = {"queries": [item.query], "searches": item.searches}
            found = False
            for variant, rule in spelling_variants(word):
                if variant in vocabulary:
                    candidates.append(_candidate(word, variant, "lexical", 0.9 if rule == "british/american" else 0.85,
                                                 {**evidence, "rule": rule, "catalog_uses": vocabulary.counts[variant]}))
                    found = True
                    break
            if found:
                continue
            # Compound: "tshirt" -> "t shirt" when the catalog writes those words side by side.
            bigrams = catalog_bigrams(engine)
            for cut in range(1, len(word)):
                left, right = word[:cut], word[cut:]
                if (left, right) in bigrams:
                    candidates.append(_candidate(word, f"{left} {right}", "lexical", 0.8,
                                                 {**evidence, "rule": "compound split"}))
                    found = True
                    break
            if found:
                continue
            # A misspelling: only towards a real catalog word (seen several times, not a function word).
            corrections = [(w, d) for w, d in vocabulary.correct(word, 2)
                           if w not in STOPWORDS and len(w) > 3 and vocabulary.counts[w] >= 2]
            if corrections:
                fixed, distance = corrections[0]
                candidates.append(_candidate(word, fixed, "lexical", 0.5 if distance == 1 else 0.4,
                                             {**evidence, "rule": f"spelling ({distance} edit{'s' if distance > 1 else ''})"}))
        # Compound join: "t shirt" typed, "tshirt" in the catalog.
        for a, b in zip(typed_words, typed_words[1:], strict=False):
            joined = a + b
            if joined in vocabulary and not (a in vocabulary and b in vocabulary):
                candidates.append(_candidate(f"{a} {b}", joined, "lexical", 0.8,
                                             {"queries": [item.query], "searches": item.searches, "rule": "compound join"}))
    return candidates


def catalog_bigrams(engine: SearchEngine) -> set[tuple[str, str]]:
    snapshot = engine.snapshot
    key = (id(snapshot), snapshot.generation)
    cached = _BIGRAMS.get("value")
    if cached is None or cached[0] != key:
        pairs: set[tuple[str, str]] = set()
        for product in snapshot.products:
            if product is not None:
                title = words(product.title)
                pairs.update(zip(title, title[1:], strict=False))
        cached = (key, pairs)
        _BIGRAMS["value"] = cached
    return cached[1]


_BIGRAMS: dict[str, tuple[tuple[int, int], set[tuple[str, str]]]] = {}


# ---- semantic --------------------------------------------------------------------------------


class CatalogTerms:
    """The catalog's words and phrases (category names, attribute values) with embeddings."""

    def __init__(self, engine: SearchEngine, min_count: int = 2, known: dict[str, np.ndarray] | None = None) -> None:
        snapshot = engine.snapshot
        counts = snapshot.vocabulary.counts
        terms = {w for w, c in counts.items() if c >= min_count and len(w) > 2 and not w.isdigit() and w not in STOPWORDS}
        for product in snapshot.products:
            if product is None:
                continue
            for name in product.categories:
                terms.add(name.lower())
            for value in product.attributes.values():
                if len(value) < 40:
                    terms.add(value.lower())
        self.terms = sorted(t for t in terms if t.strip())
        # One at a time, exactly as a shopper's word is encoded: with int8 quantization a text's
        # vector shifts slightly with the rest of its batch, enough to move a word across the
        # suggestion threshold ("gumboots"~"boots" 0.505 alone, 0.496 batched).
        # Terms already encoded for an earlier snapshot are reused (stock changes make new ones).
        known = known or {}
        encode = engine.embedder.encode_query
        self.by_term = {t: known[t] if t in known else encode(t) for t in self.terms}
        self.vectors = np.stack([self.by_term[t] for t in self.terms]) if self.terms else np.zeros((0, 1), np.float32)
        self.generation = (id(snapshot), snapshot.generation)
        self.model_id = engine.embedder.model_id

    def nearest(self, vector: np.ndarray, k: int = 3) -> list[tuple[str, float]]:
        if not self.terms:
            return []
        scores = self.vectors @ vector
        top = np.argsort(-scores)[:k]
        return [(self.terms[i], float(scores[i])) for i in top]


_TERMS_CACHE: dict[int, CatalogTerms] = {}


def catalog_terms(engine: SearchEngine) -> CatalogTerms:
    cached = _TERMS_CACHE.get(id(engine))
    snapshot = engine.snapshot
    if cached is None or cached.generation != (id(snapshot), snapshot.generation):
        same_model = cached is not None and cached.model_id == engine.embedder.model_id
        cached = CatalogTerms(engine, known=cached.by_term if cached and same_model else None)
        _TERMS_CACHE.clear()
        _TERMS_CACHE[id(engine)] = cached
    return cached


def semantic(engine: SearchEngine, failed: dict[str, FailedQuery], threshold: float = 0.5) -> list[Synonym]:
    """Two views of meaning, each a candidate (they reinforce each other when they agree):
      - the catalog word or phrase whose embedding is closest to the shopper's word;
      - the product type (leaf category) most of the word's nearest products belong to: the
        products say what the word means in this shop even when word embeddings are fooled by
        spelling ("eyewear" looks like "nightwear", but its nearest products are sunglasses).
    """
    terms = catalog_terms(engine)
    snapshot = engine.snapshot
    candidates = []
    seen: set[str] = set()
    for item in failed.values():
        for word in unknown_words(engine, item.query):
            vector = engine.embedder.encode_query(word)
            evidence = {"queries": [item.query], "searches": item.searches}
            ids, scores = snapshot.search_vectors(vector, 20)
            nearest = [snapshot.products[o] for o in ids.tolist() if 0 <= o < len(snapshot.products)]
            nearest = [p for p in nearest if p is not None]
            texts = [" ".join(words(" ".join([p.title, *p.categories]))) for p in nearest]
            neighbours = [(t, s) for t, s in terms.nearest(vector, k=4) if t != word]
            if neighbours and neighbours[0][1] >= threshold:
                target, score = neighbours[0]
                support = sum(f" {target} " in f" {text} " for text in texts) / max(1, len(texts))
                # A word that looks close but names none of the word's nearest products is a
                # spelling look-alike ("hoody" ~ "hood", "jumpsuit" ~ "jumper"), not a synonym.
                if support > 0 and score >= threshold and not _is_brand(snapshot, target, word):
                    candidates.append(_candidate(word, target, "semantic", score, {
                        **evidence, "cosine": round(score, 4), "product_support": round(support, 3),
                        "neighbours": [[t, round(s, 4)] for t, s in neighbours],
                    }))
            if word in seen:
                continue
            seen.add(word)
            kinds = Counter(p.categories[-1].lower() for p in nearest if p.categories)
            if kinds:
                kind, votes = kinds.most_common(1)[0]
                share = votes / sum(kinds.values())
                mean = float(np.mean(scores)) if len(scores) else 0.0
                # The products must agree (share), be close to the word (mean), and the type
                # itself must mean something like the word: nearest products of an unknown
                # word can all be sneakers without "kaftan" meaning sneakers.
                kind_cosine = float(engine.embedder.encode_query(kind) @ vector)
                if share >= 0.5 and mean >= 0.3 and kind_cosine >= TYPE_MIN_COSINE and kind != word:
                    candidates.append(_candidate(word, kind, "semantic", share * min(1.0, mean + 0.6), {
                        **evidence, "rule": "product type of the nearest products",
                        "product_share": round(share, 3), "mean_cosine": round(mean, 4),
                        "type_cosine": round(kind_cosine, 4),
                    }))
    return candidates


def _is_brand(snapshot, target: str, typed: str) -> bool:
    """Whether `target` is one of the catalog's brand names (and `typed` is not): a brand is
    never an equivalent of a generic word ("warm" -> "maré")."""
    names = {" ".join(words(name)) for name in snapshot.brand.values.code}  # lower-cased brand names
    return " ".join(words(target)) in names and " ".join(words(typed)) not in names


# ---- behavioural -----------------------------------------------------------------------------


def behavioural(engine: SearchEngine, history: SearchHistory, window_seconds: float = 300.0) -> list[Synonym]:
    """Failed search, then within `window_seconds` in the same visit a search that got a click."""
    vocabulary = engine.snapshot.vocabulary
    searches = [s for s in history.searches if s.visitor_id]
    outcomes = history.outcomes
    by_visit: dict[tuple[str, str | None], list[LoggedSearch]] = defaultdict(list)
    for s in searches:
        by_visit[(s.visitor_id or "", s.session_id)].append(s)
    support: dict[tuple[str, str], list[str]] = defaultdict(list)
    for visit, items in by_visit.items():
        items.sort(key=lambda s: s.ts)
        for first, second in zip(items, items[1:], strict=False):
            failed = first.total == 0 or first.search_id not in outcomes
            succeeded = second.total > 0 and second.search_id in outcomes
            if not (failed and succeeded and second.ts - first.ts <= window_seconds):
                continue
            if first.normalized == second.normalized:
                continue
            a, b = words(first.normalized), words(second.normalized)
            only_a = [w for w in a if w not in b and w not in STOPWORDS]
            only_b = [w for w in b if w not in a and w not in STOPWORDS]
            unknown_a = [w for w in only_a if w not in vocabulary]
            if len(only_b) == 1 and (len(only_a) == 1 or len(unknown_a) == 1):
                # "red couch" then "red sofa", or "red couch" then "sofa": couch -> sofa
                typed = only_a[0] if len(only_a) == 1 else unknown_a[0]
                support[(typed, only_b[0])].append(visit[0])
            elif len(a) <= 3 and len(b) <= 3:
                support[(first.normalized, second.normalized)].append(visit[0])
    candidates = []
    for (typed, target), visitors in support.items():
        sessions = len(visitors)
        candidates.append(_candidate(typed, target, "behavioural", 1 - 1 / (1 + sessions), {
            "sessions": sessions, "visitors": len(set(visitors)), "rule": "failed search followed by a clicked one",
        }))
    return candidates


# ---- generative (optional) -------------------------------------------------------------------


def generative(engine: SearchEngine, config: SynonymSettings, failed: dict[str, FailedQuery]) -> list[Synonym]:
    """Ask an OpenAI-compatible chat endpoint (synonyms.llm_url) for the catalog's words."""
    if not config.llm_url:
        return []
    categories = Counter(c for p in engine.snapshot.products if p is not None for c in p.categories)
    context = [name for name, _ in categories.most_common(60)]
    candidates = []
    for item in list(failed.values())[: config.llm_max_queries]:
        for typed, target in catalog_words_for(config, item.query, context):
            if typed != target and typed in item.query:
                candidates.append(_candidate(typed, target, "generative", 0.5, {"queries": [item.query], "model": config.llm_model}))
    return candidates


# ---- running them ----------------------------------------------------------------------------


def merge(candidates: list[Synonym]) -> list[Synonym]:
    """One candidate per (typed, target): the sources' evidence side by side, best confidence."""
    merged: dict[str, Synonym] = {}
    for candidate in candidates:
        key = candidate.key()
        if key not in merged:
            candidate.evidence = {candidate.source: candidate.evidence}
            merged[key] = candidate
            continue
        existing = merged[key]
        existing.evidence.setdefault(candidate.source, candidate.evidence)
        if candidate.confidence > existing.confidence:
            existing.confidence, existing.source = candidate.confidence, candidate.source
        # Agreement between independent generators is evidence in itself.
        existing.confidence = round(min(1.0, existing.confidence + 0.05), 4)
    return list(merged.values())


def impact(engine: SearchEngine, candidate: Synonym, failed: dict[str, FailedQuery],
           history: SearchHistory | None = None) -> dict[str, Any]:
    """How many logged zero-result searches the candidate would have rescued (re-run now), and
    what the rescued searches find (synonyms.impact)."""
    return _judge(engine, failed, history).measure(candidate)


def _judge(engine: SearchEngine, failed: dict[str, FailedQuery], history: SearchHistory | None) -> Judge:
    chosen = (ChosenAfter.from_log(history.searches, history.outcomes, lambda pid: product_type(engine, pid))
              if history is not None else ChosenAfter())
    return Judge(engine, {q: f.zero_result_searches for q, f in failed.items()}, chosen)


def calibrated(prior: float, measured: dict[str, Any]) -> float:
    """The generator's confidence tempered by what the candidate was measured to do: the
    geometric mean of the two, so a plausible word whose rescued products shoppers would not
    want (or a weak generator's guess whose rescues fit well) ends in between."""
    return round(float(np.sqrt(max(prior, 0.0) * max(measured.get("quality", 0.0), 0.0))), 4)


@dataclass(frozen=True)
class SynonymInputs:
    """What a suggestion run reads and writes: the engine (vocabulary, embeddings, what-if
    searches with a candidate applied), the search log and events (what failed shoppers), the
    synonym store (where suggestions wait for review) and the settings."""

    engine: SearchEngine
    search_log: SearchLog
    events: EventLog
    store: SynonymStore
    settings: Settings


@dataclass(frozen=True)
class Round:
    """What every generator of one suggestion run is handed."""

    engine: SearchEngine
    settings: Settings
    history: SearchHistory
    failed: dict[str, FailedQuery]


# The generators by name, in the order they run (`suggest(..., generators=...)` picks some).
GENERATORS: dict[str, Callable[[Round], list[Synonym]]] = {
    "lexical": lambda r: lexical(r.engine, r.failed),
    "semantic": lambda r: semantic(r.engine, r.failed, r.settings.synonyms.semantic_threshold),
    "behavioural": lambda r: behavioural(r.engine, r.history),
    "generative": lambda r: generative(r.engine, r.settings.synonyms, r.failed),
}


def suggest(inputs: SynonymInputs, since: float | None = None, generators: tuple[str, ...] = tuple(GENERATORS)) -> list[Synonym]:
    """Run the generators over the search log since `since` and store new pending suggestions."""
    unknown = [g for g in generators if g not in GENERATORS]
    if unknown:
        raise InvalidInput(f"unknown generator(s) {unknown}: choose from {', '.join(GENERATORS)}")
    since = since if since is not None else time.time() - 30 * 86400
    history = SearchHistory.since(inputs, since)
    failed = failed_queries(history)
    run = Round(inputs.engine, inputs.settings, history, failed)
    candidates: list[Synonym] = []
    for name, generate in GENERATORS.items():
        if name in generators:
            candidates += generate(run)
    store = inputs.store
    created = []
    judge = _judge(inputs.engine, failed, history)
    for candidate in merge(candidates):
        if store.known(candidate):
            continue
        candidate.impact = judge.measure(candidate)
        if not candidate.impact["rescued_searches"]:
            continue  # rescues nothing: not worth a merchandiser's review
        candidate.impact["generator_confidence"] = candidate.confidence
        candidate.confidence = calibrated(candidate.confidence, candidate.impact)
        stored = store.suggest(candidate)
        if stored is not None:
            created.append(stored)
    log.info("synonyms suggested", failed_queries=len(failed), candidates=len(candidates), new=len(created))
    return created
