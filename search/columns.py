"""Per-product attribute columns for filtering and facet counting without touching documents.

Values are matched case-insensitively and shown as first seen. Multi-valued attributes (category
path, colours, available sizes) are dense boolean matrices (products x values): filters become
one `any` over a few columns and a facet count one column sum over the candidates. Single-valued
ones (brand) are integer codes counted with bincount. Both grow as products and values arrive.
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


class MultiValueColumn:
    def __init__(self, capacity: int) -> None:
        self.values = _Values()
        self.matrix = np.zeros((capacity, 8), dtype=bool)

    def ensure_capacity(self, n: int) -> None:
        if n > self.matrix.shape[0]:
            grow = max(n, int(self.matrix.shape[0] * 1.5) + 16)
            self.matrix = np.pad(self.matrix, ((0, grow - self.matrix.shape[0]), (0, 0)))

    def set(self, ord_: int, values: Sequence[str]) -> None:
        self.ensure_capacity(ord_ + 1)
        self.matrix[ord_, :] = False
        for value in values:
            if not value or not value.strip():
                continue
            code = self.values.intern(value)
            if code >= self.matrix.shape[1]:
                extra = max(code + 1, self.matrix.shape[1] * 2) - self.matrix.shape[1]
                self.matrix = np.pad(self.matrix, ((0, 0), (0, extra)))
            self.matrix[ord_, code] = True

    def mask(self, wanted: Sequence[str], n: int) -> np.ndarray:
        codes = self.values.codes_of(wanted)
        if not codes:
            return np.zeros(n, dtype=bool)
        return np.asarray(self.matrix[:n, codes].any(axis=1))

    def counts(self, ords: np.ndarray) -> dict[str, int]:
        if len(ords) == 0:
            return {}
        sums = self.matrix[ords].sum(axis=0)
        nonzero = np.flatnonzero(sums)
        order = nonzero[np.argsort(-sums[nonzero], kind="stable")]
        return {self.values.display[c]: int(sums[c]) for c in order}


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

    def counts(self, ords: np.ndarray) -> dict[str, int]:
        codes = self.codes[ords]
        codes = codes[codes >= 0]
        if len(codes) == 0:
            return {}
        sums = np.bincount(codes, minlength=len(self.values.display))
        nonzero = np.flatnonzero(sums)
        order = nonzero[np.argsort(-sums[nonzero], kind="stable")]
        return {self.values.display[c]: int(sums[c]) for c in order}


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
