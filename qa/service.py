"""Wiring: load the encoder and open the index once, for the CLI, the server and the evaluation."""

from __future__ import annotations

from pathlib import Path

from embeddings.batching import BatchingEncoder
from embeddings.encoder import Encoder, TextEncoder, legacy_model_fingerprint
from embeddings.engines import load_encoder
from qa import settings
from qa.index import ModelIdentity, default_index_location, default_read_location, open_index
from qa.search import SearchService, SearchSettings


def model_identity(encoder: TextEncoder) -> ModelIdentity:
    directory = encoder.directory
    former = legacy_model_fingerprint(directory) if directory else None
    return ModelIdentity(encoder.name, encoder.fingerprint, encoder.dimension, former)


def query_batch_size() -> int:
    """QA_QUERY_BATCH: most questions encoded in one pass (1 turns micro-batching off)."""
    return settings.QUERY_BATCH.get()


def model_threads() -> int | None:
    """QA_TORCH_THREADS: threads one forward pass of the model may use (unset: torch's default,
    one per core). On a machine shared with other work, 1 avoids torch's threads spinning while
    they wait for each other, which multiplied latency tenfold in docs/benchmarks.md."""
    return settings.TORCH_THREADS.get()


def _limit_model_threads(threads: int | None) -> None:
    if threads is None:
        return
    import torch

    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


def open_service(
    index_dir: Path | str | None = None,
    *,
    encoder: TextEncoder | None = None,
    create: bool = True,
    settings: SearchSettings | None = None,
    read_location: str | None = None,
) -> SearchService:
    """The search service over the index at `index_dir` (default: $QA_INDEX_DIR or data/index),
    reading from `read_location` (default: $QA_INDEX_READ_URL) when the index is PostgreSQL.

    Questions asked at the same time from several threads (the server's workers) share one
    forward pass of the model (see `embeddings.batching`).
    """
    encoder = encoder or load_encoder()
    if isinstance(encoder, Encoder):  # the ONNX engine sizes its own threads, and needs no torch
        _limit_model_threads(model_threads())
    index = open_index(
        index_dir or default_index_location(),
        model_identity(encoder),
        create=create,
        read_location=read_location or default_read_location(),
    )
    batch = query_batch_size()
    if batch > 1 and not isinstance(encoder, BatchingEncoder):
        encoder = BatchingEncoder(encoder, max_batch=batch)
    return SearchService(index, encoder, settings)
