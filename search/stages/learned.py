"""Learned fusion: a LambdaMART model re-orders the head of the hybrid result set per query.

Convex fusion weighs BM25 and meaning the same way for every query, but which retriever to
trust depends on the query: a spec-like "1/2 in. copper elbow" is answered by its rare words,
"something warm for winter walks" by meaning. This stage sees, per query, what is known at
query time — how many products match every word and how strongly, how rare the words are,
whether the query has numbers, how far the two retrievers agree — beside each product's
signals (per-field BM25, share of the query's words in any field and in the title, title
word pairs, cosine), and a gradient-boosted ranking model (LightGBM LambdaMART, trained by
`benchmarks/train_fusion.py` with query-level cross-validation and a leave-one-dataset-out
check) decides the order of the `ranking.learned_top` best products of the convex fusion.

Contract: it only re-orders. The top products keep the band of scores the earlier stages gave
them (their best and worst), so products below the head, personalization and stock behave as
with convex fusion; the contribution is the model's adjustment over the earlier stages, and
`explain` shows the model's own score. Off (`ranking.learned_fusion = false`), outside hybrid
mode or without a model file, the stage does nothing: convex fusion is the fallback.
"""

from __future__ import annotations

import math
import threading
from pathlib import Path

import numpy as np
import structlog
import tantivy

from search.models import Mode
from search.pipeline import SearchContext, StageKind

log = structlog.get_logger("vitrine.learned")

MODEL_FILE = Path(__file__).parent.parent / "data" / "fusion-lambdamart.txt"

# Query-level features first, then per-product ones. The order is the model's input order:
# changing it means retraining (benchmarks/train_fusion.py checks the names it was trained on).
QUERY_FEATURES = (
    "q_terms",  # words in the query plan
    "q_log_full_total",  # log(1 + products containing every word, whole catalog)
    "q_full_share",  # share of the head containing every word
    "q_max_idf",  # rarest word's idf (over the whole catalog, any field)
    "q_min_idf",  # commonest word's idf
    "q_numeric",  # the query has a word with a digit ("1/2", "60w", "3x5")
    "q_max_cosine",  # how close the best product is in meaning
    "q_agreement",  # overlap of the top 10 by BM25 and the top 10 by cosine
    "q_corrected",  # a word only matched through a typo correction or a split
)
PRODUCT_FEATURES = (
    "bm25_norm",  # BM25 min-max normalised over the result set (as in convex fusion)
    "bm25_rel",  # BM25 over the head's best
    "bm25_title",  # per-field BM25, over the head's best in that field
    "bm25_categories",
    "bm25_brand",
    "bm25_attributes",
    "bm25_description",
    "cosine",  # raw embedding similarity
    "cosine_gap",  # best cosine in the head minus this one
    "full_match",
    "coverage",  # share of the query's words in any field
    "title_coverage",  # share of the query's words in the title
    "title_pairs",  # share of adjacent query-word pairs side by side in the title
    "semantic_hit",  # among the semantic retriever's nearest neighbours
    "log_rank_bm25",
    "log_rank_cosine",
    "log_rank_fused",  # position given by the earlier stages
)
FEATURES = QUERY_FEATURES + PRODUCT_FEATURES
BM25_FIELDS = ("title", "categories", "brand", "attributes", "description")

_SHOULD = tantivy.Occur.Should
_MUST = tantivy.Occur.Must


class FusionModel:
    """A trained LightGBM booster and the feature names it expects."""

    def __init__(self, path: Path) -> None:
        import lightgbm  # imported here: only needed when a model is in use

        self.path = path
        self.booster = lightgbm.Booster(model_file=str(path))
        names = tuple(self.booster.feature_name())
        if names != FEATURES:
            raise ValueError(f"{path} was trained on features {names}, this code computes {FEATURES}: retrain it")

    def predict(self, matrix: np.ndarray) -> np.ndarray:
        # One thread: requests are already concurrent, and a 100-row batch is too small to split.
        return np.asarray(self.booster.predict(matrix, num_threads=1), dtype=np.float64)


_models: dict[Path, FusionModel | None] = {}
_models_lock = threading.Lock()


