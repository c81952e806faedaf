"""Indexes the benchmark runs against: ours (through `qa`'s own ingest) and txtai's.

Encoding ~1,550 paragraphs takes minutes on two cores, so built indexes are cached under the
data directory (data/bench/) and reused while nothing they depend on changed: the documents, the
model, and the source of the code that chunks, embeds and stores them. `--fresh` rebuilds.
Ingest speed is measured separately, every run, on a fresh index of a fixed sample.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from embeddings.encoder import TextEncoder
from qa import settings
from qa.bench.corpus import REPO_ROOT, Corpus
from qa.index import open_index
from qa.ingest import ingest_documents
from qa.service import model_identity

# The code an index's contents depend on: a change to any of these rebuilds cached indexes.
_INDEX_CODE = (
    "qa/chunking.py",
    "qa/documents.py",
    "qa/ingest.py",
    "qa/lexical.py",
    "qa/index.py",
    "qa/store.py",
    "qa/textnorm.py",
    "qa/backends/faiss_backend.py",
)
_BUILD_RECORD = "bench-build.json"


def cache_root() -> Path:
    return settings.bench_dir()


def _code_fingerprint() -> str:
    digest = hashlib.sha256()
    for relative in _INDEX_CODE:
        path = REPO_ROOT / relative
        digest.update(path.read_bytes() if path.exists() else b"")
    return digest.hexdigest()[:12]


@dataclass
class BuiltIndex:
    path: Path
    passages: int
    build_seconds: float  # measured when it was built (possibly in an earlier run)
    cached: bool


def _cached(directory: Path, fresh: bool) -> BuiltIndex | None:
    record = directory / _BUILD_RECORD
    if fresh or not record.is_file():
        return None
    data = json.loads(record.read_text(encoding="utf-8"))
    return BuiltIndex(directory, int(data["passages"]), float(data["seconds"]), cached=True)


def _record(directory: Path, passages: int, seconds: float) -> BuiltIndex:
    (directory / _BUILD_RECORD).write_text(json.dumps({"passages": passages, "seconds": seconds}))
    return BuiltIndex(directory, passages, seconds, cached=False)


def _fresh_directory(prefix: str, key: str) -> Path:
    """The cache directory for `key`; other versions with the same prefix are removed."""
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    for old in root.glob(f"{prefix}-*"):
        if old.name != f"{prefix}-{key}":
            shutil.rmtree(old, ignore_errors=True)
    directory = root / f"{prefix}-{key}"
    shutil.rmtree(directory, ignore_errors=True)
    return directory


def our_index(corpus: Corpus, encoder: TextEncoder, *, fresh: bool = False) -> BuiltIndex:
    key = hashlib.sha256(
        f"{corpus.fingerprint}|{encoder.fingerprint}|{encoder.precision}|{_code_fingerprint()}".encode()
    ).hexdigest()[:12]
    prefix = f"ours-{corpus.name}"
    found = _cached(cache_root() / f"{prefix}-{key}", fresh)
    if found:
        return found
    directory = _fresh_directory(prefix, key)
    index = open_index(directory, model_identity(encoder))
    try:
        report = ingest_documents(index, encoder, corpus.documents)
    finally:
        index.close()
    return _record(directory, report.passages, report.seconds)


def txtai_index(corpus: Corpus, model_dir: Path, fingerprint: str, *, fresh: bool = False) -> BuiltIndex:
    from importlib.metadata import version

    from qa.bench import txtai_side

    identity = f"{corpus.fingerprint}|{fingerprint}|{model_dir}|{version('txtai')}"
    key = hashlib.sha256(identity.encode()).hexdigest()[:12]
    prefix = f"txtai-{corpus.name}"
    found = _cached(cache_root() / f"{prefix}-{key}", fresh)
    if found:
        return found
    directory = _fresh_directory(prefix, key)
    directory.mkdir(parents=True)
    built = txtai_side.build(corpus, model_dir, directory / "index")
    return _record(directory, built.rows, built.build_seconds or 0.0)


@dataclass(frozen=True)
class IngestFigures:
    documents: int
    passages: int
    tokens: int
    seconds: float

    @property
    def passages_per_s(self) -> float:
        return self.passages / self.seconds if self.seconds else 0.0

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds if self.seconds else 0.0


def measure_ingest(corpus: Corpus, encoder: TextEncoder, documents: int) -> IngestFigures:
    """Ingest a fixed sample of documents into a new, empty index, the way `qa ingest` does."""
    sample = corpus.sample_documents(documents)
    tokens = sum(encoder.count_tokens(document.text) for document in sample)
    with tempfile.TemporaryDirectory(prefix="qa-bench-ingest-") as directory:
        index = open_index(Path(directory) / "index", model_identity(encoder))
        try:
            started = time.perf_counter()
            report = ingest_documents(index, encoder, sample)
            seconds = time.perf_counter() - started
        finally:
            index.close()
    return IngestFigures(len(sample), report.passages, tokens, seconds)
