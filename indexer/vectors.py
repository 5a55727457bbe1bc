"""The vector side of the index: faiss over L2-normalised embeddings (inner product = cosine).

Exact search (IndexFlatIP) below a size threshold, where it is both fast and perfect; HNSW above,
with its parameters recorded in the manifest. The faiss id of a vector is the product ordinal,
so no id map is needed: ordinals are allocated in increasing order and every new ordinal gets
its vector appended (superseded ordinals are tombstoned by the reader).

A saved index file is never modified after its version is published (incremental updates keep
their vectors in the store), which is what lets a rebuild share the previous version's file.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import faiss
import numpy as np

from indexer.config import IndexConfig
from indexer.format import VectorIndexInfo


def vector_index_info(n: int, config: IndexConfig) -> VectorIndexInfo:
    """The kind and parameters of the index `build_vector_index` makes for n vectors."""
    if n >= config.hnsw_threshold:
        return VectorIndexInfo(
            kind="hnsw",
            params={
                "m": config.hnsw_m,
                "ef_construction": config.hnsw_ef_construction,
                "ef_search": config.hnsw_ef_search,
            },
        )
    return VectorIndexInfo(kind="flat")


def build_vector_index(vectors: np.ndarray, config: IndexConfig) -> tuple[faiss.Index, VectorIndexInfo]:
    n, dimension = vectors.shape
    info = vector_index_info(n, config)
    index: faiss.Index
    if info.kind == "hnsw":
        index = faiss.IndexHNSWFlat(dimension, config.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = config.hnsw_ef_construction
        index.hnsw.efSearch = config.hnsw_ef_search
    else:
        index = faiss.IndexFlatIP(dimension)
    if n:
        index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return index, info


def save_vector_index(index: faiss.Index, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    faiss.write_index(index, str(tmp))
    tmp.replace(path)


def holds_vectors(path: Path, vectors: np.ndarray) -> bool:
    """Whether the saved index at `path` holds exactly `vectors`, with faiss id = row."""
    try:
        index = faiss.read_index(str(path))
    except RuntimeError:  # unreadable: it cannot be shared, the caller builds a new one
        return False
    if index.ntotal != len(vectors) or index.d != vectors.shape[1]:
        return False
    return len(vectors) == 0 or np.array_equal(index.reconstruct_n(0, index.ntotal), vectors)


def share_vector_index(source: Path, target: Path) -> None:
    """Give `target` the content of a saved index: a hard link (instant, no extra disk), or a
    copy where links are not possible. Safe because saved index files are never rewritten."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def load_vector_index(path: Path, ef_search: int | None = None) -> faiss.Index:
    index = faiss.read_index(str(path))
    if ef_search is not None and isinstance(index, faiss.IndexHNSWFlat):
        index.hnsw.efSearch = ef_search
    return index
