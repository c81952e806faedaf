"""The passage vectors one reader searches: a checkpoint file plus the log of later writes.

A write never rewrites the vector file. It logs the vectors it adds and the ids it removes in
the store (one transaction with everything else), so its cost follows the change. A reader
holds an immutable `VectorState`: the checkpoint's FAISS index, the vectors added since in small
exact indexes (one per advance, merged when they pile up), and the ids removed since, which
searches skip. Advancing to a newer version costs what changed: it adds a segment and a larger
removed set, and threads still searching the old state are not disturbed (passage ids are never
reused, so a removed id is dead wherever it is). When the log grows past a share of the
checkpoint, compaction writes a new checkpoint (see `LocalIndex.compact`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import faiss
import numpy as np

from qa.index.local.faiss_index import FaissBackend

# Segments of recent vectors a state keeps before merging them into one: each costs a search.
_MAX_SEGMENTS = 8


@dataclass(frozen=True)
class Segment:
    """Vectors added since the checkpoint, searched exactly."""

    ids: np.ndarray  # int64
    vectors: np.ndarray  # float32 [len(ids), dimension]
    index: FaissBackend = field(repr=False, compare=False)

    @classmethod
    def of(cls, ids: np.ndarray, vectors: np.ndarray) -> Segment:
        index = FaissBackend(vectors.shape[1], "flat")
        index.add(ids, vectors)
        return cls(ids, vectors, index)


def _merge_top(k: int, results: Sequence[tuple[np.ndarray, np.ndarray]]) -> list[tuple[int, float]]:
    scores = np.concatenate([score for score, _ in results])
    ids = np.concatenate([found for _, found in results])
    keep = ids >= 0
    scores, ids = scores[keep], ids[keep]
    order = np.argsort(-scores, kind="stable")[:k]
    return [(int(ids[i]), float(scores[i])) for i in order]


@dataclass(frozen=True)
class VectorState:
    """Every live passage vector as of one version of the index."""

    version: int
    checkpoint: str
    checkpoint_version: int
    base: FaissBackend  # never changed after loading: other threads may be searching it
    segments: tuple[Segment, ...] = ()
    removed: frozenset[int] = frozenset()  # ids removed since the checkpoint, wherever they are
    # A FAISS selector of `removed`, with the batch it reads (which must outlive it).
    _exclude: tuple[faiss.IDSelector, faiss.IDSelector] | None = field(
        default=None, repr=False, compare=False
    )

    @classmethod
    def load(cls, path: Path, dimension: int, version: int) -> VectorState:
        return cls(version, path.name, version, FaissBackend.load(path, dimension))

    @property
    def dimension(self) -> int:
        return self.base.dimension

    @property
    def added(self) -> int:
        return sum(len(segment.ids) for segment in self.segments)

    def __len__(self) -> int:
        return len(self.base) + self.added - len(self.removed)

    @property
    def pending(self) -> int:
        """Changes since the checkpoint that a compaction would fold into it."""
        return self.added + len(self.removed)

    def search(self, vector: np.ndarray, k: int) -> list[tuple[int, float]]:
        query = np.ascontiguousarray(np.atleast_2d(vector), dtype=np.float32)
        exclude = self._exclude[0] if self._exclude else None
        # Through FaissBackend for each: it keeps FAISS on the calling thread for one question,
        # where its OpenMP threads would spin against the model's (docs/benchmarks.md, "Figures
        # behind the code's constants").
        results = [self.base.search(query, k, exclude=exclude)]
        results += [segment.index.search(query, k, exclude=exclude) for segment in self.segments]
        return _merge_top(k, [(scores[0], ids[0]) for scores, ids in results])

    def search_within(self, vector: np.ndarray, k: int, allowed: np.ndarray) -> list[tuple[int, float]]:
        """The top `k` among the passages `allowed` (live ids, int64): the filter is applied
        inside each search, not to an unfiltered top k, so a filter keeping 1 % of the corpus
        still finds k passages, the same ones an exact search of those passages finds."""
        if not len(allowed):
            return []
        query = np.ascontiguousarray(np.atleast_2d(vector), dtype=np.float32)
        in_segments = np.concatenate([segment.ids for segment in self.segments]) if self.segments else None
        in_base = allowed if in_segments is None else allowed[~np.isin(allowed, in_segments)]
        results = [self.base.search_among(query, k, in_base)] if len(in_base) else []
        for segment in self.segments:
            mine = allowed[np.isin(allowed, segment.ids)] if in_segments is not None else allowed[:0]
            if len(mine):
                results.append(segment.index.search_among(query, k, mine))
        if not results:
            return []
        return _merge_top(k, [(scores[0], ids[0]) for scores, ids in results])

    def contents(self) -> tuple[np.ndarray, np.ndarray]:
        """Every live (ids, vectors)."""
        ids, vectors = self.base.contents()
        ids = np.concatenate([ids, *(segment.ids for segment in self.segments)])
        vectors = np.concatenate([vectors, *(segment.vectors for segment in self.segments)])
        if self.removed:
            live = ~np.isin(ids, np.fromiter(self.removed, dtype=np.int64, count=len(self.removed)))
            ids, vectors = ids[live], vectors[live]
        return ids, vectors

    def recent(self) -> tuple[np.ndarray, np.ndarray]:
        """The live (ids, vectors) added since the checkpoint."""
        merged = _merged(self.segments, set(self.removed))[0] if self.segments else ()
        if not merged:
            return np.zeros(0, np.int64), np.zeros((0, self.dimension), np.float32)
        return merged[0].ids, merged[0].vectors

    def vectors_of(self, wanted: Sequence[int]) -> np.ndarray:
        ids, vectors = self.contents()
        row_of = {int(passage_id): row for row, passage_id in enumerate(ids)}
        missing = [i for i in wanted if int(i) not in row_of]
        if missing:
            raise KeyError(f"no vector for passages {missing[:5]}")
        return vectors[[row_of[int(i)] for i in wanted]].reshape(len(wanted), self.dimension)

    def advanced(self, version: int, changes: Iterable[tuple[int, bytes | None]]) -> VectorState:
        """This state with the logged changes of later versions applied, up to `version`."""
        added: dict[int, np.ndarray] = {}
        removed = set(self.removed)
        for passage_id, vector in changes:
            if vector is not None:
                added[passage_id] = np.frombuffer(vector, dtype=np.float32)
            elif added.pop(passage_id, None) is None:
                removed.add(passage_id)
        segments = self.segments
        if added:
            ids = np.fromiter(added.keys(), dtype=np.int64, count=len(added))
            segments = (*segments, Segment.of(ids, np.stack(list(added.values()))))
        if len(segments) > _MAX_SEGMENTS:
            segments, removed = _merged(segments, removed)
        return VectorState(
            version,
            self.checkpoint,
            self.checkpoint_version,
            self.base,
            segments,
            frozenset(removed),
            _selector(removed),
        )


def _merged(segments: tuple[Segment, ...], removed: set[int]) -> tuple[tuple[Segment, ...], set[int]]:
    """One segment of the live vectors of `segments`; the ids removed from them are forgotten."""
    ids = np.concatenate([segment.ids for segment in segments])
    vectors = np.concatenate([segment.vectors for segment in segments])
    dead = np.isin(ids, np.fromiter(removed, dtype=np.int64, count=len(removed)))
    still_removed = removed - set(ids[dead].tolist())
    live_ids, live_vectors = ids[~dead], vectors[~dead]
    return ((Segment.of(live_ids, live_vectors),) if len(live_ids) else ()), still_removed


def _selector(removed: set[int]) -> tuple[faiss.IDSelector, faiss.IDSelector] | None:
    if not removed:
        return None
    batch = faiss.IDSelectorBatch(np.fromiter(removed, dtype=np.int64, count=len(removed)))
    return faiss.IDSelectorNot(batch), batch
