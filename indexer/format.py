"""The on-disk index layout and its format version: the one place both are defined.

    INDEX_DIR/
      CURRENT                 name of the published version (replaced atomically)
      embeddings.sqlite       embedding cache shared by all versions (text hash -> vector)
      versions/<version>/
        manifest.json         format version, model, counts, checksum, build time
        tantivy/              BM25 index over the weighted text fields
        vectors.faiss         vectors of products (faiss id = product ordinal)
        store.sqlite          products, variants with stock/price, vector deltas, change log

A reader checks `manifest.format_version` against SUPPORTED_FORMAT_VERSIONS before it opens
anything else, and refuses an index it cannot read with a message saying what to do.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, Field

# Bump when the layout or any file's content changes incompatibly; keep a frozen fixture of the
# previous version in tests/fixtures/ so the refusal path stays tested.
# 2: compounds such as "t-shirt" are indexed joined ("tshirt"; indexer.text.join_compounds).
# 3: filter fields in the text index (brand, category, colour, sizes in stock, stock, effective
#    price, creation time) so retrieval filters, counts and sorts inside tantivy (search.exact).
#    Also: numbers and units are indexed in one spelling ("1/2 in." -> "0p5in"; indexer.normalize).
INDEX_FORMAT_VERSION = 3
SUPPORTED_FORMAT_VERSIONS = frozenset({3})

CURRENT_FILE = "CURRENT"
VERSIONS_DIR = "versions"
MANIFEST_FILE = "manifest.json"
TANTIVY_DIR = "tantivy"
VECTORS_FILE = "vectors.faiss"
STORE_FILE = "store.sqlite"
EMBEDDING_CACHE_FILE = "embeddings.sqlite"


class UnsupportedIndexFormat(RuntimeError):
    pass


class IndexNotFound(FileNotFoundError):
    pass


class VectorIndexInfo(BaseModel):
    kind: str  # "flat" or "hnsw"
    metric: str = "inner_product"
    params: dict[str, int] = Field(default_factory=dict)


class Manifest(BaseModel):
    format_version: int
    version: str
    model: str
    backend: str
    dimension: int
    products: int
    variants: int
    catalog_checksum: str
    catalog_source: str | None = None
    built_at: datetime
    build_seconds: float
    embedded: int = 0  # passages encoded by this build
    embedding_cache_hits: int = 0
    vector_index: VectorIndexInfo
    rejected_rows: int = 0


def versions_dir(index_dir: Path) -> Path:
    return index_dir / VERSIONS_DIR


def new_version_name() -> str:
    # Sortable by time; the pid keeps two builds started in the same second apart.
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ") + f"-{os.getpid()}"


def current_version_dir(index_dir: Path) -> Path:
    """The published version's directory; raises IndexNotFound with advice when none exists."""
    pointer = index_dir / CURRENT_FILE
    if not pointer.is_file():
        raise IndexNotFound(
            f"no published index in {index_dir}: build one with "
            f"`vitrine index build --catalog CATALOG --index-dir {index_dir}`"
        )
    name = pointer.read_text(encoding="utf-8").strip()
    path = versions_dir(index_dir) / name
    if not path.is_dir():
        raise IndexNotFound(f"{pointer} names version {name!r}, which is missing; rebuild the index")
    return path


def publish(index_dir: Path, version_dir: Path) -> None:
    """Point CURRENT at a fully written version. os.replace is atomic on POSIX."""
    tmp = index_dir / f".{CURRENT_FILE}.{os.getpid()}.tmp"
    tmp.write_text(version_dir.name + "\n", encoding="utf-8")
    with tmp.open("rb") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, index_dir / CURRENT_FILE)


def write_manifest(version_dir: Path, manifest: Manifest) -> None:
    tmp = version_dir / (MANIFEST_FILE + ".tmp")
    tmp.write_text(manifest.model_dump_json(indent=2), encoding="utf-8")
    os.replace(tmp, version_dir / MANIFEST_FILE)


def read_manifest(version_dir: Path) -> Manifest:
    """Read and version-check a manifest; the check comes before any other file is opened."""
    path = version_dir / MANIFEST_FILE
    if not path.is_file():
        raise IndexNotFound(f"{path} is missing: the index version is incomplete; rebuild it")
    data = json.loads(path.read_text(encoding="utf-8"))
    found = data.get("format_version")
    if found not in SUPPORTED_FORMAT_VERSIONS:
        supported = ", ".join(str(v) for v in sorted(SUPPORTED_FORMAT_VERSIONS))
        raise UnsupportedIndexFormat(
            f"index at {version_dir} has format version {found}, but this Vitrine reads "
            f"format version(s) {supported}. Rebuild it with this version: "
            "`vitrine index build --catalog CATALOG --index-dir INDEX_DIR`"
        )
    return Manifest.model_validate(data)
