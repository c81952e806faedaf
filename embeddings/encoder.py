"""The text encoder: a sentence-transformers model with query/document prompts.

`Encoder` accepts a model directory or hub id (setting `QA_MODEL`; default: the model built from
the packaged weights, built on first use). It returns L2-normalized float32 rows and exposes the
dimension and a fingerprint that an index records so it can refuse vectors from another model.
"""

from __future__ import annotations

import hashlib
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from embeddings.build import MANIFEST, build_model, default_model_dir, missing_files
from embeddings.errors import ModelError
from qa import settings

# Files sentence-transformers needs to load a directory as a model.
_ST_DIRECTORY_FILES = ("modules.json", "config.json")
_FINGERPRINT_SAMPLE = 1 << 16
# Not part of a model's fingerprint (nor are hidden and *.lock files): the build manifest, whose
# `built_at` changes on every rebuild, and the generated model card.
_BOOKKEEPING_FILES = frozenset({MANIFEST, "README.md"})
DERIVED_ONNX_DIR = "onnx"
# Batches above this size show a progress bar when stderr is a terminal.
PROGRESS_THRESHOLD = 256
PRECISIONS = settings.PRECISIONS
# CPU features that make bfloat16 matrix products native (not emulated through float32).
_NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


@runtime_checkable
class TextEncoder(Protocol):
    """Every encoder: the engines (`Encoder` on torch, `OnnxEncoder`), the second model
    (`UseEncoder`), the wrappers (`BatchingEncoder`, `PairedEncoder`, `CachedEncoder`) and the
    fakes of the tests. Callers never probe for optional parts."""

    name: str
    dimension: int
    fingerprint: str  # what an index records: vectors of another fingerprint are refused
    precision: str  # the number format or engine variant; caches keep vectors apart by it
    directory: Path | None  # the model directory, if the model has one
    inner: tuple[TextEncoder, ...]  # the encoders a wrapper wraps; () for an engine

    def count_tokens(self, text: str) -> int:
        """Tokens of `text` alone (no prompt, no special tokens): what chunking counts."""
        ...

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        """L2-normalized float32 rows, one per question."""
        ...

    def encode_documents(self, texts: Sequence[str], *, show_progress: bool | None = None) -> np.ndarray:
        """L2-normalized float32 rows, one per passage or sentence."""
        ...

    def info(self) -> dict:
        """What `qa model info` shows."""
        ...

    def close(self) -> None:
        """Release threads and files; the encoder is unusable afterwards."""
        ...


def model_fingerprint(model_dir: Path) -> str:
    """Identify a model by the files that shape its vectors, so an index refuses another model's
    vectors but survives a rebuild of the same one.

    Bookkeeping is excluded rather than model files listed: a QA_MODEL directory may name its
    files freely. Sampling each file's first/last 64 KiB keeps startup fast (hashing whole
    weights would take seconds).
    """
    return _sampled_digest(model_dir, [p for p in model_dir.rglob("*") if _determines_vectors(p, model_dir)])


def legacy_model_fingerprint(model_dir: Path) -> str:
    """The fingerprint indexes recorded before it left the build manifest out (every visible
    file but the model card): an index that recorded it holds this model's vectors."""
    files = [
        p
        for p in model_dir.rglob("*")
        if not p.name.startswith(".")
        and p.name != "README.md"
        and p.relative_to(model_dir).parts[0] != DERIVED_ONNX_DIR  # written after that rule
    ]
    return _sampled_digest(model_dir, files)


def _sampled_digest(model_dir: Path, paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in paths if p.is_file()):
        size = path.stat().st_size
        digest.update(f"{path.relative_to(model_dir)}\0{size}\0".encode())
        with path.open("rb") as handle:
            digest.update(handle.read(_FINGERPRINT_SAMPLE))
            if size > _FINGERPRINT_SAMPLE:
                handle.seek(max(size - _FINGERPRINT_SAMPLE, _FINGERPRINT_SAMPLE))
                digest.update(handle.read())
    return digest.hexdigest()[:16]


def _determines_vectors(path: Path, model_dir: Path) -> bool:
    relative = path.relative_to(model_dir)
    return not (
        path.name in _BOOKKEEPING_FILES
        or path.suffix == ".lock"
        or any(part.startswith(".") for part in relative.parts)  # .gitattributes, .cache/huggingface/
        # The ONNX export is derived from the other files: writing it must not make an index
        # refuse the model it was built with (either engine serves an index of the other).
        or relative.parts[0] == DERIVED_ONNX_DIR
    )


