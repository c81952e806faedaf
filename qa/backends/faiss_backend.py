"""FAISS inner-product backends: exact (`flat`) by default, `hnsw` for large corpora."""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np

from qa.backends.base import VectorBackend

HNSW_NEIGHBORS = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 64


def _as_matrix(vectors: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(vectors, dtype=np.float32)


def _as_ids(ids: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(ids, dtype=np.int64)


class FaissBackend(VectorBackend):
    """An `IndexIDMap2` over a flat or HNSW inner-product index.

    HNSW graphs cannot drop nodes, so deleting from `hnsw` rebuilds the graph from the stored
    vectors; fine for occasional deletes, which is how documents are replaced.
    """

    def __init__(self, dimension: int, kind: str = "flat", index: faiss.Index | None = None) -> None:
        if kind not in ("flat", "hnsw"):
            raise ValueError(f"unknown vector index kind {kind!r} (expected 'flat' or 'hnsw')")
        self.kind = kind
        self.dimension = dimension
        self._index = index if index is not None else self._empty()

    def _empty(self) -> faiss.Index:
        if self.kind == "flat":
            inner = faiss.IndexFlatIP(self.dimension)
        else:
            inner = faiss.IndexHNSWFlat(self.dimension, HNSW_NEIGHBORS, faiss.METRIC_INNER_PRODUCT)
            inner.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
            inner.hnsw.efSearch = HNSW_EF_SEARCH
        return faiss.IndexIDMap2(inner)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids):
            self._index.add_with_ids(_as_matrix(vectors), _as_ids(ids))

    def delete(self, ids: np.ndarray) -> None:
        ids = _as_ids(ids)
        if not len(ids) or not len(self):
            return
        if self.kind == "flat":
            self._index.remove_ids(faiss.IDSelectorBatch(ids))
            return
        kept_ids = faiss.vector_to_array(self._index.id_map)
        keep = ~np.isin(kept_ids, ids)
        vectors = self._index.index.reconstruct_n(0, self._index.ntotal)[keep]
        self._index = self._empty()
        self.add(kept_ids[keep], vectors)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        queries = _as_matrix(np.atleast_2d(queries))
        if not len(self):
            return (
                np.zeros((len(queries), 0), dtype=np.float32),
                np.zeros((len(queries), 0), dtype=np.int64),
            )
        scores, ids = self._index.search(queries, min(k, len(self)))
        return scores, ids

    def save(self, path: Path) -> None:
        faiss.write_index(self._index, str(path))

    @classmethod
    def load(cls, path: Path, dimension: int) -> FaissBackend:
        index = faiss.read_index(str(path))
        if index.d != dimension:
            raise ValueError(f"{path} holds {index.d}-dimensional vectors, expected {dimension}")
        inner = faiss.downcast_index(index.index)
        kind = "hnsw" if isinstance(inner, faiss.IndexHNSW) else "flat"
        if kind == "hnsw":
            inner.hnsw.efSearch = HNSW_EF_SEARCH
        return cls(dimension, kind, index)

    def copy(self) -> FaissBackend:
        return FaissBackend(self.dimension, self.kind, faiss.clone_index(self._index))

    def __len__(self) -> int:
        return int(self._index.ntotal)
