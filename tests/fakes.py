"""A deterministic stand-in for the real encoder, for fast unit tests."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import ClassVar

import numpy as np

_WORD = re.compile(r"\w+")


class FakeEncoder:
    """Hashes words into a fixed-size vector: texts sharing words score high, as with a real model."""

    name = "fake"
    directory = None
    precision = "float32"
    inner = ()
    max_tokens = 512
    prompts: ClassVar[dict[str, str]] = {"query": "query: ", "document": "passage: "}

    def __init__(self, dimension: int = 64, fingerprint: str = "fake-v1") -> None:
        self.dimension = dimension
        self.fingerprint = fingerprint

    def _vector(self, text: str) -> np.ndarray:
        vector = np.zeros(self.dimension, dtype=np.float32)
        for word in _WORD.findall(text.lower()):
            slot = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=4).digest(), "little")
            vector[slot % self.dimension] += 1.0
        norm = np.linalg.norm(vector)
        if norm == 0:
            vector[0] = 1.0
            return vector
        return vector / norm

    def count_tokens(self, text: str) -> int:
        return len(_WORD.findall(text))

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return (
            np.stack([self._vector(t) for t in texts]) if texts else np.zeros((0, self.dimension), np.float32)
        )

    def encode_query(self, text: str) -> np.ndarray:
        return self._vector(text)

    def encode_documents(self, texts: Sequence[str], *, show_progress: bool | None = None) -> np.ndarray:
        return self.encode_queries(texts)

    def info(self) -> dict:
        return {"name": self.name, "dimension": self.dimension, "fingerprint": self.fingerprint}

    def close(self) -> None:
        """Nothing to release."""
