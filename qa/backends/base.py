"""The interface every vector backend implements; no backend types leak past it.

Backends store int64 passage ids with L2-normalized float32 vectors and answer inner-product
queries. FAISS is the one shipped; a distributed engine can sit behind the same methods.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np


class VectorBackend(ABC):
    kind: str  # recorded in the index manifest

    @abstractmethod
    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add rows; `ids` are int64 and unique, `vectors` float32 [n, dimension]."""

    @abstractmethod
    def delete(self, ids: np.ndarray) -> None:
        """Remove rows by id; unknown ids are ignored."""

    @abstractmethod
    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (scores, ids) per query row, best first; missing slots have id -1."""

    @abstractmethod
    def save(self, path: Path) -> None:
        """Write the whole index to one file (the caller makes the write atomic)."""

    @classmethod
    @abstractmethod
    def load(cls, path: Path, dimension: int) -> VectorBackend:
        """Read a file written by `save`."""

    @abstractmethod
    def copy(self) -> VectorBackend:
        """An independent copy: writers change a copy while readers keep the original."""

    @abstractmethod
    def __len__(self) -> int: ...
