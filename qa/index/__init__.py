"""Index storage behind one seam (`qa.index.base`); `open_index` picks the backend by location."""

from __future__ import annotations

from pathlib import Path

from qa import settings
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
    "default_read_location",
    "open_index",
]


def default_index_location() -> str:
    """QA_INDEX_DIR, else `data/index`, relative to the working directory (a documented contract: each
    project folder has its own index, while the model is shared; see qa/settings.py)."""
    return settings.INDEX_DIR.get()


def default_read_location() -> str | None:
    """QA_INDEX_READ_URL: where a PostgreSQL index's views read (a streaming replica); unset,
    they read where writes go."""
    return settings.INDEX_READ_URL.get()


def open_index(
    location: str | Path,
    model: ModelIdentity | None,
    *,
    create: bool = True,
    chunking: ChunkingSettings | None = None,
    vector_kind: str | None = None,
    searching: bool = True,
    read_location: str | None = None,
) -> IndexBackend:
    """The index at `location`: a directory (the local backend) or a `postgresql://` URL.

    `model` is checked against the one the index was built with; None takes the recorded one,
    for commands that neither embed nor search (listing, export, removal, compaction). Without
    `searching`, views do not load the vectors: those commands start at once on a large index.
    `read_location` (PostgreSQL only) sends reads to a replica of `location`.
    """
    location = str(location)
    if "://" in location:
        from qa.index.postgres import PostgresIndex, is_postgres_url

        if not is_postgres_url(location):
            scheme = location.split("://", 1)[0]
            raise IndexStateError(
                f"no index backend for {scheme}:// locations: give a directory or a postgresql:// URL"
            )
        return PostgresIndex.open(location, model, create=create, chunking=chunking, read_url=read_location)
    if read_location:
        raise IndexStateError(
            "a read location (QA_INDEX_READ_URL) needs a postgresql:// index, not a directory"
        )
    from qa.index.local import LocalIndex

    return LocalIndex.open(
        Path(location), model, create=create, chunking=chunking, vector_kind=vector_kind, searching=searching
    )