def load_model(path: Path | None) -> FusionModel | None:
    """The model at `path` (the packaged one when None), loaded once; None if it is missing or
    unusable (logged once), so search falls back to convex fusion rather than failing."""
    path = Path(path) if path is not None else MODEL_FILE
    with _models_lock:
        if path not in _models:
            try:
                _models[path] = FusionModel(path)
            except Exception as exc:  # a missing or stale model must not take search down
                log.warning("learned fusion model unavailable; using convex fusion", path=str(path), error=str(exc))
                _models[path] = None
        return _models[path]


def head(ctx: SearchContext, top: int) -> np.ndarray:
    """Candidate positions of the `top` best result-set members by the score so far."""
    c = ctx.candidates
    members = np.flatnonzero(c.member)
    if len(members) <= top:
        return members[np.argsort(-c.score()[members], kind="stable")]
    score = c.score()[members]
    best = np.argpartition(-score, top - 1)[:top]
    best = best[np.argsort(-score[best], kind="stable")]
    return members[best]


def feature_matrix(ctx: SearchContext, rows: np.ndarray) -> np.ndarray:
    """FEATURES for the candidates at positions `rows` (the head, best first)."""
    c = ctx.candidates
    n = len(rows)
    members = c.member
    bm25 = c.bm25[rows]
    cosine = np.nan_to_num(c.cosine[rows], nan=0.0)
    has_bm25 = c.bm25 > 0
    # Normalisations over the whole result set, as convex fusion does.
    lexical_members = members & has_bm25
    if lexical_members.any():
        low, high = c.bm25[lexical_members].min(), c.bm25[lexical_members].max()
        bm25_norm = np.clip((bm25 - low) / (high - low), 0, 1) if high > low else (bm25 > 0).astype(float)
    else:
        bm25_norm = np.zeros(n)
    bm25_norm = bm25_norm * (bm25 > 0)
    best_bm25 = bm25.max() if n else 0.0
    per_field = field_bm25(ctx, c.ords[rows])
    title_words = words_in_field(ctx, c.ords[rows], "title")
    rank_bm25 = _ranks(bm25)
    rank_cosine = _ranks(cosine)
    by_bm25 = set(np.argsort(-bm25, kind="stable")[:10][bm25[np.argsort(-bm25, kind="stable")[:10]] > 0].tolist())
    by_cosine = set(np.argsort(-cosine, kind="stable")[:10].tolist())
    idfs = term_idfs(ctx)
    q = [
        len(ctx.plan.terms),
        math.log1p(ctx.lexical_total),
        float(c.full_match[rows].mean()) if n else 0.0,
        max(idfs) if idfs else 0.0,
        min(idfs) if idfs else 0.0,
        float(any(any(ch.isdigit() for ch in t.word) for t in ctx.plan.terms)),
        float(cosine.max()) if n else 0.0,
        len(by_bm25 & by_cosine) / 10.0,
        float(any(not _indexed_exact(ctx, t) for t in ctx.plan.terms)),
    ]
    columns = [np.full(n, value, dtype=np.float64) for value in q]
    columns += [
        bm25_norm,
        bm25 / best_bm25 if best_bm25 > 0 else np.zeros(n),
        *[per_field[name] for name in BM25_FIELDS],
        cosine,
        (cosine.max() - cosine) if n else cosine,
        c.full_match[rows].astype(float),
        c.coverage[rows],
        title_words,
        np.where(c.full_match[rows], c.proximity[rows], 0.0),
        c.semantic_hit[rows].astype(float),
        np.log1p(rank_bm25),
        np.log1p(rank_cosine),
        np.log1p(np.arange(n, dtype=np.float64)),
    ]
    return np.column_stack(columns) if n else np.zeros((0, len(FEATURES)))


def _ranks(values: np.ndarray) -> np.ndarray:
    out = np.empty(len(values))
    out[np.argsort(-values, kind="stable")] = np.arange(len(values))
    return out


def _among(schema: tantivy.Schema, ords: np.ndarray) -> tantivy.Query:
    """Only these products (a union of their ordinal terms), contributing no score."""
    union = tantivy.Query.boolean_query([(_SHOULD, tantivy.Query.term_query(schema, "ord", int(o))) for o in ords])
    return tantivy.Query.const_score_query(union, 0.0)


def _word_query(ctx: SearchContext, term, field_name: str) -> tantivy.Query:
    """One query word's alternatives (typo, synonym, completion, at their weights) in one field."""
    schema = ctx.snapshot.schema
    clauses = []
    for alt in term.alternatives:
        query = tantivy.Query.term_query(schema, field_name, alt.stem, index_option="freq")
        if alt.extra_stems:
            query = tantivy.Query.boolean_query(
                [(_MUST, query)]
                + [(_MUST, tantivy.Query.term_query(schema, field_name, s, index_option="freq")) for s in alt.extra_stems]
            )
        clauses.append((_SHOULD, tantivy.Query.boost_query(query, alt.weight)))
    return tantivy.Query.boolean_query(clauses)


