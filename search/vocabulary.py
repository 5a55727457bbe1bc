"""The catalog's own words: spelling correction ("did you mean") and word completion.

Built from the text shoppers see (titles, brands, categories, attributes; description words
that occur at least twice), so corrections are always words of this shop. Correction uses
SymSpell (symmetric delete), which answers in microseconds for a shop-sized vocabulary.
"""

from __future__ import annotations

import bisect
import re
from collections import Counter
from collections.abc import Iterable

from symspellpy import SymSpell, Verbosity

from indexer.catalog import Product
from indexer.normalize import canonical, words

MAX_EDIT_DISTANCE = 2
PREFIX_MIN, PREFIX_MAX = 4, 7
# Title segments: "Brand Wool Jumper - White" says "wool jumper", not "jumper white".
_TITLE_SEGMENTS = re.compile(r"\s[-–|/]\s|[,;:()\[\]]")


def product_words(product: Product) -> tuple[list[str], list[str]]:
    """(salient words, description words) of a product."""
    salient = words(canonical(product.title))
    if product.brand:
        salient += words(product.brand)
    for category in product.categories:
        salient += words(canonical(category))
    for value in product.attributes.values():
        salient += words(canonical(value))
    return salient, words(canonical(product.description)) if product.description else []


def _undoubled(word: str) -> str:
    return re.sub(r"(.)\1+", r"\1", word)


class Vocabulary:
    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        # What shoppers buy: per salient word (and per title word pair), the products saying it,
        # each weighted by its popularity (sales), for ranking suggestions.
        self.demand: Counter[str] = Counter()
        self.next_words: dict[str, Counter[str]] = {}
        self._description: Counter[str] = Counter()
        self._speller = SymSpell(max_dictionary_edit_distance=MAX_EDIT_DISTANCE, prefix_length=7)
        # Beginnings of salient words (4 to 7 letters), for typo-tolerant completion: "sneek"
        # is one edit from "sneak", the start of "sneakers".
        self._prefixes = SymSpell(max_dictionary_edit_distance=1, prefix_length=PREFIX_MAX)
        self._prefixed: set[str] = set()
        self._sorted: list[str] = []
        self._dirty = True

    def add_products(self, products: Iterable[Product]) -> None:
        for product in products:
            salient, description = product_words(product)
            self._add(salient, description)
            weight = 1.0 + float(product.popularity or 0.0)
            for word in set(salient):
                self.demand[word] += weight  # type: ignore[assignment]
            for segment in _TITLE_SEGMENTS.split(canonical(product.title)):
                title = [w for w in words(segment) if len(w) > 1 and not w.isdigit()]
                for left, right in zip(title, title[1:], strict=False):
                    self.next_words.setdefault(left, Counter())[right] += weight  # type: ignore[assignment]
        self._dirty = True

    def _add(self, salient: list[str], description: list[str]) -> None:
        for word in salient:
            if len(word) > 1 and not word.isdigit():
                if word not in self.counts:
                    self._speller.create_dictionary_entry(word, 1)
                if word not in self._prefixed:
                    self._prefixed.add(word)
                    for end in range(PREFIX_MIN, min(len(word), PREFIX_MAX) + 1):
                        self._prefixes.create_dictionary_entry(word[:end], 1)
                self.counts[word] += 1
        for word in description:
            if len(word) > 2 and not word.isdigit() and word not in self.counts:
                self._description[word] += 1
                if self._description[word] == 2:
                    # Seen twice in descriptions: a real word of this shop, not a one-off typo.
                    self.counts[word] = 1
                    self._speller.create_dictionary_entry(word, 1)

    def __contains__(self, word: str) -> bool:
        return word in self.counts

    def correct(self, word: str, max_distance: int) -> list[tuple[str, int]]:
        """Closest catalog words (at the smallest distance found), most frequent first."""
        if max_distance <= 0 or word in self.counts:
            return []
        found = self._speller.lookup(word, Verbosity.CLOSEST, max_edit_distance=min(max_distance, MAX_EDIT_DISTANCE))
        ranked = sorted(found, key=lambda s: (s.distance, -self.counts.get(s.term, 0)))
        return [(s.term, s.distance) for s in ranked]

    def splits(self, word: str, min_part: int = 3, min_count: int = 2) -> list[tuple[str, str]]:
        """Ways to read `word` as two catalog words run together ("harleydavidson" ->
        ("harley", "davidson")), most plausible first: each part a word of this shop seen at
        least `min_count` times, ranked by how often the rarer part occurs."""
        found = []
        for cut in range(min_part, len(word) - min_part + 1):
            left, right = word[:cut], word[cut:]
            support = min(self.counts.get(left, 0), self.counts.get(right, 0))
            if support >= min_count:
                found.append((support, (left, right)))
        found.sort(key=lambda item: -item[0])
        return [pair for _, pair in found]

    def suggest_words(self, typed: str, limit: int = 5) -> list[tuple[str, bool]]:
        """Words the shopper may be typing, as (word, is_correction): completions of `typed`
        and, typo-tolerant, catalog words within one edit (two from 4 letters) of it or of its
        completions' start ("cofe" -> "coffee"); most in demand first, corrections after exact
        completions of the same demand."""
        exact = self.complete(typed, limit=50)
        if exact or len(typed) < PREFIX_MIN:
            exact.sort(key=lambda w: -self.demand.get(w, 0.0))
            return [(w, False) for w in exact[:limit]]
        # No catalog word starts like this: words whose beginning is one edit away. A doubled
        # letter typed once ("cofe" for "coff…") is the commonest slip, so it ranks before
        # other edits ("cove…"); then demand decides.
        found: dict[str, tuple[int, float]] = {}
        for prefix in self._prefixes.lookup(typed, Verbosity.CLOSEST, max_edit_distance=1):
            slip = 0 if _undoubled(prefix.term) == _undoubled(typed) else 1
            for word in self.complete(prefix.term, limit=20):
                key = (slip, -self.demand.get(word, 0.0))
                found[word] = min(found.get(word, key), key)
        ranked = sorted(found, key=lambda w: found[w])[:limit]
        return [(w, True) for w in ranked]

    def phrase(self, word: str) -> str | None:
        """The phrase titles most often start with this word ("coffee" -> "coffee mug")."""
        following = self.next_words.get(word)
        if not following:
            return None
        best, weight = following.most_common(1)[0]
        return f"{word} {best}" if weight >= 2 else None

    def complete(self, prefix: str, limit: int = 5) -> list[str]:
        """Catalog words starting with prefix, most frequent first."""
        if self._dirty:
            self._sorted = sorted(self.counts)
            self._dirty = False
        start = bisect.bisect_left(self._sorted, prefix)
        matches = []
        for word in self._sorted[start:]:
            if not word.startswith(prefix):
                break
            matches.append(word)
            if len(matches) > 2000:  # a 1-letter prefix: frequency among the first 2000 is enough
                break
        matches.sort(key=lambda w: -self.counts[w])
        return matches[:limit]
