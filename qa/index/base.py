"""The seam every index backend implements: a consistent read view and one atomic write.

The search service, ingest, the API, the CLI, evaluation and the benchmark see only these types.
No FAISS, SQLite or SQL type crosses this module: passages are plain ids and offsets, vectors
are numpy arrays, lexical terms are already normalized strings.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from qa.chunking import ChunkingSettings
from qa.errors import IndexStateError
from qa.filters import SearchFilter
from qa.metadata import Metadata


@dataclass(frozen=True)
class ModelIdentity:
    """What an index records of the model that made its vectors, and checks on every open."""

    name: str
    fingerprint: str
    dimension: int
    # What an older version of the project recorded for this same model (same vectors).
    former_fingerprint: str | None = field(default=None, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "fingerprint": self.fingerprint, "dimension": self.dimension}

    def made(self, recorded: dict[str, Any]) -> bool:
        """Whether this model made the vectors of an index that recorded `recorded`, under the
        fingerprint of today or of an older version."""
        known = {self.fingerprint, self.former_fingerprint} - {None}
        return recorded.get("dimension") == self.dimension and recorded.get("fingerprint") in known

    def check(self, recorded: dict[str, Any], location: str) -> None:
        """Refuse an index built with another model, saying how to rebuild it."""
        if self.made(recorded):
            return
        raise IndexStateError(
            f"the index at {location} was built with the model {recorded.get('name')!r} (dimension "
            f"{recorded.get('dimension')}, fingerprint {recorded.get('fingerprint')}), but the loaded "
            f"model is {self.name!r} (dimension {self.dimension}, fingerprint {self.fingerprint}). Use "
            f"the same model (QA_MODEL), or rebuild the index with this one: qa export --index {location} "
            f"> docs.jsonl, then delete {location} and run qa ingest docs.jsonl --index {location}"
        )


@dataclass(frozen=True)
class StoredDocument:
    id: str
    title: str
    source: str
    text: str  # empty in listings, where it could be large
    content_hash: str
    passages: int
    meta: Metadata = field(default_factory=Metadata)


@dataclass(frozen=True)
class StoredPassage:
    id: int
    document_id: str
    start: int
    end: int


@dataclass(frozen=True)
class SentenceVector:
    start: int
    end: int
    vector: np.ndarray  # float32; backends may store it with less precision


@dataclass(frozen=True)
class PassageUpsert:
    start: int
    end: int
    vector: np.ndarray  # float32, L2-normalized
    terms: str  # the passage's lexical terms, normalized, separated by spaces


@dataclass(frozen=True)
class DocumentUpsert:
    """A document to add, or to replace whole if its id exists."""

    id: str
    title: str
    source: str
    text: str
    content_hash: str
    passages: Sequence[PassageUpsert]
    sentences: Sequence[SentenceVector]
    words: Sequence[str] = ()  # its distinct words as written (`qa.lexical.written_words`)
    meta: Metadata = field(default_factory=Metadata)


@dataclass
class WriteResult:
    added: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # deletes of ids that were not there
    version: int = 0


class IndexView(ABC):
    """What one reader sees: one published state of the index, fixed for the view's life."""

    version: int  # grows with every published write
    chunking: ChunkingSettings

    @abstractmethod
    def dense_search(
        self, vector: np.ndarray, k: int, within: SearchFilter | None = None
    ) -> list[tuple[int, float]]:
        """Passage ids by inner product with `vector`, best first; with `within`, only passages
        of documents that match it, found as well as without a filter (no top-k then filter)."""

    @abstractmethod
    def lexical_search(
        self, terms: Sequence[str], k: int, within: SearchFilter | None = None
    ) -> list[tuple[int, float]]:
        """Passage ids by BM25 over normalized `terms` (any of them), best first; higher is better.
        With `within`, only passages of documents that match it (term statistics stay global)."""

    @abstractmethod
    def lexical_terms(self) -> list[str]:
        """Every distinct term of the lexical index (normalized as stored)."""

    @abstractmethod
    def written_words(self, after: int = 0) -> tuple[list[str], int] | None:
        """Distinct words as written in the documents, those recorded after the marker `after`,
        with the marker to pass next time. Words of removed documents may remain. None when
        the index does not keep them (written by an older version, on a read-only mount)."""

    @abstractmethod
    def passages(self, ids: Iterable[int]) -> dict[int, StoredPassage]: ...

    @abstractmethod
    def passage_vectors(self, ids: Sequence[int]) -> np.ndarray:
        """The stored vectors of passages, one float32 row per id in order (to copy an index
        elsewhere without embedding it again, or to model a corpus's vectors)."""

    @abstractmethod
    def sentences(self, passages: Sequence[StoredPassage]) -> dict[int, list[SentenceVector]]:
        """The sentences inside each passage with their vectors, in document order."""

    @abstractmethod
    def documents(self, ids: Iterable[str]) -> dict[str, StoredDocument]:
        """Documents with their text (passage counts are not filled in: 0)."""

    @abstractmethod
    def document(self, document_id: str) -> StoredDocument | None: ...

    @abstractmethod
    def list_documents(self, offset: int = 0, limit: int = 100) -> list[StoredDocument]:
        """A page of documents ordered by id, without their text."""

    @abstractmethod
    def iter_documents(self) -> Iterator[StoredDocument]:
        """Every document with its text, ordered by id (for export)."""

    @abstractmethod
    def iter_passages(self) -> Iterator[StoredPassage]:
        """Every passage, ordered by id."""

    @abstractmethod
    def count_documents(self) -> int: ...

    @abstractmethod
    def count_passages(self) -> int: ...

    @abstractmethod
    def content_hashes(self) -> dict[str, str]: ...


class IndexBackend(ABC):
    """An index at a location; `view()` to read, `write()` to change it atomically."""

    location: str
    model: ModelIdentity
    chunking: ChunkingSettings

    @abstractmethod
    def view(self) -> AbstractContextManager[IndexView]:
        """`with index.view() as view:` one consistent state, the latest published one."""

    @abstractmethod
    def write(self, upserts: Sequence[DocumentUpsert] = (), deletes: Sequence[str] = ()) -> WriteResult:
        """Apply every upsert and delete at once: readers see all of them or none."""

    @abstractmethod
    def compact(self) -> dict[str, Any]:
        """Merge what writes left behind (nothing where there is nothing to merge); returns figures."""

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """What the index is made of: counts, version, model, vector index (for people and tests)."""

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> IndexBackend:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
