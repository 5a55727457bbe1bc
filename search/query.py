"""Understanding shopper text: normalisation, words, typo and prefix expansion.

Shopper text is never handed to a query parser: quotes, colons, parentheses, `AND`, emoji and
long pastes are just characters. We split words ourselves and build tantivy term queries, so no
input can raise a syntax error.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field

import tantivy

from indexer.lexical import TEXT_FIELDS, build_schema, query_analyzer
from indexer.normalize import normalize, words
from search.english import is_english_word
from search.settings import RankingSettings
from search.understanding import FacetLexicon, Understanding, understand
from search.vocabulary import Vocabulary

# Function words that carry no product meaning in conversational queries
# ("a red dress for a summer wedding"). Only dropped when the query has other words.
STOPWORDS = frozenset(
    "a an and are as at be but by for from i in into is it its me my of on or our so that the "
    "their them these this those to was we what which who will with you your want need looking "
    "please some any".split()
)

_ANALYZER = query_analyzer()
_SCHEMA = build_schema()  # the index's schema (one per index format) for phrase checks

# Run-together words are split only into parts at least this long ("harley|davidson", not "a|pple").
MIN_SPLIT_PART = 3


def stem(word: str) -> str | None:
    tokens = _ANALYZER.analyze(word)
    return tokens[0] if tokens else None


@dataclass
class Alternative:
    """A way a query word can match: the word itself, a correction, or a completion."""

    word: str
    stem: str
    weight: float  # 1.0 for the word itself, less for corrections and completions
    kind: str  # "exact" | "typo" | "split" | "prefix" | "synonym"
    # A phrase ("t shirt", a synonym "sofa bed") matches when all its stems are in one field.
    extra_stems: tuple[str, ...] = ()


@dataclass
class QueryTerm:
    word: str
    alternatives: list[Alternative] = field(default_factory=list)

    @property
    def correction(self) -> str | None:
        for alt in self.alternatives:
            if alt.kind in ("split", "typo"):
                return alt.word
        return None


@dataclass
class QueryPlan:
    text: str  # normalised query
    terms: list[QueryTerm]
    prefix: bool
    # Approved synonyms used ("sneakers → trainers"), and the text the semantic side encodes
    # (the query plus what the synonyms say it means, when they apply).
    applied_synonyms: list[str] = field(default_factory=list)
    semantic_text: str = ""
    # What understanding read from the query (price bound, facets, filler); None when off.
    understood: Understanding | None = None

    def __post_init__(self) -> None:
        self.semantic_text = self.semantic_text or self.text

    @property
    def corrected_text(self) -> str | None:
        if not any(t.correction for t in self.terms):
            return None
        return " ".join(t.correction or t.word for t in self.terms)


_INDEX_KEYS = itertools.count()


class SynonymIndex:
    """Approved synonyms as lookups: typed phrase (1-3 words) -> what it should also find."""

    MAX_WORDS = 3

    def __init__(self, pairs: Iterable[tuple[str, str]] = (), version: int = 0) -> None:
        self.version = version
        # What the engine's plan and retrieval caches key on: unique for the process's life.
        # Not id(): a what-if index (one per candidate measured) is freed after its searches,
        # and the next one can get its address and be answered from the previous one's cache.
        self.key = next(_INDEX_KEYS)
        self.targets: dict[tuple[str, ...], list[str]] = {}
        for typed, target in pairs:
            key = tuple(words(typed))
            if key and len(key) <= self.MAX_WORDS and words(target):
                self.targets.setdefault(key, [])
                if target not in self.targets[key]:
                    self.targets[key].append(target)

    def __bool__(self) -> bool:
        return bool(self.targets)

    def match(self, chosen: list[str], at: int) -> tuple[int, list[str]]:
        """The longest typed phrase starting at `at`: (its length, its targets), or (0, [])."""
        for length in range(min(self.MAX_WORDS, len(chosen) - at), 0, -1):
            found = self.targets.get(tuple(chosen[at : at + length]))
            if found:
                return length, found
        return 0, []


def plan_query(
    raw: str,
    vocabulary: Vocabulary,
    searcher: tantivy.Searcher,
    settings: RankingSettings,
    prefix: bool | None = None,
    correct_short_words: bool = False,
    synonyms: SynonymIndex | None = None,
    understanding: bool = False,
    lexicon: FacetLexicon | None = None,
) -> QueryPlan:
    """Words to search for, each with the alternatives it may match.

    Known words match themselves. Unknown longer words also match their closest catalog words
    (typo tolerance); with `correct_short_words` (the zero-result retry) short ones do too.
    The last word of a search-as-you-type query also matches its completions. A correctly
    spelt English word is never corrected into a catalog word ("wedding" is not "bedding").
    With `understanding`, price expressions, filler and sizes are read off the text first
    (search.understanding) and only the rest is matched.
    """
    text = normalize(raw)
    if prefix is None:
        prefix = bool(raw) and not raw[-1].isspace()
    understood = None
    if understanding:
        understood = understand(text, lexicon)
        if prefix and understood.text.split()[-1:] != text.split()[-1:]:
            prefix = False  # the last word was a price or filler, so it was complete
        text = understood.text
    all_words = words(text)[: settings.max_query_terms]
    meaningful = [w for w in all_words if w not in STOPWORDS]
    chosen = meaningful or all_words
    terms: list[QueryTerm] = []
    applied: list[str] = []
    position = -1
    while position + 1 < len(chosen):
        position += 1
        word = chosen[position]
        length, targets = synonyms.match(chosen, position) if synonyms else (0, [])
        if length > 1:  # a typed phrase with synonyms becomes one term
            phrase = " ".join(chosen[position : position + length])
            term = QueryTerm(phrase)
            exact = _phrase_alternative(phrase, 1.0, "exact")
            if exact:
                term.alternatives.append(exact)
            _add_synonyms(term, phrase, targets, settings.synonym_weight, applied)
            position += length - 1
            if term.alternatives:
                terms.append(term)
            continue
        term = QueryTerm(word)
        word_stem = stem(word)
        known = word in vocabulary or (word_stem is not None and _indexed(searcher, word_stem)) or is_english_word(word)
        if word_stem:
            term.alternatives.append(Alternative(word, word_stem, 1.0, "exact"))
        if targets:
            _add_synonyms(term, word, targets, settings.synonym_weight, applied)
            known = True  # the merchandiser said what it means: no guessing at typos
        is_last = position == len(chosen) - 1 and chosen[-1] == all_words[-1]
        if not known and len(word) >= 2 * MIN_SPLIT_PART and not word.isdigit():
            # Two words run together ("harleydavidson"), when the catalog says them side by side
            # somewhere ("Harley-Davidson"): "settee" is not "set tee".
            for left, right in vocabulary.splits(word, MIN_SPLIT_PART)[:3]:
                split = _phrase_alternative(f"{left} {right}", 1.0, "split")
                if split and _said_together(searcher, [split.stem, *split.extra_stems]):
                    term.alternatives.append(split)
                    break
        if not known:
            min_length = 3 if correct_short_words else settings.fuzzy_min_length
            if len(word) >= min_length and not word.isdigit():
                distance = 1 if len(word) < 2 * settings.fuzzy_min_length - 1 else 2
                for fixed, _ in vocabulary.correct(word, distance)[:3]:
                    fixed_stem = stem(fixed)
                    if fixed_stem and fixed_stem != word_stem:
                        term.alternatives.append(
                            Alternative(fixed, fixed_stem, settings.fuzzy_score_factor, "typo")
                        )
        if prefix and is_last and len(word) >= settings.prefix_min_length:
            seen = {a.stem for a in term.alternatives}
            for completion in vocabulary.complete(word, limit=5):
                completion_stem = stem(completion)
                if completion_stem and completion_stem not in seen:
                    seen.add(completion_stem)
                    term.alternatives.append(
                        Alternative(completion, completion_stem, settings.fuzzy_score_factor, "prefix")
                    )
        if term.alternatives:
            terms.append(term)
    semantic_text = text
    if applied:
        extra = [a.split(" → ", 1)[1] for a in applied]
        semantic_text = " ".join([text, *dict.fromkeys(extra)])
    return QueryPlan(
        text=text, terms=terms, prefix=prefix, applied_synonyms=applied, semantic_text=semantic_text, understood=understood
    )


def _phrase_alternative(phrase: str, weight: float, kind: str) -> Alternative | None:
    stems = [s for s in (stem(w) for w in words(phrase)) if s]
    if not stems:
        return None
    return Alternative(phrase, stems[0], weight, kind, tuple(stems[1:]))


def _add_synonyms(term: QueryTerm, typed: str, targets: list[str], weight: float, applied: list[str]) -> None:
    seen = {(a.stem, a.extra_stems) for a in term.alternatives}
    for target in targets:
        alternative = _phrase_alternative(target, weight, "synonym")
        if alternative and (alternative.stem, alternative.extra_stems) not in seen:
            seen.add((alternative.stem, alternative.extra_stems))
            term.alternatives.append(alternative)
            applied.append(f"{typed} → {target}")


def _said_together(searcher: tantivy.Searcher, stems: list[str]) -> bool:
    words: list[str | tuple[int, str]] = list(stems)
    phrases = [(tantivy.Occur.Should, tantivy.Query.phrase_query(_SCHEMA, name, words)) for name in TEXT_FIELDS]
    return searcher.search(tantivy.Query.boolean_query(phrases), 1, count=True).count > 0  # type: ignore[attr-defined]


def _indexed(searcher: tantivy.Searcher, term: str) -> bool:
    return any(searcher.doc_freq(field_name, term) > 0 for field_name in TEXT_FIELDS)
