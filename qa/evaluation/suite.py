"""Evaluate several sets in one go and gather them into a `Report`."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

from embeddings.cache import CachedEncoder
from embeddings.encoder import TextEncoder
from qa.chunking import ChunkingSettings
from qa.evaluation.datasets import EvalSet, load_set
from qa.evaluation.report import Report
from qa.evaluation.runner import evaluate_set
from qa.search import MODES, SearchSettings

DEFAULT_SETS = ("xquad-en-ar", "xquad-ar-ar", "arcd", "tydi-ar", "seeds")


def _caches(encoder: TextEncoder) -> list[CachedEncoder]:
    """The caching encoders in `encoder` (itself, or inside the wrappers, e.g. both halves of a
    paired encoder)."""
    if isinstance(encoder, CachedEncoder):
        return [encoder]
    return [cache for part in encoder.inner for cache in _caches(part)]


def load_sets(names: Sequence[str], data_dir: Path | None = None, limit: int | None = None) -> list[EvalSet]:
    """Load the named sets; `limit` keeps that many questions per set (spread evenly)."""
    sets = [load_set(name, data_dir) for name in names]
    return [s.subset(max_questions=limit) for s in sets] if limit else sets


def run_suite(
    sets: Sequence[EvalSet],
    encoder: TextEncoder,
    *,
    settings: SearchSettings | None = None,
    chunking: ChunkingSettings | None = None,
    modes: Sequence[str] = MODES,
    on_result: Callable[[str], None] | None = None,
    index_url: str | None = None,
) -> Report:
    """Evaluate each set with the same encoder and settings (in PostgreSQL with `index_url`)."""
    settings = settings or SearchSettings()
    chunking = chunking or ChunkingSettings()
    started = time.perf_counter()
    results = []
    for eval_set in sets:
        result = evaluate_set(
            eval_set, encoder, settings=settings, chunking=chunking, modes=modes, index_url=index_url
        )
        results.append(result)
        if on_result:
            on_result(
                f"{result.name}: {result.questions} questions, {result.passages} passages, "
                f"{sum(result.timings.values()):.1f} s"
            )
    timings = {"total": time.perf_counter() - started}
    caches = _caches(encoder)
    if caches:
        timings |= {
            "cache_hits": sum(c.hits for c in caches),
            "cache_misses": sum(c.misses for c in caches),
            "encoding": sum(c.encode_seconds for c in caches),
        }
    model = {"name": encoder.name, "fingerprint": encoder.fingerprint, "dimension": encoder.dimension}
    return Report(results, settings, chunking, model, timings)
