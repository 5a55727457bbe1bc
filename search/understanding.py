"""Query understanding: what the shopper's words say besides the words themselves.

    "red summer dress for a wedding under 50"
      -> price at most 50 (a hard constraint: the shopper stated it), colour Red and category
         Dresses recognised (matching products rank first: a soft constraint), and the words
         left to match: "red summer dress for a wedding".

What is recognised, in this order:
  1. price expressions in the usual forms ("under 50", "less than £30", "between 20 and 40",
     "from $20 to $40", "50-100", "30 or less", "over 100") become a price bound; "cheap",
     "affordable"... become a soft preference for lower prices. All are removed from the words
     that must match.
  2. the catalog's own facet values (brand, category, colour and the profiled attributes such
     as material, pattern, gender; sizes after the word "size") read from the snapshot's
     columns, never from a list of one shop's values; matched on stems, longest phrase first
     ("navy blue" before "blue"), plus the usual English ways of naming an audience ("ladies",
     "for her" -> the catalog's "Women").
  3. shopping filler ("something", "looking for", "show me", "for her" once its gender is
     known) is dropped from the words that must match, unless nothing else is left.

Everything recognised is reported in the response (`understood`), with how to turn it off for
one request (`understand=false`). The `understood` ranking stage (search/stages/understood.py)
turns the soft constraints into a score; the price bound joins the request's filters
(`effective_filters`).
"""

from __future__ import annotations

import re
import weakref
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from indexer.lexical import query_analyzer
from search.models import Filters, Understood
from search.models import Recognised as RecognisedModel

if TYPE_CHECKING:
    from indexer.catalog import Product
    from search.snapshot import Snapshot

_ANALYZER = query_analyzer()
_WORD = re.compile(r"[^\W_]+", re.UNICODE)

# ---- price ---------------------------------------------------------------------------------

_CURRENCY = r"(?:[£$€¥₹]|usd|gbp|eur|dollars?|pounds?|euros?|bucks|quid)"
_AMOUNT = r"\d{1,3}(?:,\d{3})+(?:\.\d{1,2})?|\d+(?:\.\d{1,2})?"
# Numbers that count something other than money ("under 5 years", "2-3 person tent").
_NOT_MONEY = r"(?!\s*(?:years?|yrs?|months?|mos?|weeks?|days?|hours?|mins?|minutes?|person|people|persons|pcs|pieces?|pack|packs|seater|players?|kids?|s\b|x\b|%))"


def _money(name: str) -> str:
    """An amount with an optional currency before or after it, e.g. "£30", "30 dollars"."""
    return (
        rf"(?P<{name}_pre>{_CURRENCY}\s*)?(?P<{name}>{_AMOUNT})(?![\w.,])"
        rf"(?:\s*(?P<{name}_post>{_CURRENCY})(?!\w))?{_NOT_MONEY}"
    )


_MAX_WORDS = r"under|below|less\s+than|lower\s+than|cheaper\s+than|up\s+to|upto|max(?:imum)?|at\s+most|no\s+more\s+than|not\s+more\s+than|within|<=?|≤"
_MIN_WORDS = r"over|above|more\s+than|at\s+least|min(?:imum)?|starting\s+at|>=?|≥"
_PRICE_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("between", re.compile(rf"\b(?:between|from)\s+{_money('a')}\s*(?:and|to|-|–)\s*{_money('b')}")),
    ("range", re.compile(rf"(?<![\w.,]){_money('a')}\s*(?:-|–|to)\s*{_money('b')}")),
    ("max_after", re.compile(rf"(?<![\w.,]){_money('b')}\s*(?:or|and)\s+(?:less|under|below|cheaper|lower)\b")),
    ("min_after", re.compile(rf"(?<![\w.,]){_money('a')}\s*(?:(?:or|and)\s+(?:more|over|above|up)\b|\+)")),
    ("max", re.compile(rf"(?:\b|(?<=\s)|^)(?:{_MAX_WORDS})\s*{_money('b')}")),
    ("min", re.compile(rf"(?:\b|(?<=\s)|^)(?:{_MIN_WORDS})\s*{_money('a')}")),
    ("from", re.compile(rf"\bfrom\s+(?P<a_pre>{_CURRENCY}\s*)(?P<a>{_AMOUNT})(?![\w.,])")),
]
# A price preference rather than a bound: rank cheaper products first among relevant ones.
_CHEAP = re.compile(r"\b(?:cheap(?:est|er)?|inexpensive|affordable|budget|bargain|low[\s-]cost|low[\s-]price[sd]?)\b")
_SIZE_WORDS = frozenset({"size", "sized", "sizes"})

