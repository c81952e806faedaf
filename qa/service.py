"""Wiring: load the encoder and open the index once, for the CLI, the server and the evaluation."""

from __future__ import annotations

from pathlib import Path

from embeddings.encoder import Encoder, TextEncoder
from qa.index import Index, ModelIdentity, default_index_dir
from qa.search import SearchService, SearchSettings


def model_identity(encoder: TextEncoder) -> ModelIdentity:
    return ModelIdentity(encoder.name, encoder.fingerprint, encoder.dimension)


def open_service(
    index_dir: Path | str | None = None,
    *,
    encoder: TextEncoder | None = None,
    create: bool = True,
    settings: SearchSettings | None = None,
) -> SearchService:
    """The search service over `index_dir` (default: $QA_INDEX_DIR or data/index)."""
    encoder = encoder or Encoder()
    index = Index.open(Path(index_dir or default_index_dir()), model_identity(encoder), create=create)
    return SearchService(index, encoder, settings)
