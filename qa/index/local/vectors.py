"""The passage vectors one reader searches: a checkpoint file plus the log of later writes.

A write never rewrites the vector file. It logs the vectors it adds and the ids it removes in
the store (one transaction with everything else), so its cost follows the change. A reader
holds an immutable `VectorState`: the checkpoint's FAISS index, the vectors added since in a
small exact index, and the checkpoint's ids removed since, which searches skip. Advancing to a
newer version builds a new state from the old one and the log between them; threads still
searching the old state are not disturbed. When the log grows past a share of the checkpoint,
compaction writes a new checkpoint (see `LocalIndex.compact`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import faiss
import numpy as np

from qa.index.local.faiss_index import FaissBackend


def _merge_top(k: int, *results: tuple[np.ndarray, np.ndarray]) -> list[tuple[int, float]]:
    ids = np.concatenate([found for _, found in results])
    scores = np.concatenate([score for score, _ in results])
    keep = ids >= 0
    ids, scores = ids[keep], scores[keep]
    order = np.argsort(-scores, kind="stable")[:k]
    return [(int(ids[i]), float(scores[i])) for i in order]


@dataclass(frozen=True)
class VectorState:
    """Every live passage vector as of one version of the index."""

    version: int
    checkpoint: str
    checkpoint_version: int
    base: FaissBackend  # never changed after loading: other threads may be searching it
    recent_ids: np.ndarray  # int64, added since the checkpoint and still live
    recent_vectors: np.ndarray  # float32 [len(recent_ids), dimension]
    hidden: frozenset[int]  # checkpoint ids removed since
    _recent_index: faiss.Index | None = field(default=None, repr=False, compare=False)
    _exclude: tuple | None = field(default=None, repr=False, compare=False)

    @classmethod
    def load(cls, path: Path, dimension: int, version: int) -> VectorState:
        base = FaissBackend.load(path, dimension)
        return cls.of(
            version,
            path.name,
            version,
            base,
            np.zeros(0, np.int64),
            np.zeros((0, dimension), np.float32),
            frozenset(),
        )

    @classmethod
    def of(
        cls,
        version: int,
        checkpoint: str,
        checkpoint_version: int,
        base: FaissBackend,
        recent_ids: np.ndarray,
        recent_vectors: np.ndarray,
        hidden: frozenset[int],
    ) -> VectorState:
        recent_index = None
        if len(recent_ids):
            recent_index = faiss.IndexIDMap2(faiss.IndexFlatIP(base.dimension))
            recent_index.add_with_ids(recent_vectors, recent_ids)
        exclude = None
        if hidden:
            # The FAISS selector reads the batch, which must outlive it: both are kept together.
            batch = faiss.IDSelectorBatch(np.fromiter(hidden, dtype=np.int64, count=len(hidden)))
            exclude = (faiss.IDSelectorNot(batch), batch)
        return cls(
            version,
            checkpoint,
            checkpoint_version,
            base,
            recent_ids,
            recent_vectors,
            hidden,
            recent_index,
            exclude,
        )

    @property
    def dimension(self) -> int:
        return self.base.dimension

    def __len__(self) -> int:
        return len(self.base) - len(self.hidden) + len(self.recent_ids)

    @property
    def pending(self) -> int:
        """Changes since the checkpoint that a compaction would fold into it."""
        return len(self.recent_ids) + len(self.hidden)

    def search(self, vector: np.ndarray, k: int) -> list[tuple[int, float]]:
        query = np.ascontiguousarray(np.atleast_2d(vector), dtype=np.float32)
        results = [self.base.search(query, k, exclude=self._exclude[0] if self._exclude else None)]
        if self._recent_index is not None:
            results.append(self._recent_index.search(query, min(k, len(self.recent_ids))))
        return _merge_top(k, *[(scores[0], ids[0]) for scores, ids in results])

    def contents(self) -> tuple[np.ndarray, np.ndarray]:
        """Every live (ids, vectors)."""
        ids, vectors = self.base.contents()
        if self.hidden:
            live = ~np.isin(ids, np.fromiter(self.hidden, dtype=np.int64, count=len(self.hidden)))
            ids, vectors = ids[live], vectors[live]
        return np.concatenate([ids, self.recent_ids]), np.concatenate([vectors, self.recent_vectors])

    def vectors_of(self, wanted: Sequence[int]) -> np.ndarray:
        ids, vectors = self.contents()
        row_of = {int(passage_id): row for row, passage_id in enumerate(ids)}
        missing = [i for i in wanted if int(i) not in row_of]
        if missing:
            raise KeyError(f"no vector for passages {missing[:5]}")
        return vectors[[row_of[int(i)] for i in wanted]].reshape(len(wanted), self.dimension)

    def advanced(self, version: int, changes: Iterable[tuple[int, bytes | None]]) -> VectorState:
        """This state with the logged changes of later versions applied, up to `version`."""
        recent = dict(zip(self.recent_ids.tolist(), self.recent_vectors, strict=True))
        hidden = set(self.hidden)
        for passage_id, vector in changes:
            if vector is not None:
                recent[passage_id] = np.frombuffer(vector, dtype=np.float32)
            elif recent.pop(passage_id, None) is None:
                hidden.add(passage_id)
        ids = np.fromiter(recent.keys(), dtype=np.int64, count=len(recent))
        vectors = (
            np.stack(list(recent.values())).astype(np.float32, copy=False)
            if recent
            else np.zeros((0, self.dimension), np.float32)
        )
        return VectorState.of(
            version, self.checkpoint, self.checkpoint_version, self.base, ids, vectors, frozenset(hidden)
        )
