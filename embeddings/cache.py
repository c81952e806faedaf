"""An embedding cache, so that re-running the evaluation does not re-encode what it already has.

Vectors are keyed by the model fingerprint, the kind of text (query or document: they get
different prompts) and the sha256 of the text, in one SQLite file under the data directory
(QA_DATA_DIR, see qa/settings.py). A changed model gets a new fingerprint and so misses the cache
instead of reusing stale vectors.
"""

from __future__ import annotations

import hashlib
import sqlite3
import sys
import time
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

from embeddings.encoder import TextEncoder
from qa import settings

SCHEMA = """
CREATE TABLE IF NOT EXISTS vectors (
    model TEXT NOT NULL,
    kind TEXT NOT NULL,
    key BLOB NOT NULL,
    vector BLOB NOT NULL,
    PRIMARY KEY (model, kind, key)
) WITHOUT ROWID;
"""
# Misses are encoded in batches of this many texts and committed after each, so an interrupted
# first run keeps what it already encoded.
_BATCH = 256


def default_cache_path() -> Path:
    return settings.cache_dir() / "embeddings.sqlite"


def _key(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8")).digest()


class CachedEncoder:
    """A `TextEncoder` that answers from the cache and encodes (and stores) only what is missing."""

    def __init__(self, encoder: TextEncoder, path: Path | None = None, *, progress: bool = False) -> None:
        self.encoder = encoder
        self.name = encoder.name
        self.dimension = encoder.dimension
        self.fingerprint = encoder.fingerprint
        self.precision = encoder.precision
        self.directory = encoder.directory
        self.inner = (encoder,)
        # Vectors computed at another precision (float32, bfloat16, an ONNX variant) are cached
        # apart. ONNX fp32 and torch float32 agree to 1e-6, so they share one cache.
        precision = "float32" if encoder.precision == "onnx-fp32" else encoder.precision
        self._model_key = self.fingerprint if precision == "float32" else f"{self.fingerprint}-{precision}"
        self.path = Path(path or default_cache_path())
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Other processes (a test run, a second evaluation) may share the file: wait for their locks.
        self._db = sqlite3.connect(str(self.path), timeout=120)
        self._db.executescript(SCHEMA)
        self.progress = progress
        self.hits = 0
        self.misses = 0
        self.encode_seconds = 0.0
        self.count_tokens = lru_cache(maxsize=1 << 16)(encoder.count_tokens)

    def info(self) -> dict:
        return self.encoder.info()

    def close(self) -> None:
        """Closes the cache file; the encoder it wraps stays open."""
        self._db.close()

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, "query")

    def encode_documents(self, texts: Sequence[str], *, show_progress: bool | None = None) -> np.ndarray:
        return self._encode(texts, "document")

    def _lookup(self, kind: str, keys: list[bytes]) -> dict[bytes, np.ndarray]:
        found: dict[bytes, np.ndarray] = {}
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), 500):  # stay under SQLite's bound-parameter limit
            chunk = unique[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                f"SELECT key, vector FROM vectors WHERE model = ? AND kind = ? AND key IN ({marks})",
                [self._model_key, kind, *chunk],
            )
            found.update((key, np.frombuffer(blob, dtype=np.float32)) for key, blob in rows)
        return found

    def _encode(self, texts: Sequence[str], kind: str) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        keys = [_key(t) for t in texts]
        found = self._lookup(kind, keys)
        missing = list({k: t for k, t in zip(keys, texts, strict=True) if k not in found}.items())
        self.hits += len(texts) - len(missing)
        self.misses += len(missing)
        # Similar lengths batch together with little padding.
        missing.sort(key=lambda item: len(item[1]))
        bar = self._bar(len(missing), kind)
        for start in range(0, len(missing), _BATCH):
            batch = missing[start : start + _BATCH]
            vectors = self._encode_inner([t for _, t in batch], kind)
            with self._db:
                self._db.executemany(
                    "INSERT OR REPLACE INTO vectors (model, kind, key, vector) VALUES (?,?,?,?)",
                    [
                        (self._model_key, kind, key, np.asarray(v, dtype=np.float32).tobytes())
                        for (key, _), v in zip(batch, vectors, strict=True)
                    ],
                )
            found.update((key, v) for (key, _), v in zip(batch, vectors, strict=True))
            if bar is not None:
                bar.update(len(batch))
        if bar is not None:
            bar.close()
        return np.stack([found[k] for k in keys]).astype(np.float32, copy=False)

    def _encode_inner(self, texts: list[str], kind: str) -> np.ndarray:
        started = time.perf_counter()
        if kind == "query":
            vectors = self.encoder.encode_queries(texts)
        else:
            vectors = self.encoder.encode_documents(texts, show_progress=False)
        self.encode_seconds += time.perf_counter() - started
        return vectors

    def _bar(self, total: int, kind: str):
        if not (self.progress and total > _BATCH and sys.stderr.isatty()):
            return None
        from tqdm import tqdm

        return tqdm(total=total, unit="text", desc=f"Embedding {kind} texts", dynamic_ncols=True, leave=False)
