"""Per-query fusion weight (search/stages/fusion_weight.py, used by the `fuse` stage).

Properties it guarantees:
1. The signals are finite and in their documented ranges; a word with a digit is numeric, a
   made-up word counts as unmatched.
2. On (`adaptive_fusion = true`), in hybrid mode with the packaged model, the fuse stage uses
   the model's weight for this query: the debug view's signals and pushes reproduce it, and it
   lies within the model's bounds; it is what each candidate's `semantic.weight` explains.
3. Off (the default), with rrf, or without a readable model file, the weight is the configured
   `semantic_weight`; bm25 and vector modes ignore the model.

The demo shop's "something warm for winter walks" (no product names any of its words) is not
this model's case: the fuse stage lets meaning decide such queries whatever the weight
(ranking.unnamed_semantic_weight), tested in tests/test_ranking_rules.py on a small catalog
(benchmarks/README.md, "Words that name nothing").
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from search.models import Mode
from search.stages.fusion_weight import SIGNALS, load_model, query_signals
from tests.stages import engine_with, request, run_alone


def _signals(engine, q: str) -> dict[str, float]:
    ctx = engine.context_before("fuse", request(q))
    return dict(zip(SIGNALS, query_signals(ctx).tolist(), strict=True))


def _weight(ctx) -> float:
    return float(ctx.candidates.details["semantic"]["weight"][0])


@pytest.mark.parametrize("q", ["denim jacket", "black dress", "coffee mug 12oz", "zzqx blorf"])
def test_signals_are_finite_and_within_their_ranges(engine, q) -> None:
    s = _signals(engine, q)
    assert all(math.isfinite(v) for v in s.values())
    for share in ("numeric", "rarest_idf", "commonest_idf", "unmatched", "best_coverage", "top_coverage", "bm25_gap", "agreement"):
        assert 0.0 <= s[share] <= 1.0, share
    assert s["commonest_idf"] <= s["rarest_idf"]


def test_a_word_with_a_digit_is_numeric_and_a_made_up_word_is_unmatched(engine) -> None:
    assert _signals(engine, "mug 12oz")["numeric"] == 1.0
    assert _signals(engine, "black dress")["numeric"] == 0.0
    assert _signals(engine, "black zzqxblorf")["unmatched"] == pytest.approx(0.5)
    assert _signals(engine, "black dress")["unmatched"] == 0.0


@pytest.fixture(scope="module")
def adaptive(index_dir, embedder):
    with engine_with(index_dir, embedder, ranking={"adaptive_fusion": True}) as engine:
        yield engine


@pytest.mark.parametrize("q", ["denim jacket", "black dress", "warm wool jumper"])
def test_hybrid_uses_the_models_weight_and_explains_it(adaptive, q) -> None:
    model = load_model(None)
    assert model is not None, "the packaged fusion weight model must load"
    ctx, _ = run_alone(adaptive, "fuse", request(q))
    fusion = ctx.notes["fusion"]
    signals = np.array([fusion["signals"][n] for n in SIGNALS])
    w = _weight(ctx)
    assert w == pytest.approx(fusion["semantic_weight"], abs=1e-3)
    assert w == pytest.approx(model.weight(query_signals(ctx)))
    logit = model.bias + sum(fusion["pushes"].values())
    assert w == pytest.approx(model.low + (model.high - model.low) / (1 + math.exp(-logit)), abs=5e-3)
    assert model.low <= w <= model.high
    assert np.allclose(signals, query_signals(ctx), atol=1e-3)


def test_words_no_product_names_take_meaning_over_the_models_weight(adaptive) -> None:
    # No product of the sample index names "warm", "winter" or "walks": the fuse stage's rule
    # (ranking.unnamed_semantic_weight) raises the model's weight, and says so.
    model = load_model(None)
    ctx, _ = run_alone(adaptive, "fuse", request("something warm for winter walks"))
    fusion = ctx.notes["fusion"]
    assert _weight(ctx) == pytest.approx(adaptive.settings.ranking.unnamed_semantic_weight)
    assert _weight(ctx) >= model.weight(query_signals(ctx))
    assert "reason" in fusion and set(fusion["signals"]) == set(SIGNALS)


def test_without_adaptive_fusion_rrf_or_a_model_the_constant_weight_is_used(index_dir, embedder, tmp_path: Path) -> None:
    missing = tmp_path / "no-model.json"
    for ranking in ({}, {"adaptive_fusion": True, "fusion_weight_model": missing}):
        with engine_with(index_dir, embedder, ranking=ranking) as constant:
            ctx, _ = run_alone(constant, "fuse", request("denim jacket"))
            assert _weight(ctx) == constant.settings.ranking.semantic_weight
            assert "fusion" not in ctx.notes
    with engine_with(index_dir, embedder, ranking={"fusion": "rrf", "adaptive_fusion": True}) as rrf:
        ctx, _ = run_alone(rrf, "fuse", request("denim jacket"))
        assert _weight(ctx) == rrf.settings.ranking.semantic_weight


def test_single_modes_ignore_the_model(adaptive) -> None:
    for mode, w in ((Mode.bm25, 0.0), (Mode.vector, 1.0)):
        ctx, _ = run_alone(adaptive, "fuse", request("denim jacket", mode=mode))
        assert _weight(ctx) == w
        assert "fusion" not in ctx.notes


# ---- 4. the demo shop ---------------------------------------------------------------------------

WARM_WINTER = ("boot", "coat", "jacket", "parka", "puffer", "fleece", "jumper", "sweater", "hoodie", "thermal", "gloves",
               "scarf", "beanie", "hat", "cardigan", "sweatshirt", "knit")
