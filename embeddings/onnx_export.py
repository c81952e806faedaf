"""Export the encoder to ONNX: a float32 graph and a dynamically quantized int8 one.

Each graph takes `input_ids` and `attention_mask` (int64, [batch, sequence], both axes dynamic)
and returns `sentence_embedding` ([batch, dimension], float32): masked mean pooling and L2
normalization are inside the graph, so a runtime only tokenizes and the [batch, sequence, 384]
token vectors never leave it.

Each graph keeps its weights in a `.data` file beside it, which onnxruntime memory-maps (see
`_move_weights_out`). The export is atomic (files are written and fsynced in a hidden temporary
directory beside the target, then renamed into place) and idempotent (skipped when the manifest
records the same source model and export version and the files are there with the recorded sizes).

torch and transformers are imported inside `export_onnx` only: the ONNX encoder imports this
package's shared helpers without them.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import shutil
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from embeddings.encoder import model_fingerprint
from embeddings.errors import ModelError
from embeddings.onnx_files import (
    EXPORT_VERSION,
    FP32_FILE,
    INT8_FILE,
    MANIFEST_FILE,
    ONNX_SUBDIR,
    onnx_dir,
    read_manifest,
)

# 17 has LayerNormalization as one op (ORT fuses it either way) and every onnxruntime >= 1.14 runs it.
OPSET = 17
INPUT_NAMES = ("input_ids", "attention_mask")
OUTPUT_NAME = "sentence_embedding"
# Dynamic quantization, chosen by fidelity against torch float32 (the figures, and the command
# that prints the current ones: docs/benchmarks.md, "Figures behind the code's constants"):
# - per-channel weight scales, closer than per-tensor ones; no reduce_range (7-bit weights),
#   which makes either worse;
# - the 250k x 384 embedding table (Gather) too: a fraction of the size for the same fidelity;
# - not the FFN output projections, whose input (the GELU output, long-tailed) loses most to
#   8-bit activations: kept in float32 for a little size and part of the int8 speed-up.
QUANT_OP_TYPES = ("MatMul", "Gather")
QUANT_PER_CHANNEL = True
QUANT_REDUCE_RANGE = False
_FFN_OUTPUT_MATMUL = re.compile(r"/layer\.\d+/output/dense/MatMul$")
# The export is checked against torch on shapes unlike the tracing example; a graph that
# specialized a shape or dropped the mask would be far off.
_VERIFY_ATOL = 1e-4


@contextlib.contextmanager
def _export_lock(model_dir: Path) -> Iterator[None]:
    """Two processes exporting at once would each write ~600 MB for nothing."""
    with open(model_dir / f".{ONNX_SUBDIR}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def is_current_export(model_dir: Path, fingerprint: str | None = None) -> bool:
    """Whether `model_dir/onnx/` holds a complete export of this model by this exporter version."""
    manifest = read_manifest(model_dir)
    if not manifest or manifest.get("export_version") != EXPORT_VERSION:
        return False
    if manifest.get("source_fingerprint") != (fingerprint or model_fingerprint(model_dir)):
        return False
    directory = onnx_dir(model_dir)
    for entry in manifest.get("files", {}).values():
        path = directory / entry["file"]
        if not path.is_file() or path.stat().st_size != entry["bytes"]:
            return False
    return bool(manifest.get("files"))


def export_onnx(model_dir: Path, *, force: bool = False) -> dict:
    """Write `model_dir/onnx/` (unless a matching export is there and not `force`); return its manifest."""
    model_dir = Path(model_dir)
    if not (model_dir / "config.json").is_file():
        raise ModelError(f"{model_dir} is not a model directory: {model_dir / 'config.json'} is missing")
    with _export_lock(model_dir):
        fingerprint = model_fingerprint(model_dir)
        if not force and is_current_export(model_dir, fingerprint):
            return read_manifest(model_dir) or {}
        staging = Path(tempfile.mkdtemp(prefix=f".{ONNX_SUBDIR}.tmp-", dir=model_dir))
        staging.chmod(0o777 & ~_umask())  # mkdtemp makes it private; the model directory is not
        try:
            manifest = _export_into(model_dir, staging, fingerprint)
            _fsync_tree(staging)
            _swap_into_place(staging, onnx_dir(model_dir))
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return manifest


def _export_into(model_dir: Path, out: Path, fingerprint: str) -> dict:
    import onnx
    import onnxruntime
    import torch

    started = time.monotonic()
    module = _load_pooled_model(model_dir)
    fp32_path = out / FP32_FILE
    example = _example_inputs()
    with warnings.catch_warnings():
        # The TorchScript exporter warns that it is legacy, and the tracer that the mask code
        # converts tensors to Python bools; the check below catches what those warnings fear.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            example,
            str(fp32_path),
            dynamo=False,  # the torch.export-based exporter needs onnxscript, not a dependency here
            opset_version=OPSET,
            input_names=list(INPUT_NAMES),
            output_names=[OUTPUT_NAME],
            dynamic_axes={
                "input_ids": {0: "batch", 1: "sequence"},
                "attention_mask": {0: "batch", 1: "sequence"},
                OUTPUT_NAME: {0: "batch"},
            },
            do_constant_folding=True,
        )
    onnx.checker.check_model(str(fp32_path))
    int8_path = out / INT8_FILE
    excluded = _ffn_output_matmuls(fp32_path, int(module.bert.config.num_hidden_layers))
    _quantize(fp32_path, int8_path, exclude=excluded)
    for path in (fp32_path, int8_path):
        _move_weights_out(path)
    _verify(module, fp32_path)
    _verify(module, int8_path, atol=None)

    dimension = int(module.bert.config.hidden_size)
    manifest = {
        "export_version": EXPORT_VERSION,
        "source_fingerprint": fingerprint,
        "opset": OPSET,
        "inputs": {name: {"dtype": "int64", "shape": ["batch", "sequence"]} for name in INPUT_NAMES},
        "output": {
            "name": OUTPUT_NAME,
            "dtype": "float32",
            "shape": ["batch", dimension],
            "contents": "masked mean pooling of last_hidden_state, L2-normalized",
        },
        "files": {
            "fp32": {"file": FP32_FILE, "bytes": fp32_path.stat().st_size},
            "fp32_weights": {
                "file": _data_file(FP32_FILE),
                "bytes": (out / _data_file(FP32_FILE)).stat().st_size,
            },
            "int8_weights": {
                "file": _data_file(INT8_FILE),
                "bytes": (out / _data_file(INT8_FILE)).stat().st_size,
            },
            "int8": {
                "file": INT8_FILE,
                "bytes": int8_path.stat().st_size,
                "quantization": {
                    "method": "onnxruntime.quantization.quantize_dynamic",
                    "weight_type": "QInt8",
                    "op_types": list(QUANT_OP_TYPES),
                    "per_channel": QUANT_PER_CHANNEL,
                    "reduce_range": QUANT_REDUCE_RANGE,
                    "kept_float32": "FFN output projections (MatMul after GELU)",
                },
            },
        },
        "versions": {
            "torch": torch.__version__,
            "onnx": onnx.__version__,
            "onnxruntime": onnxruntime.__version__,
        },
        "export_seconds": round(time.monotonic() - started, 1),
    }
    (out / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


def _data_file(graph_file: str) -> str:
    return f"{graph_file}.data"


def _move_weights_out(path: Path) -> None:
    """Store the weights in a file beside the graph instead of inside it.

    onnxruntime memory-maps external weights and computes from the mapped pages, where weights
    inside the protobuf are parsed and then copied: a session of the float32 graph peaks at
    ~150 MiB instead of ~880 MiB and loads in 0.2 s instead of 1.2 s (the pages are shared
    page cache, not the process's own memory).
    """
    import onnx

    model = onnx.load(str(path))
    onnx.save_model(
        model, str(path), save_as_external_data=True, location=_data_file(path.name), size_threshold=1024
    )
    mode = 0o666 & ~_umask()
    path.chmod(mode)
    (path.parent / _data_file(path.name)).chmod(mode)  # onnx writes it private


def _load_pooled_model(model_dir: Path):
    """The transformer with pooling and normalization on top, in float32, eager attention.

    Eager attention exports as plain MatMul/Softmax with the padding mask added as a bias, which
    onnxruntime fuses into its Attention kernel; the SDPA path traces too, but skips the mask
    when it sees no padding in eager (untraced) runs, a shortcut best kept out of a graph.
    """
    import torch
    from transformers import BertModel
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    bert = BertModel.from_pretrained(
        model_dir, attn_implementation="eager", dtype=torch.float32, local_files_only=True
    )

    class PooledEncoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            # sentence-transformers' mean pooling: padding excluded, prompt and special tokens kept.
            weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)
            # F.normalize's formula (x / max(|x|, eps)), written out to trace to basic ops.
            return pooled / pooled.norm(p=2, dim=1, keepdim=True).clamp(min=1e-12)

    return PooledEncoder().eval()


def _example_inputs():
    """Batch 2, one row padded: neither a batch of 1 nor an all-ones mask can be traced as a constant."""
    import torch

    ids = torch.tensor([[0, 1360, 12, 3293, 47, 2], [0, 1360, 12, 2, 1, 1]], dtype=torch.int64)
    mask = (ids != 1).to(torch.int64)
    return ids, mask


def _verification_inputs() -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(0)
    batches = []
    for batch, length in ((1, 3), (3, 37), (4, 512)):
        ids = rng.integers(5, 250000, size=(batch, length), dtype=np.int64)
        ids[:, 0], ids[:, -1] = 0, 2
        mask = np.ones_like(ids)
        for row in range(1, batch):  # ragged rows, padded as a runtime pads them
            cut = int(rng.integers(2, length)) if length > 2 else length
            ids[row, cut - 1], ids[row, cut:], mask[row, cut:] = 2, 1, 0
        batches.append((ids, mask))
    return batches


def _verify(module, path: Path, *, atol: float | None = _VERIFY_ATOL) -> None:
    """Run the graph on shapes unlike the tracing example and compare with torch.

    With `atol` None (the quantized graph) only the shapes and a loose cosine are checked.
    """
    import onnxruntime
    import torch

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for ids, mask in _verification_inputs():
        (got,) = session.run([OUTPUT_NAME], {"input_ids": ids, "attention_mask": mask})
        with torch.inference_mode():
            want = module(torch.from_numpy(ids), torch.from_numpy(mask)).numpy()
        if got.shape != want.shape:
            raise ModelError(f"the ONNX export {path.name} returned shape {got.shape}, torch {want.shape}")
        if atol is not None and not np.allclose(got, want, atol=atol):
            worst = float(np.abs(got - want).max())
            raise ModelError(f"the ONNX export {path.name} differs from torch by {worst:.2e} at {ids.shape}")
        if atol is None and float((got * want).sum(axis=1).min()) < 0.9:
            raise ModelError(f"the quantized export {path.name} is far from torch at {ids.shape}")


def _ffn_output_matmuls(path: Path, layers: int) -> tuple[str, ...]:
    """Names of the FFN output MatMuls, one per layer, or an error: a renamed graph must not
    silently quantize them (the tracer names nodes after the module path)."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    names = tuple(
        node.name for node in graph.node if node.op_type == "MatMul" and _FFN_OUTPUT_MATMUL.search(node.name)
    )
    if len(names) != layers:
        raise ModelError(f"expected {layers} FFN output MatMuls in {path.name}, found {len(names)}")
    return names