# ---- filler and audience -------------------------------------------------------------------

# Words that say the shopper is shopping, not what they want. Dropped only when other words
# remain. (Function words are search.query.STOPWORDS.)
FILLER = frozenset(
    "something anything stuff thing things item items looking searching search find finding show "
    "get buy buying want wanted wanting need needed needs would like love lovely nice good "
    "really very just maybe also please help me im i'm id i'd ideas idea recommend options option "
    "someone somebody some any".split()
)
# English ways of naming who a product is for; mapped to the catalog's own values whose stem is
# one of the group's (a shop with "Women" gets "ladies"; a shop with "Womens" too).
_AUDIENCES: tuple[tuple[str, ...], ...] = (
    ("women", "woman", "womens", "ladies", "lady", "female", "females", "her", "she"),
    ("men", "man", "mens", "gents", "gentlemen", "male", "males", "him", "he"),
    ("girls", "girl"),
    ("boys", "boy"),
    ("kids", "kid", "children", "child", "childrens"),
)
_VALUE_PARTS = re.compile(r"\s*(?:&|/|,|\+|\band\b)\s*", re.IGNORECASE)
# "i'm", "i'd like", "we're": the tokenizer would leave a stray letter ("m") to match.
_CONTRACTION = re.compile(r"\b(?:i|we|you|they|let)['’](?:m|d|ll|ve|re|s)\b")
_PRONOUNS = frozenset({"her", "she", "him", "he"})  # only "for her" / "for him" name an audience


def stems(text: str) -> tuple[str, ...]:
    return tuple(_ANALYZER.analyze(text))


@dataclass(frozen=True)
class Recognised:
    kind: str  # "price" | "cheap" | "filler" | a facet name ("colour", "category", "size"...)
    text: str  # what the shopper typed
    value: str | None = None  # the facet value, or the price bound as written


@dataclass
class Understanding:
    text: str  # what is left to match, words and all (normalised)
    price_min: float | None = None
    price_max: float | None = None
    cheap: bool = False
    facets: dict[str, list[str]] = field(default_factory=dict)
    recognised: list[Recognised] = field(default_factory=list)
    # One entry per phrase that named facet values: what it may match ("men" -> category Men
    # or gender Men). A product honours the phrase when it has any of them.
    named: list[list[tuple[str, str]]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.recognised)

    def filters(self, requested: Filters) -> Filters:
        """The request's filters with the stated price bound (the tighter one wins)."""
        if self.price_min is None and self.price_max is None:
            return requested
        low = max(v for v in (requested.price_min, self.price_min) if v is not None) if (
            requested.price_min is not None or self.price_min is not None) else None
        high = min(v for v in (requested.price_max, self.price_max) if v is not None) if (
            requested.price_max is not None or self.price_max is not None) else None
        if low is not None and high is not None and low > high:
            low = None  # the shopper's words contradict the page's filter: keep the upper bound
        return requested.model_copy(update={"price_min": low, "price_max": high})


TYPE_MIN_PRODUCTS = 3
TYPE_MIN_SHARE = 0.8


