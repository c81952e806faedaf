"""What one small write costs as the corpus grows: seconds and bytes written to add one short
document to an index of 1k, 10k and 100k passages, and what a compaction then costs.

The corpus is synthetic (random unit vectors, filler text, three sentences a passage) and the
small document comes with its vectors ready: the figures are the index's share of a write,
beyond encoding, which does not depend on the corpus size. Bytes are what the process handed
to write()/pwrite() (`wchar` in /proc/self/io), the WAL and the fsynced pages included.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from qa.index import DocumentUpsert, IndexBackend, ModelIdentity, PassageUpsert, SentenceVector, open_index

SIZES = (1_000, 10_000, 100_000)
_PASSAGES_PER_DOCUMENT = 10
_SENTENCES_PER_PASSAGE = 3
_BUILD_BATCH = 5_000  # passages per write while building the corpus
_DIMENSION = 384
_IDENTITY = ModelIdentity("synthetic", "synthetic-write-bench", _DIMENSION)


def bytes_written() -> int:
    """Bytes this process has passed to write calls so far (Linux)."""
    for line in Path("/proc/self/io").read_text().splitlines():
        name, _, value = line.partition(":")
        if name == "wchar":
            return int(value)
    raise RuntimeError("no wchar in /proc/self/io")


def _unit_vectors(rng: np.random.Generator, count: int) -> np.ndarray:
    vectors = rng.standard_normal((count, _DIMENSION)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def synthetic_document(rng: np.random.Generator, document_id: str, passages: int) -> DocumentUpsert:
    sentence = "Synthetic report on the harbour, the market and the council meeting of the week. "
    text = sentence * passages * _SENTENCES_PER_PASSAGE
    width = len(sentence) * _SENTENCES_PER_PASSAGE
    vectors = _unit_vectors(rng, passages * (1 + _SENTENCES_PER_PASSAGE))
    upserts = [
        PassageUpsert(n * width, (n + 1) * width, vectors[n], f"synthet report harbour market {document_id}")
        for n in range(passages)
    ]
    sentences = [
        SentenceVector(s * len(sentence), (s + 1) * len(sentence), vectors[passages + s])
        for s in range(passages * _SENTENCES_PER_PASSAGE)
    ]
    return DocumentUpsert(document_id, document_id, "synthetic", text, document_id, upserts, sentences)


def _corpus(rng: np.random.Generator, passages: int) -> Iterator[list[DocumentUpsert]]:
    documents = passages // _PASSAGES_PER_DOCUMENT
    per_batch = _BUILD_BATCH // _PASSAGES_PER_DOCUMENT
    for first in range(0, documents, per_batch):
        last = min(first + per_batch, documents)
        yield [synthetic_document(rng, f"corpus-{n}", _PASSAGES_PER_DOCUMENT) for n in range(first, last)]


def _measured(action: Callable[[], Any]) -> tuple[float, int]:
    before, started = bytes_written(), time.perf_counter()
    action()
    return time.perf_counter() - started, bytes_written() - before


def directory_bytes(directory: Path) -> int:
    return sum(path.stat().st_size for path in directory.iterdir() if path.is_file())


def measure_size(passages: int, writes: int, log: Callable[[str], None]) -> dict[str, Any]:
    """Figures for one corpus size, keyed `writes_{size}_*`."""
    rng = np.random.default_rng(passages)
    key = f"writes_{passages // 1000}k"
    with tempfile.TemporaryDirectory(prefix="qa-bench-writes-") as scratch:
        directory = Path(scratch) / "index"
        index: IndexBackend = open_index(directory, _IDENTITY)
        try:
            log(f"write cost: building a {passages:,}-passage index")
            started = time.perf_counter()
            for batch in _corpus(rng, passages):
                index.write(batch)
            index.compact()  # the steady state: everything in the checkpoint
            build_s = time.perf_counter() - started
            size = directory_bytes(directory)
            log(f"write cost: {writes} small writes at {passages:,} passages")
            seconds, written = [], []
            for n in range(writes):
                document = synthetic_document(rng, f"small-{n}", 2)
                took, wrote = _measured(lambda document=document: index.write([document]))
                seconds.append(took)
                written.append(wrote)
            compact_s, compact_bytes = _measured(index.compact)
        finally:
            index.close()
    return {
        f"{key}_index_mb": round(size / 2**20, 2),
        f"{key}_build_s": round(build_s, 1),
        f"{key}_small_write_ms": round(statistics.median(seconds) * 1000, 2),
        f"{key}_small_write_max_ms": round(max(seconds) * 1000, 2),
        f"{key}_small_write_kb": round(statistics.median(written) / 1024, 1),
        f"{key}_small_write_share_of_index": round(statistics.median(written) / size, 5),
        f"{key}_compaction_s": round(compact_s, 2),
        f"{key}_compaction_mb": round(compact_bytes / 2**20, 2),
    }


def measure_write_cost(
    sizes: tuple[int, ...] = SIZES, writes: int = 20, log: Callable[[str], None] = print
) -> dict[str, Any]:
    figures: dict[str, Any] = {"writes_sizes": list(sizes), "writes_per_size": writes}
    for size in sizes:
        figures.update(measure_size(size, writes, log))
    return figures