class _DropPreprocessAdvice(logging.Filter):
    """quantize_dynamic logs (on the root logger) advice to run its shape-inference pre-pass,
    which matters for static quantization of convolutions, not here."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-processing before quantization" not in record.getMessage()


def _quantize(
    source: Path,
    target: Path,
    *,
    op_types: tuple[str, ...] = QUANT_OP_TYPES,
    per_channel: bool = QUANT_PER_CHANNEL,
    reduce_range: bool = QUANT_REDUCE_RANGE,
    exclude: tuple[str, ...] = (),
) -> None:
    """int8 weights, activations quantized per call (no calibration data needed)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    advice = _DropPreprocessAdvice()
    logging.getLogger().addFilter(advice)
    try:
        quantize_dynamic(
            source,
            target,
            weight_type=QuantType.QInt8,
            op_types_to_quantize=list(op_types),
            per_channel=per_channel,
            reduce_range=reduce_range,
            nodes_to_exclude=list(exclude),
        )
    finally:
        logging.getLogger().removeFilter(advice)


def _umask() -> int:
    """The process umask, read without setting it (os.umask would change it for other threads)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    return 0o022


def _fsync_tree(directory: Path) -> None:
    for path in directory.iterdir():
        with path.open("rb") as handle:
            os.fsync(handle.fileno())
    _fsync_dir(directory)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _swap_into_place(staging: Path, target: Path) -> None:
    """Rename the finished export over the old one; the old one is removed only afterwards."""
    retired = None
    if target.exists():
        retired = target.with_name(f".{target.name}.old-{os.getpid()}")
        target.rename(retired)
    staging.rename(target)
    _fsync_dir(target.parent)
    if retired is not None:
        shutil.rmtree(retired, ignore_errors=True)
