"""Index storage behind one seam (`qa.index.base`); `open_index` picks the backend by location."""

from __future__ import annotations

import os
from pathlib import Path

from qa.chunking import ChunkingSettings
from qa.errors import IndexStateError
from qa.index.base import (
    DocumentUpsert,
    IndexBackend,
    IndexView,
    ModelIdentity,
    PassageUpsert,
    SentenceVector,
    StoredDocument,
    StoredPassage,
    WriteResult,
)

__all__ = [
    "DocumentUpsert",
    "IndexBackend",
    "IndexView",
    "ModelIdentity",
    "PassageUpsert",
    "SentenceVector",
    "StoredDocument",
    "StoredPassage",
    "WriteResult",
    "default_index_location",
    "open_index",
]


def default_index_location() -> str:
    """QA_INDEX_DIR, else `data/index`."""
    return os.environ.get("QA_INDEX_DIR") or "data/index"


def open_index(
    location: str | Path,
    model: ModelIdentity | None,
    *,
    create: bool = True,
    chunking: ChunkingSettings | None = None,
    vector_kind: str | None = None,
    searching: bool = True,
) -> IndexBackend:
    """The index at `location`: a directory (the local backend) or, later, a database URL.

    `model` is checked against the one the index was built with; None takes the recorded one,
    for commands that neither embed nor search (listing, export, removal, compaction). Without
    `searching`, views do not load the vectors: those commands start at once on a large index.
    """
    location = str(location)
    if "://" in location:
        scheme = location.split("://", 1)[0]
        raise IndexStateError(f"no index backend for {scheme}:// locations yet; give a directory")
    from qa.index.local import LocalIndex

    return LocalIndex.open(
        Path(location), model, create=create, chunking=chunking, vector_kind=vector_kind, searching=searching
    )
