"""A realistic, seeded query mix for the sample shop.

Shoppers repeat head queries ("dress", "white sneakers") far more than anything else (Zipf),
type long-tail combinations, make typos, search as they type, and add filters and sorts.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from indexer.catalog import Product
from indexer.normalize import words
from search.models import Filters, SearchRequest, Sort


@dataclass
class MixedQuery:
    request: SearchRequest
    kind: str  # head | tail | typo | prefix | filter
    tags: set[str] = field(default_factory=set)


def _typo(rng: random.Random, word: str) -> str:
    if len(word) < 5:
        return word
    i = rng.randrange(1, len(word) - 1)
    op = rng.choice(("swap", "drop", "double", "replace"))
    if op == "swap":
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    if op == "drop":
        return word[:i] + word[i + 1 :]
    if op == "double":
        return word[:i] + word[i] + word[i:]
    return word[:i] + rng.choice("aeiourst") + word[i + 1 :]


def build_mix(products: list[Product], n: int, seed: int = 1) -> list[MixedQuery]:
    rng = random.Random(seed)
    titles = [p.title for p in products]
    types = sorted({p.categories[-1] for p in products if p.categories})
    colours = sorted({c for p in products for c in p.colours})
    brands = sorted({p.brand for p in products if p.brand})
    materials = sorted({p.attributes["material"] for p in products if "material" in p.attributes})
    head = [t.lower() for t in types] + [f"{c.lower()} {t.lower()}" for c in colours[:6] for t in types[:8]] + [b.lower() for b in brands[:10]]
    rng.shuffle(head)
    head = head[:60]
    zipf = [1.0 / (rank + 1) for rank in range(len(head))]

    def tail() -> str:
        title_words = [w for w in words(rng.choice(titles)) if len(w) > 2]
        k = rng.randint(2, min(5, max(2, len(title_words))))
        picked = rng.sample(title_words, min(k, len(title_words)))
        if rng.random() < 0.3:
            picked.append(rng.choice(materials).lower())
        return " ".join(picked)

    mix: list[MixedQuery] = []
    for _ in range(n):
        roll = rng.random()
        if roll < 0.45:
            q, kind = rng.choices(head, weights=zipf, k=1)[0], "head"
        elif roll < 0.70:
            q, kind = tail(), "tail"
        elif roll < 0.80:
            q, kind = " ".join(_typo(rng, w) for w in tail().split()), "typo"
        elif roll < 0.88:
            full = rng.choice(head + [tail()])
            q, kind = full[: rng.randint(2, max(2, len(full) - 1))], "prefix"
        else:
            q, kind = rng.choice(head + [tail()]), "filter"
        filters = Filters()
        sort = Sort.relevance
        if kind == "filter":
            choice = rng.random()
            if choice < 0.35:
                filters = Filters(size=[rng.choice(["S", "M", "L", "40", "41"])])
            elif choice < 0.6:
                filters = Filters(colour=[rng.choice(colours)])
            elif choice < 0.8:
                filters = Filters(price_min=float(rng.choice([0, 20, 50])), price_max=float(rng.choice([100, 150, 300])))
            else:
                filters = Filters(brand=[rng.choice(brands)], in_stock=True)
            if rng.random() < 0.3:
                sort = rng.choice([Sort.price_asc, Sort.price_desc, Sort.newest])
        text = q if kind == "prefix" else q + " "
        mix.append(MixedQuery(SearchRequest(q=text, filters=filters, sort=sort, limit=20), kind))
    return mix