class FacetLexicon:
    """The catalog's facet values as stem phrases: ("navi", "blue") -> [("colour", "Navy Blue")]."""

    MAX_WORDS = 4

    def __init__(self, values: dict[str, Sequence[str]], sizes: Sequence[str] = ()) -> None:
        self.phrases: dict[tuple[str, ...], list[tuple[str, str]]] = {}
        audience_of = {stems(word)[0]: group for group in _AUDIENCES for word in group if stems(word)}
        for facet, displays in values.items():
            for display in displays:
                # Values without a letter ("2011") or of one letter say too little on their own.
                if not any(ch.isalpha() for ch in display) or len(display.strip()) < 2:
                    continue
                key = stems(display)
                if not key or len(key) > self.MAX_WORDS:
                    continue
                self._add(key, facet, display)
                # "Jackets & Coats" is also named by "jacket" and by "coats".
                parts = [p for p in _VALUE_PARTS.split(display) if p.strip()]
                for part in parts if len(parts) > 1 else ():
                    if stems(part):
                        self._add(stems(part), facet, display)
                group = audience_of.get(key[0]) if len(key) == 1 else None
                for word in group or ():
                    if word in _PRONOUNS:
                        self._add(("for", word), facet, display)
                    elif stems(word):
                        self._add(stems(word), facet, display)
        self.sizes = {size.strip().lower(): size for size in sizes if size and size.strip()}

    def add_type_words(self, products: Sequence[Product | None]) -> None:
        """Words of titles that name one category: "bikini" -> Swimwear, "chinos" -> Trousers.

        Learned from the catalog: a title word names a category when at least TYPE_MIN_PRODUCTS
        products say it and TYPE_MIN_SHARE of them are in that leaf category. Words that
        already name a facet value keep their meaning."""
        said: Counter[str] = Counter()
        said_in: Counter[tuple[str, str]] = Counter()
        for product in products:
            if product is None or not product.categories:
                continue
            leaf = product.categories[-1]
            for stem in set(stems(product.title)):
                said[stem] += 1
                said_in[(stem, leaf)] += 1
        for (stem, leaf), count in said_in.items():
            if (
                count >= TYPE_MIN_PRODUCTS and count >= TYPE_MIN_SHARE * said[stem]
                and (stem,) not in self.phrases and len(stem) > 2 and stem.isalpha()
            ):
                self._add((stem,), "category", leaf)

    def _add(self, key: tuple[str, ...], facet: str, display: str) -> None:
        found = self.phrases.setdefault(key, [])
        if (facet, display) not in found:
            found.append((facet, display))

    def __len__(self) -> int:
        return len(self.phrases)


_LEXICONS: weakref.WeakKeyDictionary[Snapshot, tuple[tuple[int, ...], FacetLexicon]] = weakref.WeakKeyDictionary()


def facet_lexicon(snapshot: Snapshot) -> FacetLexicon:
    """The snapshot's lexicon, rebuilt only when a column gains values (catalog updates)."""
    columns = facet_columns(snapshot)
    signature = tuple(len(c.values.display) for c in columns.values()) + (len(snapshot.size_all.values.display),)
    cached = _LEXICONS.get(snapshot)
    if cached is not None and cached[0] == signature:
        return cached[1]
    lexicon = FacetLexicon({name: list(c.values.display) for name, c in columns.items()}, snapshot.size_all.values.display)
    lexicon.add_type_words(snapshot.products)
    _LEXICONS[snapshot] = (signature, lexicon)
    return lexicon


def facet_columns(snapshot: Snapshot) -> dict:
    return {"brand": snapshot.brand, "category": snapshot.category, "colour": snapshot.colour, **snapshot.attribute_columns}


def named_share(snapshot: Snapshot, named: list[list[tuple[str, str]]], ords: np.ndarray) -> np.ndarray:
    """Per product of `ords`, the share of the query's facet phrases it honours."""
    total = np.zeros(len(ords))
    for options in named:
        honoured = np.zeros(len(ords), dtype=bool)
        for facet, value in options:
            honoured |= facet_mask(snapshot, facet, [value], ords)
        total += honoured
    return total / len(named) if named else total


def facet_mask(snapshot: Snapshot, facet: str, values: list[str], ords: np.ndarray) -> np.ndarray:
    """Which of `ords` have one of the values (sizes: in stock in it)."""
    if facet == "size":
        return snapshot.size.mask_at(values, ords)
    column = facet_columns(snapshot).get(facet)
    if column is None:
        return np.zeros(len(ords), dtype=bool)
    return column.mask_at(values, ords)


# ---- understanding a query -----------------------------------------------------------------


def _amount(match: re.Match[str], name: str) -> float | None:
    value = match.groupdict().get(name)
    return float(value.replace(",", "")) if value else None


def _has_currency(match: re.Match[str], *names: str) -> bool:
    groups = match.groupdict()
    return any(groups.get(f"{n}_pre") or groups.get(f"{n}_post") for n in names)


