"""FAISS inner-product backends: exact (`flat`), graph (`hnsw`) and inverted lists (`ivf`).

Which one an index uses follows a `VectorIndexPolicy`: by default (`auto`) exact search while
the corpus is small enough for it to cost a couple of milliseconds, HNSW beyond that. HNSW
rather than IVF because real questions are not distributed like the passages they look for, and
IVF, picking the lists nearest the question first, finds fewer of their true neighbours; IVF
stays available on request for write-heavy corpora, as it builds several times faster.

The approximate indexes store vectors as float16. A question's search reads thousands of stored
vectors, so it is bound by memory traffic: half the bytes make it faster, and halve the memory,
while the rounding moves no measured recall figure. Exact (`flat`) search keeps float32: it is
the reference. The figures behind these choices and the constants below, with the commands that
reproduce them: docs/benchmarks.md, "Figures behind the code's constants".

An HNSW graph cannot drop nodes, so a delete leaves a tombstone: the row's id becomes negative
and searches skip negative ids. A write that finds a quarter of the rows dead rebuilds the graph.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from qa import settings

POLICIES = settings.VECTOR_INDEX_POLICIES
KINDS = tuple(kind for kind in POLICIES if kind != "auto")

AUTO_SWITCH_AT = settings.AUTO_SWITCH_AT  # where exact search stops being cheap (see qa/settings.py)

HNSW_NEIGHBORS = 32
# Construction effort. A better graph finds more at the same search effort; the build stays small
# beside embedding those passages (figures: the docs section named in the module docstring).
HNSW_EF_CONSTRUCTION = 80
# Search effort at a million vectors, where it meets the recall target within the latency one. The
# effort that reaches the same recall shrinks with the corpus, and a fixed 1024 would visit nearly
# all of a small corpus, slower than exact search: it scales with sqrt(size).
HNSW_EF_SEARCH = 1024
_HNSW_EF_SEARCH_RANGE = (128, 2048)
_HNSW_DEAD_SHARE_REBUILD = 0.25
_LIVE_IDS = (0, 2**62)  # passage ids are positive; tombstones are negative
# Searches of fewer rows than this run on the calling thread alone. A question is one row:
# FAISS's OpenMP threads gain nothing on it and stay spinning afterwards, against the
# model's threads on the same two cores (the profile's figures: docs/benchmarks.md).
_PARALLEL_SEARCH_ROWS = 16
_SEARCH_THREADS = faiss.omp_get_max_threads()

# k-means wants dozens of points per list; FAISS warns below 39.
_IVF_POINTS_PER_LIST = 39
_IVF_TRAIN_POINTS_PER_LIST = 64
_IVF_TRAIN_ITERATIONS = 10
# ~4 sqrt(n) lists, a twelfth of them probed: more lists, each shorter, reached a higher recall in
# less time than sqrt(n) lists (docs/benchmarks.md).
_IVF_LISTS_PER_SQRT = 4
_IVF_PROBE_SHARE = 1 / 12
STORAGE = "float16"  # how the approximate indexes store vectors
_STORED_AS = faiss.ScalarQuantizer.QT_fp16
# A filtered HNSW search scores up to this many allowed vectors exactly (the same budget as
# AUTO_SWITCH_AT: exact search of that many is still cheap), and walks the graph above it.
EXACT_SEARCH_WITHIN = AUTO_SWITCH_AT
# The widened candidate list of a filtered graph walk stops here (a 2 % filter of a million).
_FILTERED_EF_SEARCH_MAX = 8192


def _as_matrix(vectors: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(vectors, dtype=np.float32)


def _as_ids(ids: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(ids, dtype=np.int64)


def hnsw_ef_search(count: int) -> int:
    """HNSW's search effort for `count` vectors: QA_HNSW_EF_SEARCH when set, else 1024 at a
    million vectors scaled by sqrt(count / 1M), kept within 128-2048."""
    low, high = _HNSW_EF_SEARCH_RANGE
    scaled = int(min(high, max(low, round(HNSW_EF_SEARCH * math.sqrt(count / 1_000_000)))))
    chosen = settings.HNSW_EF_SEARCH.get()
    return scaled if chosen is None else chosen


def ivf_lists_for(count: int) -> int:
    """About 4 sqrt(count) lists (a power of two), never more than the points can train."""
    ideal = 2 ** round(math.log2(max(_IVF_LISTS_PER_SQRT * math.sqrt(max(count, 1)), 1)))
    return int(max(1, min(ideal, count // _IVF_POINTS_PER_LIST)))


def ivf_probes_for(lists: int) -> int:
    probes = settings.IVF_PROBES.get() or max(1, round(lists * _IVF_PROBE_SHARE))
    return max(1, min(probes, lists))


@dataclass(frozen=True)
class VectorIndexPolicy:
    """Which vector index a corpus of a given size gets.

    `requested` is `auto` or a fixed kind. Settings: QA_VECTOR_INDEX (auto, flat, hnsw, ivf)
    and QA_VECTOR_INDEX_SWITCH_AT (the corpus size at which `auto` leaves exact search).
    """

    requested: str = "auto"
    switch_at: int = AUTO_SWITCH_AT

    def __post_init__(self) -> None:
        if self.requested not in POLICIES:
            known = ", ".join(POLICIES)
            raise ValueError(f"unknown vector index {self.requested!r}; expected one of {known}")
        if self.switch_at < 1:
            raise ValueError(f"the vector index switch size must be positive, not {self.switch_at}")

    @classmethod
    def resolve(
        cls, requested: str | None = None, recorded: dict[str, Any] | None = None
    ) -> VectorIndexPolicy:
        """An explicit argument wins, then the environment, then what the index recorded."""
        recorded = recorded or {}
        kind = requested or settings.VECTOR_INDEX.get() or recorded.get("policy") or "auto"
        switch_at = settings.VECTOR_INDEX_SWITCH_AT.get() or recorded.get("switch_at") or AUTO_SWITCH_AT
        try:
            switch = int(switch_at)
        except ValueError:
            raise ValueError(f"the vector index switch size must be a number, not {switch_at!r}") from None
        return cls(kind.strip().lower(), switch)

    def kind_for(self, count: int, current: str | None = None) -> str:
        if self.requested != "auto":
            wanted = self.requested
        else:
            # Hysteresis: a corpus hovering around the threshold must not rebuild on every write.
            threshold = self.switch_at // 2 if current == "hnsw" else self.switch_at
            wanted = "hnsw" if count >= threshold else "flat"
        if wanted == "ivf" and ivf_lists_for(count) < 2:
            return "flat"  # too few vectors to train lists on; exact search is cheap at this size
        return wanted

    def to_dict(self) -> dict[str, Any]:
        return {"policy": self.requested, "switch_at": self.switch_at}


class FaissBackend:
    """Flat and HNSW indexes sit in an `IndexIDMap2`; IVF keeps passage ids in its own lists
    (an ID map over IVF breaks on delete: IVF does not renumber the rows it keeps)."""

    def __init__(self, dimension: int, kind: str = "flat", index: faiss.Index | None = None) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown vector index kind {kind!r} (expected one of {', '.join(KINDS)})")
        if kind == "ivf" and index is None:
            raise ValueError("an IVF index needs training vectors: build it with FaissBackend.build")
        self.kind = kind
        self.dimension = dimension
        self._index = index if index is not None else self._empty()
        self._dead = 0
        self._ef_search_override: int | None = None  # set by `tune`
        if kind == "hnsw":
            self._dead = int((faiss.vector_to_array(self._index.id_map) < 0).sum())

    def _hnsw(self) -> Any:
        return faiss.downcast_index(self._index.index).hnsw

    def _empty(self) -> faiss.Index:
        if self.kind == "flat":
            inner = faiss.IndexFlatIP(self.dimension)
        else:
            inner = faiss.IndexHNSWSQ(self.dimension, _STORED_AS, HNSW_NEIGHBORS, faiss.METRIC_INNER_PRODUCT)
            inner.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        return faiss.IndexIDMap2(inner)

    @classmethod
    def build(cls, dimension: int, kind: str, ids: np.ndarray, vectors: np.ndarray) -> FaissBackend:
        """A new index of `kind` holding `vectors` (IVF lists are trained on them)."""
        if kind != "ivf":
            backend = cls(dimension, kind)
            backend.add(ids, vectors)
            return backend
        vectors = _as_matrix(vectors)
        lists = ivf_lists_for(len(vectors))
        quantizer = faiss.IndexFlatIP(dimension)
        index = faiss.IndexIVFScalarQuantizer(
            quantizer, dimension, lists, _STORED_AS, faiss.METRIC_INNER_PRODUCT, False
        )  # not by residual: the lists hold the vectors themselves, which `contents` reads back
        index.cp.niter = _IVF_TRAIN_ITERATIONS
        index.cp.max_points_per_centroid = _IVF_TRAIN_POINTS_PER_LIST
        index.cp.seed = 1234  # the same corpus trains the same lists
        index.train(vectors)
        index.own_fields = True
        quantizer.this.disown()  # the IVF index frees its quantizer
        index.nprobe = ivf_probes_for(lists)
        backend = cls(dimension, "ivf", index)
        backend.add(ids, vectors)
        return backend

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids):
            self._index.add_with_ids(_as_matrix(vectors), _as_ids(ids))

    def delete(self, ids: np.ndarray) -> None:
        ids = _as_ids(ids)
        if not len(ids) or not len(self):
            return
        if self.kind != "hnsw":
            self._index.remove_ids(faiss.IDSelectorBatch(ids))
            return
        id_map = faiss.vector_to_array(self._index.id_map)
        rows = np.flatnonzero(np.isin(id_map, ids) & (id_map >= 0))
        if not len(rows):
            return
        id_map[rows] = -2 - rows  # unique negative ids: the ID map's reverse lookup stays valid
        faiss.copy_array_to_vector(id_map, self._index.id_map)
        self._index.construct_rev_map()
        self._dead += len(rows)

    def search(
        self, queries: np.ndarray, k: int, exclude: faiss.IDSelector | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (scores, ids) per query row, best first; missing slots have id -1. `exclude`
        selects ids to skip (rows removed since this index was saved)."""
        queries = _as_matrix(np.atleast_2d(queries))
        if not len(self):
            return (
                np.zeros((len(queries), 0), dtype=np.float32),
                np.zeros((len(queries), 0), dtype=np.int64),
            )
        k = min(k, len(self))
        selector = exclude
        if self._dead:
            live = faiss.IDSelectorRange(*_LIVE_IDS)
            selector = live if exclude is None else faiss.IDSelectorAnd(live, exclude)
        params = self._parameters(
            ef_search=max(self.ef_search, k), probes=int(self._index.nprobe) if self.lists else 0
        )
        return self._search(queries, k, params, selector)

    def _parameters(self, *, ef_search: int, probes: int) -> faiss.SearchParameters:
        """Search parameters of this index's kind: HNSW's candidate list, IVF's lists probed."""
        if self.kind == "flat":
            return faiss.SearchParameters()
        if self.kind == "ivf":
            params = faiss.SearchParametersIVF()
            params.nprobe = probes
            return params
        params = faiss.SearchParametersHNSW()
        params.efSearch = ef_search
        return params

    def _search(
        self, queries: np.ndarray, k: int, params: faiss.SearchParameters, selector: faiss.IDSelector | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """One FAISS search. `selector` must stay referenced until it returns (the caller's does).
        The thread count is a per-thread OpenMP setting: set for this search, then restored, so
        that builds and batch searches on this thread keep all cores."""
        if selector is not None:
            params.sel = selector
        previous_threads = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(1 if len(queries) < _PARALLEL_SEARCH_ROWS else _SEARCH_THREADS)
        try:
            return self._index.search(queries, k, params=params)
        finally:
            faiss.omp_set_num_threads(previous_threads)

    def search_among(self, queries: np.ndarray, k: int, allowed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (scores, ids) among the live ids `allowed`, found as an exact search of them
        finds them. Flat: the selector search is exact. IVF: every list is probed. HNSW: a
        graph walk restricted to a small subset loses its way (it must cross the other nodes),
        so up to `EXACT_SEARCH_WITHIN` vectors are scored directly; above that the filter keeps
        enough of the graph that a walk with a candidate list widened by the filter's
        selectivity finds them (tests/test_filters.py measures both)."""
        queries = _as_matrix(np.atleast_2d(queries))
        allowed = _as_ids(allowed)
        k = min(k, len(allowed))
        if self.kind == "hnsw" and len(allowed) <= EXACT_SEARCH_WITHIN:
            vectors = self._index.reconstruct_batch(allowed)  # through the ID map's reverse lookup
            scores = queries @ vectors.T
            order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
            return np.take_along_axis(scores, order, axis=1), allowed[order]
        selector = faiss.IDSelectorBatch(allowed)
        share = len(allowed) / max(len(self), 1)
        widened = min(max(int(self.ef_search / share), k), _FILTERED_EF_SEARCH_MAX)
        return self._search(queries, k, self._parameters(ef_search=widened, probes=self.lists), selector)

    @property
    def ef_search(self) -> int:
        """The HNSW search effort used now (it follows the corpus size unless tuned)."""
        return self._ef_search_override or hnsw_ef_search(len(self))

    def contents(self) -> tuple[np.ndarray, np.ndarray]:
        """All live (ids, vectors), for rebuilding the index as another kind."""
        if self.kind != "ivf":
            ids = faiss.vector_to_array(self._index.id_map).astype(np.int64)
            vectors = self._index.index.reconstruct_n(0, self._index.ntotal)
            live = ids >= 0
            return ids[live], vectors[live]
        invlists = self._index.invlists
        # float16 codes, or float32 ones in an IVF index written before float16 storage
        stored = np.float16 if invlists.code_size == 2 * self.dimension else np.float32
        id_parts, vector_parts = [], []
        for number in range(invlists.nlist):
            size = invlists.list_size(number)
            if not size:
                continue
            id_parts.append(faiss.rev_swig_ptr(invlists.get_ids(number), size).copy())
            codes = faiss.rev_swig_ptr(invlists.get_codes(number), size * invlists.code_size).copy()
            vector_parts.append(np.frombuffer(codes, dtype=stored).reshape(size, self.dimension))
        if not id_parts:
            return np.zeros(0, np.int64), np.zeros((0, self.dimension), np.float32)
        return np.concatenate(id_parts).astype(np.int64), np.concatenate(vector_parts).astype(np.float32)

    def adapted(self, policy: VectorIndexPolicy) -> FaissBackend:
        """This index, or a rebuilt one, as `policy` wants it for the current corpus size."""
        wanted = policy.kind_for(len(self), self.kind)
        # (An IVF index trained before the lists became ~4 sqrt(n) meets this once: rebuilt on its
        # next write, with float16 lists.)
        stale = (self.kind == "ivf" and ivf_lists_for(len(self)) >= 4 * self.lists) or (
            self._dead > _HNSW_DEAD_SHARE_REBUILD * self._index.ntotal
        )
        if wanted == self.kind and not stale:
            return self
        ids, vectors = self.contents()
        return FaissBackend.build(self.dimension, wanted, ids, vectors)

    def tune(self, *, ef_search: int | None = None, probes: int | None = None) -> None:
        """Trade recall for speed at search time: HNSW's candidate list, IVF's lists probed."""
        if ef_search is not None and self.kind == "hnsw":
            self._ef_search_override = max(1, ef_search)
        if probes is not None and self.kind == "ivf":
            self._index.nprobe = max(1, min(probes, self.lists))

    @property
    def lists(self) -> int:
        return int(self._index.nlist) if self.kind == "ivf" else 0

    def describe(self) -> dict[str, Any]:
        """What the manifest records about this index."""
        described: dict[str, Any] = {"kind": self.kind, "stored_as": self._stored_as()}
        if self.kind == "ivf":
            described.update(lists=self.lists, probes=int(self._index.nprobe))
        elif self.kind == "hnsw":
            hnsw = self._hnsw()
            described.update(
                neighbors=HNSW_NEIGHBORS,
                ef_construction=int(hnsw.efConstruction),
                ef_search=self.ef_search,
                deleted=self._dead,
            )
        return described

    def _stored_as(self) -> str:
        if self.kind == "ivf":
            half = self._index.invlists.code_size == 2 * self.dimension
        else:
            half = isinstance(faiss.downcast_index(self._index.index), faiss.IndexHNSWSQ)
        return STORAGE if half else "float32"

    def save(self, path: Path) -> None:
        """Write the index to `path` and fsync it. Written from Python rather than by FAISS,
        which reports a full disk only on stderr and leaves a truncated file behind."""
        data = faiss.serialize_index(self._index)
        with open(path, "wb") as handle:
            handle.write(memoryview(data))
            handle.flush()
            os.fsync(handle.fileno())

    @classmethod
    def load(cls, path: Path, dimension: int) -> FaissBackend:
        index = faiss.read_index(str(path))
        if index.d != dimension:
            raise ValueError(f"{path} holds {index.d}-dimensional vectors, expected {dimension}")
        if isinstance(index, faiss.IndexIVF):
            index.nprobe = ivf_probes_for(index.nlist)
            return cls(dimension, "ivf", index)
        inner = faiss.downcast_index(index.index)
        return cls(dimension, "hnsw" if isinstance(inner, faiss.IndexHNSW) else "flat", index)

    def copy(self) -> FaissBackend:
        return FaissBackend(self.dimension, self.kind, faiss.clone_index(self._index))

    def __len__(self) -> int:
        return int(self._index.ntotal) - self._dead
