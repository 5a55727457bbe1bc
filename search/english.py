"""Is this a correctly spelt English word? The word list symspellpy ships, loaded once.

Spelling correction must not turn a real word the catalog happens not to contain into one it
does ("wedding" is not a typo of "bedding"). symspellpy's frequency dictionary (82,765 English
words from the intersection of Google Books n-grams and SCOWL, so no misspellings) answers that
without any download.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

DICTIONARY = "frequency_dictionary_en_82_765.txt"


@lru_cache(maxsize=1)
def english_words() -> frozenset[str]:
    text = resources.files("symspellpy").joinpath(DICTIONARY).read_text(encoding="utf-8")
    return frozenset(line.split(" ", 1)[0] for line in text.splitlines() if line)


def is_english_word(word: str) -> bool:
    return word.lower() in english_words()