def _price(text: str, found: list[Recognised]) -> tuple[str, float | None, float | None]:
    low: float | None = None
    high: float | None = None
    for kind, pattern in _PRICE_PATTERNS:
        for match in list(pattern.finditer(text)):
            a, b = _amount(match, "a"), _amount(match, "b")
            if kind == "range":
                # A bare "50-100" is a price only when it reads as one: with a currency, or
                # ascending with a top of at least 10 ("2-3 person tent" is not).
                if a is None or b is None or not (_has_currency(match, "a", "b") or (a < b and b >= 10)):
                    continue
                before = text[: match.start()].split()[-1:]
                if before and before[0] in _SIZE_WORDS | {"age", "ages", "aged"}:
                    continue
            if kind in ("between", "range") and a is not None and b is not None and a > b:
                a, b = b, a
            if a is not None:
                low = a if low is None else max(low, a)
            if b is not None:
                high = b if high is None else min(high, b)
            phrase = match.group(0).strip()
            bound = " to ".join(f"{v:g}" for v in (a, b) if v is not None)
            label = {"max": "≤ ", "max_after": "≤ ", "min": "≥ ", "min_after": "≥ ", "from": "≥ "}.get(kind, "")
            found.append(Recognised("price", phrase, f"{label}{bound}"))
            text = text[: match.start()] + " " + text[match.end() :]
    return text, low, high


def understand(text: str, lexicon: FacetLexicon | None) -> Understanding:
    """`text` is normalised shopper text (search.query.normalize)."""
    found: list[Recognised] = []
    rest, low, high = _price(text, found)
    cheap = False
    for match in list(_CHEAP.finditer(rest)):
        cheap = True
        found.append(Recognised("cheap", match.group(0), "lower prices first"))
    rest = _CHEAP.sub(" ", rest)
    for match in list(_CONTRACTION.finditer(rest)):
        found.append(Recognised("filler", match.group(0)))
    tokens = _WORD.findall(_CONTRACTION.sub(" ", rest))
    keep = [True] * len(tokens)
    facets: dict[str, list[str]] = {}
    named: list[list[tuple[str, str]]] = []
    if lexicon is not None and len(lexicon.phrases) + len(lexicon.sizes):
        token_stems = [stems(t) for t in tokens]
        flat = [s[0] if s else "" for s in token_stems]
        i = 0
        while i < len(tokens):
            if tokens[i] in _SIZE_WORDS and i + 1 < len(tokens) and tokens[i + 1] in lexicon.sizes:
                size = lexicon.sizes[tokens[i + 1]]
                found.append(Recognised("size", f"{tokens[i]} {tokens[i + 1]}", size))
                facets.setdefault("size", []).append(size)
                named.append([("size", size)])
                keep[i] = keep[i + 1] = False  # sizes are not words of the product text
                i += 2
                continue
            for length in range(min(FacetLexicon.MAX_WORDS, len(tokens) - i), 0, -1):
                key = tuple(flat[i : i + length])
                values = lexicon.phrases.get(key) if all(key) else None
                if not values:
                    continue
                typed = " ".join(tokens[i : i + length])
                named.append(list(values))
                for facet, display in values:
                    found.append(Recognised(facet, typed, display))
                    if display not in facets.setdefault(facet, []):
                        facets[facet].append(display)
                if tokens[i + length - 1] in _PRONOUNS:  # "for her": the audience, not words
                    keep[i + length - 1] = False
                i += length - 1
                break
            i += 1
    fillers = [i for i, t in enumerate(tokens) if t in FILLER]
    for i in fillers:
        keep[i] = False
    if not any(keep[i] for i in range(len(tokens))):
        # Nothing but filler (and audience): keep the words, the shopper meant them.
        keep = [k or i in fillers for i, k in enumerate(keep)]
    for i in fillers:
        if not keep[i]:
            found.append(Recognised("filler", tokens[i]))
    remaining = " ".join(t for t, k in zip(tokens, keep, strict=True) if k)
    return Understanding(remaining, low, high, cheap, facets, found, named)


def effective_filters(request_filters: Filters, understood: Understanding | None) -> Filters:
    return understood.filters(request_filters) if understood else request_filters


def report(understood: Understanding) -> Understood:
    return Understood(
        text=understood.text,
        price_min=understood.price_min,
        price_max=understood.price_max,
        prefer_cheap=understood.cheap,
        facets=understood.facets,
        recognised=[RecognisedModel(kind=r.kind, text=r.text, value=r.value) for r in understood.recognised],
    )