def _search_among(ctx: SearchContext, ords: np.ndarray, query: tantivy.Query) -> np.ndarray:
    """The query's score for each of `ords` (0 where it does not match)."""
    searcher = ctx.snapshot.searcher
    restricted = tantivy.Query.boolean_query([(_MUST, _among(ctx.snapshot.schema, ords)), (_MUST, query)])
    hits = searcher.search(restricted, len(ords)).hits
    out = np.zeros(len(ords))
    position = {int(o): i for i, o in enumerate(ords)}
    for (score, _), o in zip(hits, searcher.fast_field_values("ord", [a for _, a in hits]), strict=True):
        at = position.get(int(o or 0))
        if at is not None:
            out[at] = score
    return out


def field_bm25(ctx: SearchContext, ords: np.ndarray) -> dict[str, np.ndarray]:
    """Per field, each product's BM25 for the query in that field alone, over the best of them
    (so that a catalog with long descriptions and one with none give comparable values)."""
    out: dict[str, np.ndarray] = {}
    terms = ctx.plan.terms
    for name in BM25_FIELDS:
        if not len(ords) or not terms:
            out[name] = np.zeros(len(ords))
            continue
        query = tantivy.Query.boolean_query([(_SHOULD, _word_query(ctx, t, name)) for t in terms])
        scores = _search_among(ctx, ords, query)
        best = scores.max()
        out[name] = scores / best if best > 0 else scores
    return out


def words_in_field(ctx: SearchContext, ords: np.ndarray, field_name: str) -> np.ndarray:
    """Share of the query's words (any alternative) each product has in one field: each word's
    clause scores a distinct power of two, so a product's score is the set of its words."""
    terms = ctx.plan.terms[:20]
    if not terms or not len(ords):
        return np.zeros(len(ords))
    scored = [(_SHOULD, tantivy.Query.const_score_query(_word_query(ctx, t, field_name), float(1 << i))) for i, t in enumerate(terms)]
    bits = _search_among(ctx, ords, tantivy.Query.boolean_query(scored))
    return np.array([int(round(b)).bit_count() for b in bits.tolist()], dtype=np.float64) / len(terms)


def term_idfs(ctx: SearchContext) -> list[float]:
    """Per query word, log(N / df) of its own form in the field where it is most common."""
    searcher = ctx.snapshot.searcher
    total = max(1, searcher.num_docs)
    out = []
    for term in ctx.plan.terms:
        alt = term.alternatives[0]
        df = max(searcher.doc_freq(name, alt.stem) for name in BM25_FIELDS)
        out.append(math.log((total + 1) / (df + 1)))
    return out


def _indexed_exact(ctx: SearchContext, term) -> bool:
    return any(a.kind in ("exact", "synonym") for a in term.alternatives) and any(
        ctx.snapshot.searcher.doc_freq(name, a.stem) > 0
        for a in term.alternatives if a.kind in ("exact", "synonym") for name in BM25_FIELDS
    )


class LearnedFusionStage:
    name = "learned"
    kind = StageKind.ranker
    browse = False

    def run(self, ctx: SearchContext) -> None:
        c = ctx.candidates
        ranking = ctx.settings.ranking
        if len(c) == 0 or not ranking.learned_fusion or ctx.request.mode != Mode.hybrid or not ctx.plan.terms:
            return
        model = load_model(ranking.learned_model)
        if model is None:
            return
        rows = head(ctx, ranking.learned_top)
        if len(rows) < 2:
            return
        predicted = model.predict(feature_matrix(ctx, rows))
        score = c.score()[rows]
        low, high = float(score.min()), float(score.max())
        spread = predicted.max() - predicted.min()
        share = (predicted - predicted.min()) / spread if spread > 0 else np.ones(len(rows))
        # The head keeps its band of scores; the model decides the order inside it.
        target = low + (high - low if high > low else 1.0) * share
        contribution = np.zeros(len(c))
        contribution[rows] = target - score
        model_score = np.full(len(c), np.nan)
        model_score[rows] = predicted
        c.add(self.name, contribution, model_score=model_score)