def resolve_model(spec: str | Path | None = None, *, progress: bool = True) -> tuple[str, Path | None]:
    """Turn a model setting into something SentenceTransformer loads.

    Returns (name to load, local directory or None for a hub id). The default model is built
    when missing; a directory that exists but lacks files is an error, never a silent rebuild.
    """
    spec = spec or settings.MODEL.get()
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
            where = path.absolute()
            raise ModelError(
                f"the model directory {where} is incomplete: {where / absent[0]} is missing. "
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


def cpu_has_native_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 matrices natively (Linux: the flags in /proc/cpuinfo)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return any(flag in flags for flag in _NATIVE_BF16_FLAGS)
    except OSError:
        pass
    return False


def resolve_precision(setting: str | None = None) -> str:
    """The weights' number format: QA_MODEL_PRECISION (auto, float32, bfloat16; default auto).

    A question is a dozen tokens, so a forward pass is bound by reading the weights from memory,
    not by arithmetic: bfloat16 weights halve that traffic and the model's memory. `auto` takes
    bfloat16 only where the CPU computes it natively; elsewhere the conversions cost more than
    they save. Vectors differ from float32 ones by a cosine of about 0.9999 (tested), so an
    index built at one precision serves questions at the other.
    """
    value = settings.MODEL_PRECISION.get(setting)
    if value == "auto":
        return "bfloat16" if cpu_has_native_bf16() else "float32"
    return value


def length_batches(lengths: Sequence[int], batch_size: int, *, min_fill: float = 0.6) -> list[list[int]]:
    """Indexes of texts grouped into batches of similar length, longest first.

    A batch is padded to its longest text; it closes when full or when the next text is
    shorter than `min_fill` of its first (longest) one, so at most ~40% of a row is padding.
    """
    order = sorted(range(len(lengths)), key=lambda i: lengths[i], reverse=True)
    batches: list[list[int]] = []
    for i in order:
        current = batches[-1] if batches else None
        if current is None or len(current) >= batch_size or lengths[i] < min_fill * lengths[current[0]]:
            batches.append([i])
        else:
            current.append(i)
    return batches


def _pool_in_float32(module: object, inputs: object, output: dict) -> dict:
    """Forward hook on the transformer: its token vectors go on to pooling in float32 even when
    it ran in bfloat16, because rounding the pooled vector to bfloat16 would lose more than the
    whole forward pass did (cosine 0.9986 against float32 instead of 0.99997)."""
    tokens = output.get("token_embeddings")
    if tokens is not None and tokens.is_floating_point():
        output["token_embeddings"] = tokens.float()  # no copy when already float32
    return output


def encode_by_length(
    texts: Sequence[str],
    forward: Callable[[list[str]], np.ndarray],
    *,
    dimension: int,
    batch_size: int,
    query: bool,
    show_progress: bool,
) -> np.ndarray:
    """`forward` over batches of texts of similar length (`length_batches`), rows in input order.
    The way every engine batches."""
    result = np.empty((len(texts), dimension), dtype=np.float32)
    bar = _progress_bar(len(texts), show_progress)
    # Questions are short and alike: batches are not split by length, each is padded to its
    # longest question (measured under 8 concurrent clients: ~130 against ~120 questions/s).
    min_fill = 0.0 if query else 0.6
    for batch in length_batches([len(text) for text in texts], batch_size, min_fill=min_fill):
        result[batch] = forward([texts[i] for i in batch])
        if bar is not None:
            bar.update(len(batch))
    if bar is not None:
        bar.close()
    return result


class LengthBatchedEngine:
    """The public encoding calls of an engine (torch's `Encoder`, `OnnxEncoder`): questions
    without a progress bar, documents with one when many and stderr is a terminal; the engine
    supplies `_encode`."""

    def _encode(self, texts: Sequence[str], *, query: bool, show_progress: bool) -> np.ndarray:
        raise NotImplementedError

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, query=True, show_progress=False)

    def encode_query(self, text: str) -> np.ndarray:
        return self.encode_queries([text])[0]

    def encode_documents(self, texts: Sequence[str], *, show_progress: bool | None = None) -> np.ndarray:
        if show_progress is None:
            show_progress = len(texts) > PROGRESS_THRESHOLD and sys.stderr.isatty()
        return self._encode(texts, query=False, show_progress=show_progress)


