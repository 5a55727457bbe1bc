"""The catalog's own words: spelling correction ("did you mean") and word completion.

Built from the text shoppers see (titles, brands, categories, attributes; description words
that occur at least twice), so corrections are always words of this shop. Correction uses
SymSpell (symmetric delete), which answers in microseconds for a shop-sized vocabulary.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Iterable

from symspellpy import SymSpell, Verbosity

from indexer.catalog import Product
from indexer.normalize import canonical, words

MAX_EDIT_DISTANCE = 2


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


class Vocabulary:
    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self._description: Counter[str] = Counter()
        self._speller = SymSpell(max_dictionary_edit_distance=MAX_EDIT_DISTANCE, prefix_length=7)
        self._sorted: list[str] = []
        self._dirty = True

    def add_products(self, products: Iterable[Product]) -> None:
        for product in products:
            salient, description = product_words(product)
            self._add(salient, description)
        self._dirty = True

    def _add(self, salient: list[str], description: list[str]) -> None:
        for word in salient:
            if len(word) > 1 and not word.isdigit():
                if word not in self.counts:
                    self._speller.create_dictionary_entry(word, 1)
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
