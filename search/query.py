"""Understanding shopper text: normalisation, words, typo and prefix expansion.

Shopper text is never handed to a query parser: quotes, colons, parentheses, `AND`, emoji and
long pastes are just characters. We split words ourselves and build tantivy term queries, so no
input can raise a syntax error.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field

import tantivy

from indexer.lexical import query_analyzer
from search.settings import RankingSettings
from search.vocabulary import Vocabulary, words

# Function words that carry no product meaning in conversational queries
# ("a red dress for a summer wedding"). Only dropped when the query has other words.
STOPWORDS = frozenset(
    "a an and are as at be but by for from i in into is it its me my of on or our so that the "
    "their them these this those to was we what which who will with you your want need looking "
    "please some any".split()
)

_ANALYZER = query_analyzer()


def normalize(text: str) -> str:
    """NFKC, control characters dropped, whitespace collapsed, lower-cased."""
    text = unicodedata.normalize("NFKC", text)
    text = "".join(ch if unicodedata.category(ch)[0] != "C" else " " for ch in text)
    return " ".join(text.split()).lower()


def stem(word: str) -> str | None:
    tokens = _ANALYZER.analyze(word)
    return tokens[0] if tokens else None


@dataclass
class Alternative:
    """A way a query word can match: the word itself, a correction, or a completion."""

    word: str
    stem: str
    weight: float  # 1.0 for the word itself, less for corrections and completions
    kind: str  # "exact" | "typo" | "prefix"


@dataclass
class QueryTerm:
    word: str
    alternatives: list[Alternative] = field(default_factory=list)

    @property
    def correction(self) -> str | None:
        for alt in self.alternatives:
            if alt.kind == "typo":
                return alt.word
        return None


@dataclass
class QueryPlan:
    text: str  # normalised query
    terms: list[QueryTerm]
    prefix: bool

    @property
    def corrected_text(self) -> str | None:
        if not any(t.correction for t in self.terms):
            return None
        return " ".join(t.correction or t.word for t in self.terms)


def plan_query(
    raw: str,
    vocabulary: Vocabulary,
    searcher: tantivy.Searcher,
    settings: RankingSettings,
    prefix: bool | None = None,
    correct_short_words: bool = False,
) -> QueryPlan:
    """Words to search for, each with the alternatives it may match.

    Known words match themselves. Unknown longer words also match their closest catalog words
    (typo tolerance); with `correct_short_words` (the zero-result retry) short ones do too.
    The last word of a search-as-you-type query also matches its completions.
    """
    text = normalize(raw)
    if prefix is None:
        prefix = bool(raw) and not raw[-1].isspace()
    all_words = words(text)[: settings.max_query_terms]
    meaningful = [w for w in all_words if w not in STOPWORDS]
    chosen = meaningful or all_words
    terms: list[QueryTerm] = []
    for position, word in enumerate(chosen):
        term = QueryTerm(word)
        word_stem = stem(word)
        known = word in vocabulary or (word_stem is not None and _indexed(searcher, word_stem))
        if word_stem:
            term.alternatives.append(Alternative(word, word_stem, 1.0, "exact"))
        is_last = position == len(chosen) - 1 and chosen[-1] == all_words[-1]
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
    return QueryPlan(text=text, terms=terms, prefix=prefix)


def _indexed(searcher: tantivy.Searcher, term: str) -> bool:
    for field_name in ("title", "categories", "attributes", "brand", "description"):
        if searcher.doc_freq(field_name, term) > 0:
            return True
    return False