def _progress_bar(total: int, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="text", desc="Embedding", dynamic_ncols=True)


class Encoder(LengthBatchedEngine):
    """Encodes questions and passages into L2-normalized float32 vectors."""

    inner: tuple[TextEncoder, ...] = ()

    def __init__(
        self,
        model: str | Path | None = None,
        *,
        batch_size: int = 16,
        progress: bool = True,
        precision: str | None = None,
    ) -> None:
        import torch
        from sentence_transformers import SentenceTransformer

        name, directory = resolve_model(model, progress=progress)
        self.precision = resolve_precision(precision)
        _quiet_transformers()
        try:
            self._model = SentenceTransformer(
                name,
                device="cpu",
                local_files_only=True,
                model_kwargs={"dtype": getattr(torch, self.precision)},
            )
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
        # The prompts `encode_query` and `encode_document` would use.
        default = self.prompts.get(self._model.default_prompt_name or "")
        self._query_prompt = self.prompts.get("query", default) or None
        document_names = [name for name in ("document", "passage", "corpus") if name in self.prompts]
        self._document_prompt = (self.prompts[document_names[0]] if document_names else default) or None
        self._routed = any(type(module).__name__ == "Router" for module in self._model)
        self._model.eval()
        if self.precision != "float32":
            self._model[0].register_forward_hook(_pool_in_float32)
        # A fast tokenizer keeps its padding/truncation settings as mutable state, set anew on
        # each call: counting tokens (chunking) while another thread encodes a padded batch
        # would unpad that batch. Every use of the tokenizer takes this lock: a second copy of
        # it would cost hundreds of MB (its vocabulary trie), the lock next to nothing
        # (docs/benchmarks.md, "Figures behind the code's constants").
        self._tokenizer_lock = threading.Lock()
        preprocess = self._model.preprocess

        def locked_preprocess(*args: object, **kwargs: object) -> dict:
            with self._tokenizer_lock:
                return preprocess(*args, **kwargs)

        self._model.preprocess = locked_preprocess

    @property
    def max_tokens(self) -> int:
        return int(self._model.max_seq_length)

    def count_tokens(self, text: str) -> int:
        """Tokens of `text` alone, without the prompt and the special tokens around it."""
        with self._tokenizer_lock:
            return len(self._model.tokenizer(text, add_special_tokens=False)["input_ids"])

    def _encode(self, texts: Sequence[str], *, query: bool, show_progress: bool) -> np.ndarray:
        """Forward passes through the model's own modules, batched by length.

        `SentenceTransformer.encode` batches by count: a passage of 160 tokens and its sentences
        of 25 go through together, every sentence padded to 160, so most of the work was padding
        (docs/benchmarks.md). It also spends ~1.3 ms per call on bookkeeping, a tenth of a
        question's time. A model with a router (other modules per task) keeps `encode`.
        """
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        if self._routed:
            encode = self._model.encode_query if query else self._model.encode_document
            vectors = encode(
                list(texts),
                batch_size=self.batch_size,
                show_progress_bar=show_progress,
                convert_to_numpy=True,
                normalize_embeddings=True,
            )
            return np.ascontiguousarray(vectors, dtype=np.float32)
        prompt = self._query_prompt if query else self._document_prompt
        return encode_by_length(
            texts,
            lambda batch: self._forward(batch, prompt),
            dimension=self.dimension,
            batch_size=self.batch_size,
            query=query,
            show_progress=show_progress,
        )

    def _forward(self, texts: list[str], prompt: str | None) -> np.ndarray:
        import torch

        with torch.inference_mode():
            features = self._model.preprocess(texts, prompt=prompt)
            pooled = self._model(features)["sentence_embedding"].float()
            vectors = torch.nn.functional.normalize(pooled, p=2, dim=1)
        return vectors.numpy()

    def info(self) -> dict:
        return {
            "name": self.name,
            "directory": str(self.directory) if self.directory else None,
            "dimension": self.dimension,
            "fingerprint": self.fingerprint,
            "max_tokens": self.max_tokens,
            "precision": self.precision,
            "prompts": self.prompts,
            "engine": "torch",
        }

    def close(self) -> None:
        """Nothing to release: the weights go with the object."""
