"""How much to trust meaning over words, decided per query from what is known at query time.

Convex fusion mixes min-max normalised BM25 and cosine as (1 - w) x bm25 + w x cosine. One w for
every query is a compromise: "1/2 in. copper elbow" is answered by its rare words and numbers,
"something warm for winter walks" by meaning (its words match products only weakly, here and
there in descriptions and attributes). This module computes a few query-level signals once both
retrievers have run — how strongly and how many products match the words, how rare the words
are, whether there are numbers, whether some word matches nothing, how far the two retrievers
agree — and a small logistic model turns them into the query's w:

    w = w_min + (w_max - w_min) x sigmoid(bias + sum_i coef_i x (signal_i - mean_i) / scale_i)

A linear model on purpose: its few coefficients are readable (`explain` shows w and each
signal's push), it cannot memorise one dataset's queries, and it falls back to the configured
constant w when the model file is missing. It is fitted by `benchmarks/train_fusion_weight.py`
to maximise nDCG@10 of the whole pipeline's order on the shared datasets, cross-validated by
query and checked on each dataset left out (benchmarks/README.md).

Off by default (`ranking.adaptive_fusion`): measured so, it does not beat the constant weight
out of sample — which side to trust turned out to depend more on the catalog than on the
query, and the same signal (e.g. the retrievers disagreeing) points opposite ways on
CrowdFlower and on the generated attribute queries.
"""

from __future__ import annotations

import json
import math
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import structlog

from search.pipeline import SearchContext

log = structlog.get_logger("vitrine.fusion_weight")

MODEL_FILE = Path(__file__).parent.parent / "data" / "fusion-weight.json"
LEXICAL_FIELDS = ("title", "categories", "brand", "attributes", "description")

# The model's inputs, in order. Every value is comparable across catalogs of different sizes
# (shares, idf over log N, logs of counts), since the model is used on catalogs it never saw.
SIGNALS = (
    "terms",  # words in the query plan
    "numeric",  # a word with a digit ("1/2", "60w", "3x5"): spec-like, answered by words
    "rarest_idf",  # idf of the rarest word over log(N): 1 = in one product, 0 = in all
    "commonest_idf",  # the same for the commonest word
    "unmatched",  # share of the words no product contains (in any spelling the plan allows)
    "full_matches",  # log(1 + result-set products containing every word)
    "best_coverage",  # largest share of the words one product contains
    "top_coverage",  # mean share of the words in the 10 best by BM25
    "bm25_gap",  # 1 - 10th best BM25 / best: one clear lexical winner or a flat field
    "best_cosine",  # how close the best product is in meaning
    "cosine_gap",  # best cosine - 10th best
    "agreement",  # overlap of the 10 best by BM25 and the 10 best by cosine
)


def _top(values: np.ndarray, mask: np.ndarray, k: int) -> np.ndarray:
    idx = np.flatnonzero(mask)
    if len(idx) > k:
        idx = idx[np.argpartition(-values[idx], k - 1)[:k]]
    return idx[np.argsort(-values[idx], kind="stable")]


def word_idfs(ctx: SearchContext) -> list[float]:
    """Per query word, log(N / df) over log(N), df of its most common alternative in its most
    common field (the word as the plan lets it match: a typo correction or synonym counts)."""
    searcher = ctx.snapshot.searcher
    total = max(2, searcher.num_docs)
    out = []
    for term in ctx.plan.terms:
        df = 0
        for alt in term.alternatives:
            for name in LEXICAL_FIELDS:
                df = max(df, searcher.doc_freq(name, alt.stem))
        out.append(math.log((total + 1) / (df + 1)) / math.log(total + 1) if df else 1.0)
    return out


def query_signals(ctx: SearchContext) -> np.ndarray:
    """SIGNALS for the query in `ctx`, over the result set as the fuse stage receives it."""
    c = ctx.candidates
    terms = ctx.plan.terms
    members = c.member
    lexical = members & (c.bm25 > 0)
    cosine = np.nan_to_num(c.cosine, nan=0.0)
    semantic = members & ~np.isnan(c.cosine)
    by_bm25 = _top(c.bm25, lexical, 10)
    by_cosine = _top(cosine, semantic, 10)
    df_zero = [not any(ctx.snapshot.searcher.doc_freq(f, a.stem) for a in t.alternatives for f in LEXICAL_FIELDS) for t in terms]
    idfs = word_idfs(ctx)
    best_bm25 = c.bm25[by_bm25[0]] if len(by_bm25) else 0.0
    values = [
        float(len(terms)),
        float(any(any(ch.isdigit() for ch in t.word) for t in terms)),
        max(idfs) if idfs else 0.0,
        min(idfs) if idfs else 0.0,
        float(np.mean(df_zero)) if terms else 1.0,
        math.log1p(int((c.full_match & members).sum())),
        float(c.coverage[members].max()) if members.any() else 0.0,
        float(c.coverage[by_bm25].mean()) if len(by_bm25) else 0.0,
        1.0 - c.bm25[by_bm25[-1]] / best_bm25 if best_bm25 > 0 else 0.0,
        float(cosine[by_cosine[0]]) if len(by_cosine) else 0.0,
        float(cosine[by_cosine[0]] - cosine[by_cosine[-1]]) if len(by_cosine) else 0.0,
        len(set(by_bm25.tolist()) & set(by_cosine.tolist())) / 10.0,
    ]
    return np.array(values, dtype=np.float64)


@dataclass(frozen=True)
class FusionWeightModel:
    """w = low + (high - low) x sigmoid(bias + coef . standardised signals)."""

    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    bias: float
    low: float = 0.0
    high: float = 1.0

    def pushes(self, signals: np.ndarray) -> np.ndarray:
        """Each signal's push on the logit (positive: towards meaning)."""
        return self.coef * (signals - self.mean) / self.scale

    def weight(self, signals: np.ndarray) -> float:
        logit = self.bias + float(self.pushes(signals).sum())
        return self.low + (self.high - self.low) / (1.0 + math.exp(-max(-30.0, min(30.0, logit))))

    def to_json(self) -> dict:
        return {
            "signals": list(SIGNALS), "mean": self.mean.tolist(), "scale": self.scale.tolist(),
            "coef": self.coef.tolist(), "bias": self.bias, "low": self.low, "high": self.high,
        }

    @classmethod
    def from_json(cls, data: dict) -> FusionWeightModel:
        if tuple(data["signals"]) != SIGNALS:
            raise ValueError(f"model signals {data['signals']} differ from this code's {list(SIGNALS)}: refit it")
        return cls(
            np.array(data["mean"], dtype=np.float64), np.array(data["scale"], dtype=np.float64),
            np.array(data["coef"], dtype=np.float64), float(data["bias"]), float(data["low"]), float(data["high"]),
        )


_models: dict[Path, FusionWeightModel | None] = {}
_lock = threading.Lock()


def load_model(path: Path | None) -> FusionWeightModel | None:
    """The model at `path` (the packaged one when None), read once; None when missing or stale
    (logged once), so fusion falls back to the configured constant weight."""
    path = Path(path) if path is not None else MODEL_FILE
    with _lock:
        if path not in _models:
            try:
                _models[path] = FusionWeightModel.from_json(json.loads(path.read_text(encoding="utf-8")))
            except Exception as exc:  # a missing or stale model must not take search down
                log.warning("fusion weight model unavailable; using ranking.semantic_weight", path=str(path), error=str(exc))
                _models[path] = None
        return _models[path]
