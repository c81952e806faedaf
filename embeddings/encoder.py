"""The text encoder: a sentence-transformers model with query/document prompts.

`Encoder` accepts a model directory or hub id (setting `QA_MODEL`; default: the model built from
the packaged weights, built on first use). It returns L2-normalized float32 rows and exposes the
dimension and a fingerprint that an index records so it can refuse vectors from another model.
"""

from __future__ import annotations

import copy
import hashlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from embeddings.build import build_model, default_model_dir, missing_files
from embeddings.errors import ModelError

# Files sentence-transformers needs to load a directory as a model.
_ST_DIRECTORY_FILES = ("modules.json", "config.json")
_FINGERPRINT_SAMPLE = 1 << 16
# Batches above this size show a progress bar when stderr is a terminal.
_PROGRESS_THRESHOLD = 256


class TextEncoder(Protocol):
    """What the search service needs from an encoder (the real one, or a fake in tests)."""

    name: str
    dimension: int
    fingerprint: str

    def count_tokens(self, text: str) -> int: ...
    def encode_queries(self, texts: Sequence[str]) -> np.ndarray: ...
    def encode_documents(self, texts: Sequence[str], *, show_progress: bool | None = None) -> np.ndarray: ...


def model_fingerprint(model_dir: Path) -> str:
    """Identify a model directory by its files' names, sizes and first/last 64 KiB.

    Reading whole weight files would cost seconds on every start; the sampled bytes change
    whenever the weights, tokenizer or configuration change.
    """
    digest = hashlib.sha256()
    for path in sorted(p for p in model_dir.rglob("*") if p.is_file() and not p.name.startswith(".")):
        if path.name == "README.md":  # generated model card; says nothing about the weights
            continue
        size = path.stat().st_size
        digest.update(f"{path.relative_to(model_dir)}\0{size}\0".encode())
        with path.open("rb") as handle:
            digest.update(handle.read(_FINGERPRINT_SAMPLE))
            if size > _FINGERPRINT_SAMPLE:
                handle.seek(max(size - _FINGERPRINT_SAMPLE, _FINGERPRINT_SAMPLE))
                digest.update(handle.read())
    return digest.hexdigest()[:16]


def resolve_model(spec: str | Path | None = None, *, progress: bool = True) -> tuple[str, Path | None]:
    """Turn a model setting into something SentenceTransformer loads.

    Returns (name to load, local directory or None for a hub id). The default model is built
    when missing; a directory that exists but lacks files is an error, never a silent rebuild.
    """
    spec = spec or os.environ.get("QA_MODEL") or None
    if spec is None:
        model_dir = default_model_dir()
        if not model_dir.exists():
            build_model(model_dir, progress=progress)
        absent = missing_files(model_dir)
        if absent:
            raise ModelError(
                f"the model directory {model_dir} is incomplete: {model_dir / absent[0]} is missing. "
                "Rebuild it: qa model build --force"
            )
        return str(model_dir), model_dir
    path = Path(spec).expanduser()
    if path.exists():
        absent = [name for name in _ST_DIRECTORY_FILES if not (path / name).is_file()]
        if absent:
            raise ModelError(
                f"the model directory {path} is incomplete: {path / absent[0]} is missing. "
                "Point QA_MODEL at a complete sentence-transformers directory, or unset it to use "
                "the built-in model"
            )
        return str(path), path
    return str(spec), None


def _quiet_transformers() -> None:
    """Loading prints per-weight progress bars and notices that mean nothing to our users."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


class Encoder:
    """Encodes questions and passages into L2-normalized float32 vectors."""

    def __init__(
        self,
        model: str | Path | None = None,
        *,
        batch_size: int = 32,
        progress: bool = True,
    ) -> None:
        from sentence_transformers import SentenceTransformer

        name, directory = resolve_model(model, progress=progress)
        _quiet_transformers()
        try:
            self._model = SentenceTransformer(name, device="cpu", local_files_only=True)
        except OSError as exc:
            raise ModelError(
                f"cannot load the model {name!r}: {exc}. Models load from a local directory "
                "(there is no model hub here); unset QA_MODEL to use the built-in model"
            ) from exc
        except (ValueError, RuntimeError) as exc:
            raise ModelError(
                f"the model at {name} is corrupt: {exc}. Rebuild it: qa model build --force"
            ) from exc
        self.name = name
        self.directory = directory
        self.batch_size = batch_size
        self.dimension = int(self._model.get_embedding_dimension())
        self.fingerprint = (
            model_fingerprint(directory) if directory else hashlib.sha256(name.encode()).hexdigest()[:16]
        )
        self.prompts = dict(self._model.prompts)
        # A fast tokenizer keeps its padding/truncation settings as mutable state, set anew on
        # each call: counting tokens (chunking) while another thread encodes a padded batch
        # would unpad that batch. Counting gets its own copy.
        self._counting_tokenizer = copy.deepcopy(self._model.tokenizer)

    @property
    def max_tokens(self) -> int:
        return int(self._model.max_seq_length)

    def count_tokens(self, text: str) -> int:
        """Tokens of `text` alone, without the prompt and the special tokens around it."""
        return len(self._counting_tokenizer(text, add_special_tokens=False)["input_ids"])

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, query=True, show_progress=False)

    def encode_query(self, text: str) -> np.ndarray:
        return self.encode_queries([text])[0]

    def encode_documents(self, texts: Sequence[str], *, show_progress: bool | None = None) -> np.ndarray:
        if show_progress is None:
            show_progress = len(texts) > _PROGRESS_THRESHOLD and sys.stderr.isatty()
        return self._encode(texts, query=False, show_progress=show_progress)

    def _encode(self, texts: Sequence[str], *, query: bool, show_progress: bool) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        encode = self._model.encode_query if query else self._model.encode_document
        vectors = encode(
            list(texts),
            batch_size=self.batch_size,
            show_progress_bar=show_progress,
            convert_to_numpy=True,
            normalize_embeddings=True,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def info(self) -> dict:
        return {
            "name": self.name,
            "directory": str(self.directory) if self.directory else None,
            "dimension": self.dimension,
            "fingerprint": self.fingerprint,
            "max_tokens": self.max_tokens,
            "prompts": self.prompts,
        }
