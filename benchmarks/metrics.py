"""Ranking metrics, as pure functions of a ranked list of ids and graded judgements.

  nDCG@k  (Järvelin & Kekäläinen, "Cumulated gain-based evaluation of IR techniques", TOIS 2002)
          DCG = sum_{i=1..k} (2^grade_i - 1) / log2(i + 1); the ideal DCG sorts all judged
          grades of the query; unjudged results have grade 0.
  MRR     reciprocal rank of the first result with grade >= RELEVANT (0 when none is found).
  recall@k share of the query's products with grade >= RELEVANT found in the top k.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

RELEVANT = 1  # grade from which a result counts as relevant for MRR and recall


def dcg(grades: Sequence[float]) -> float:
    return sum((2**g - 1) / math.log2(i + 2) for i, g in enumerate(grades))


def ndcg_at_k(ranked: Sequence[str], qrels: Mapping[str, float], k: int = 10) -> float:
    ideal = dcg(sorted(qrels.values(), reverse=True)[:k])
    if ideal == 0:
        return 0.0
    return dcg([qrels.get(pid, 0) for pid in ranked[:k]]) / ideal


def reciprocal_rank(ranked: Sequence[str], qrels: Mapping[str, float]) -> float:
    for position, pid in enumerate(ranked, start=1):
        if qrels.get(pid, 0) >= RELEVANT:
            return 1.0 / position
    return 0.0


def recall_at_k(ranked: Sequence[str], qrels: Mapping[str, float], k: int = 100) -> float:
    relevant = {pid for pid, grade in qrels.items() if grade >= RELEVANT}
    if not relevant:
        return 0.0
    return len(relevant.intersection(ranked[:k])) / len(relevant)
