"""Text normalisation shared by everything that compares words: the indexer, the query side,
the search log and the synonym store. One definition, so an indexed word and a typed word
are always spelt the same way.

Lives in `indexer` because the indexer must never import the query side; `search` and
`synonyms` import it from here.
"""

from __future__ import annotations

import re
import unicodedata

# A word: letters and digits (any script), nothing else.
WORD = re.compile(r"[^\W_]+", re.UNICODE)

# Compounds shops and shoppers spell three ways ("t-shirt", "t shirt", "tshirt"). Left apart,
# "shirt" matches every T-shirt (the tokenizer splits "t-shirt" into "t" and "shirt"), so one
# spelling is indexed and searched for all of them. Applied to indexed text and to queries.
_COMPOUNDS = [(re.compile(r"\b(t)[\s\-]?(shirts?)\b", re.IGNORECASE), r"\1\2")]


def join_compounds(text: str) -> str:
    for pattern, joined in _COMPOUNDS:
        text = pattern.sub(joined, text)
    return text


def normalize(text: str) -> str:
    """NFKC, control characters dropped, whitespace collapsed, lower-cased, compounds joined
    the way the index joins them ("t-shirt" -> "tshirt")."""
    text = unicodedata.normalize("NFKC", text)
    text = "".join(ch if unicodedata.category(ch)[0] != "C" else " " for ch in text)
    return join_compounds(" ".join(text.split()).lower())


def words(text: str) -> list[str]:
    """The words of a text, lower-cased (punctuation and underscores separate words)."""
    return WORD.findall(text.lower())
