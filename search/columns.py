"""Per-product attribute columns for filtering and facet counting without touching documents.

Values are matched case-insensitively and shown as first seen. Every value gets an integer code.
Multi-valued attributes (category path, colours, available sizes) keep each product's codes in
one row of a small padded matrix (products x most values any product has, -1 = none); a filter
is one `isin` over the candidates' rows and a facet count one `bincount` of them, so both cost
in proportion to the candidates, not the catalog. Single-valued ones (brand) are one code per
product. Both grow as products and values arrive.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np


class _Values:
    def __init__(self) -> None:
        self.display: list[str] = []
        self.code: dict[str, int] = {}

    def intern(self, value: str) -> int:
        key = value.strip().lower()
        code = self.code.get(key)
        if code is None:
            code = len(self.display)
            self.code[key] = code
            self.display.append(value.strip())
        return code

    def codes_of(self, wanted: Iterable[str]) -> list[int]:
        return [c for c in (self.code.get(v.strip().lower()) for v in wanted) if c is not None]

    def weight_lookup(self, weights: dict[str, float]) -> np.ndarray | None:
        """An array indexed by code + 1 (slot 0 = no value) holding each value's weight."""
        codes = [(self.code[value], weight) for value, weight in weights.items() if value in self.code]
        if not codes:
            return None
        lookup = np.zeros(len(self.display) + 1)
        for code, weight in codes:
            lookup[code + 1] = weight
        return lookup


def ranked_counts(sums: np.ndarray, display: list[str]) -> dict[str, int]:
    """Non-zero counts, most frequent first, ties in code order (first seen first)."""
    nonzero = np.flatnonzero(sums)
    order = nonzero[np.argsort(-sums[nonzero], kind="stable")]
    return {display[c]: int(sums[c]) for c in order}


class MultiValueColumn:
    def __init__(self, capacity: int) -> None:
        self.values = _Values()
        # Row = one product's value codes, ascending, padded with -1.
        self.codes = np.full((capacity, 4), -1, dtype=np.int32)

    def ensure_capacity(self, n: int) -> None:
        if n > self.codes.shape[0]:
            grow = max(n, int(self.codes.shape[0] * 1.5) + 16)
            self.codes = np.pad(self.codes, ((0, grow - self.codes.shape[0]), (0, 0)), constant_values=-1)

    def set(self, ord_: int, values: Sequence[str]) -> None:
        self.ensure_capacity(ord_ + 1)
        codes = sorted({self.values.intern(value) for value in values if value and value.strip()})
        width = self.codes.shape[1]
        if len(codes) > width:
            extra = max(len(codes), width * 2) - width
            self.codes = np.pad(self.codes, ((0, 0), (0, extra)), constant_values=-1)
        row = self.codes[ord_]
        row[:] = -1
        row[: len(codes)] = codes

    def _matches(self, rows: np.ndarray, codes: list[int]) -> np.ndarray:
        if len(codes) == 1:
            return np.asarray((rows == codes[0]).any(axis=1))
        return np.asarray(np.isin(rows, codes).any(axis=1))

    def mask(self, wanted: Sequence[str], n: int) -> np.ndarray:
        """Over the first n ordinals: has any of the wanted values."""
        codes = self.values.codes_of(wanted)
        if not codes:
            return np.zeros(n, dtype=bool)
        return self._matches(self.codes[:n], codes)

    def mask_at(self, wanted: Sequence[str], ords: np.ndarray) -> np.ndarray:
        """For the given ordinals: has any of the wanted values."""
        codes = self.values.codes_of(wanted)
        if not codes or len(ords) == 0:
            return np.zeros(len(ords), dtype=bool)
        return self._matches(self.codes[ords], codes)

    def best_at(self, weights: dict[str, float], ords: np.ndarray) -> np.ndarray:
        """For the given ordinals: the highest weight among each product's values (0 if none)."""
        lookup = self.values.weight_lookup(weights)
        if lookup is None or len(ords) == 0:
            return np.zeros(len(ords))
        return lookup[self.codes[ords] + 1].max(axis=1)

    def counts(self, ords: np.ndarray) -> dict[str, int]:
        if len(ords) == 0:
            return {}
        flat = self.codes[ords].ravel() + 1  # -1 (no value) lands in bin 0, dropped below
        sums = np.bincount(flat, minlength=len(self.values.display) + 1)[1:]
        return ranked_counts(sums, self.values.display)


class SingleValueColumn:
    def __init__(self, capacity: int) -> None:
        self.values = _Values()
        self.codes = np.full(capacity, -1, dtype=np.int32)

    def ensure_capacity(self, n: int) -> None:
        if n > self.codes.shape[0]:
            grow = max(n, int(self.codes.shape[0] * 1.5) + 16)
            self.codes = np.concatenate([self.codes, np.full(grow - self.codes.shape[0], -1, np.int32)])

    def set(self, ord_: int, value: str | None) -> None:
        self.ensure_capacity(ord_ + 1)
        self.codes[ord_] = self.values.intern(value) if value and value.strip() else -1

    def mask(self, wanted: Sequence[str], n: int) -> np.ndarray:
        codes = self.values.codes_of(wanted)
        return np.isin(self.codes[:n], codes) if codes else np.zeros(n, dtype=bool)

    def mask_at(self, wanted: Sequence[str], ords: np.ndarray) -> np.ndarray:
        codes = self.values.codes_of(wanted)
        return np.isin(self.codes[ords], codes) if codes else np.zeros(len(ords), dtype=bool)

    def best_at(self, weights: dict[str, float], ords: np.ndarray) -> np.ndarray:
        """For the given ordinals: the weight of each product's value (0 if none)."""
        lookup = self.values.weight_lookup(weights)
        if lookup is None or len(ords) == 0:
            return np.zeros(len(ords))
        return lookup[self.codes[ords] + 1]

    def counts(self, ords: np.ndarray) -> dict[str, int]:
        if len(ords) == 0:
            return {}
        flat = self.codes[ords] + 1
        sums = np.bincount(flat, minlength=len(self.values.display) + 1)[1:]
        return ranked_counts(sums, self.values.display)
# Price facet buckets: upper bounds of the ranges shown to shoppers.
PRICE_EDGES = (10.0, 25.0, 50.0, 100.0, 200.0, 500.0, 1000.0)


def price_bucket_labels() -> list[str]:
    labels = []
    low = 0.0
    for high in PRICE_EDGES:
        labels.append(f"{low:g}-{high:g}")
        low = high
    labels.append(f"{low:g}+")
    return labels


_PRICE_LABELS = price_bucket_labels()


def price_counts(prices: np.ndarray) -> dict[str, int]:
    prices = prices[~np.isnan(prices)]
    if len(prices) == 0:
        return {}
    buckets = np.searchsorted(np.asarray(PRICE_EDGES), prices, side="right")
    sums = np.bincount(buckets, minlength=len(_PRICE_LABELS))
    return {label: int(count) for label, count in zip(_PRICE_LABELS, sums, strict=True) if count}
