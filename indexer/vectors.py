"""The vector side of the index: faiss over L2-normalised embeddings (inner product = cosine).

Exact search (IndexFlatIP) below a size threshold, where it is both fast and perfect; HNSW above,
with its parameters recorded in the manifest. The faiss id of a vector is the product ordinal,
so no id map is needed: ordinals are allocated in increasing order and every new ordinal gets
its vector appended (superseded ordinals are tombstoned by the reader).
"""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np

from indexer.config import IndexConfig
from indexer.format import VectorIndexInfo


def build_vector_index(vectors: np.ndarray, config: IndexConfig) -> tuple[faiss.Index, VectorIndexInfo]:
    n, dimension = vectors.shape
    index: faiss.Index
    if n >= config.hnsw_threshold:
        index = faiss.IndexHNSWFlat(dimension, config.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = config.hnsw_ef_construction
        index.hnsw.efSearch = config.hnsw_ef_search
        info = VectorIndexInfo(
            kind="hnsw",
            params={
                "m": config.hnsw_m,
                "ef_construction": config.hnsw_ef_construction,
                "ef_search": config.hnsw_ef_search,
            },
        )
    else:
        index = faiss.IndexFlatIP(dimension)
        info = VectorIndexInfo(kind="flat")
    if n:
        index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return index, info


def save_vector_index(index: faiss.Index, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    faiss.write_index(index, str(tmp))
    tmp.replace(path)


def load_vector_index(path: Path, ef_search: int | None = None) -> faiss.Index:
    index = faiss.read_index(str(path))
    if ef_search is not None and isinstance(index, faiss.IndexHNSWFlat):
        index.hnsw.efSearch = ef_search
    return index
