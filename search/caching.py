"""Per-query caches of the engine: shoppers repeat queries (and type them letter by letter),
so what depends only on the query text and the index generation is kept.

Cached arrays are read-only: stages only read retrieved signals (the pipeline contract), so
each request starts its own result set over the same arrays.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable, Iterator, Mapping, Set
from dataclasses import dataclass
from typing import Any

import numpy as np

from search.pipeline import Candidates


class LRUCache:
    def __init__(self, size: int) -> None:
        self.size = size
        self._data: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Any:
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def put(self, key: Hashable, value: Any) -> None:
        if self.size <= 0:
            return
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.size:
                self._data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


class OrdScores(Mapping[int, float]):
    """A retriever's ordinal -> score output kept as two arrays (a fifth of a dict's memory).

    Read-only; a dict for lookups is built only if a stage asks for one.
    """

    __slots__ = ("ords", "scores", "_dict")

    def __init__(self, hits: Mapping[int, float]) -> None:
        self.ords = np.fromiter(hits.keys(), dtype=np.int64, count=len(hits))
        self.scores = np.fromiter(hits.values(), dtype=np.float64, count=len(hits))
        self._dict: dict[int, float] | None = None

    def _lookup(self) -> dict[int, float]:
        if self._dict is None:
            self._dict = dict(zip(self.ords.tolist(), self.scores.tolist(), strict=True))
        return self._dict

    def __getitem__(self, key: int) -> float:
        return self._lookup()[key]

    def __contains__(self, key: object) -> bool:
        return key in self._lookup()

    def __iter__(self) -> Iterator[int]:
        return iter(self.ords.tolist())

    def __len__(self) -> int:
        return len(self.ords)


class OrdSet(Set[int]):
    """A set of ordinals kept as an array; read-only, hashed only if a stage asks."""

    __slots__ = ("ords", "_set")

    def __init__(self, ords: Set[int]) -> None:
        self.ords = np.fromiter(ords, dtype=np.int64, count=len(ords))
        self._set: frozenset[int] | None = None

    def __contains__(self, key: object) -> bool:
        if self._set is None:
            self._set = frozenset(self.ords.tolist())
        return key in self._set

    def __iter__(self) -> Iterator[int]:
        return iter(self.ords.tolist())

    def __len__(self) -> int:
        return len(self.ords)


@dataclass(frozen=True)
class Retrieved:
    """What the retrievers found for one query text: cached, since shoppers repeat queries.

    `assembled` is the candidate set built from them (ordinals, BM25, full match, cosine,
    semantic hit) with read-only arrays: stages only read these signals (the pipeline
    contract), so each request starts its own result set over the same arrays.
    """

    lexical_hits: OrdScores
    lexical_full: OrdSet
    lexical_total: int
    semantic_hits: OrdScores
    query_vector: np.ndarray | None
    assembled: Candidates
    match: Any = None  # search.stages.exact.MatchSet: every product the words match, for exact counts




def read_only(c: Candidates) -> Candidates:
    for array in (c.ords, c.bm25, c.full_match, c.cosine, c.semantic_hit, c.proximity, c.coverage, c.word_places):
        array.flags.writeable = False
    return c
