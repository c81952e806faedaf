"""Where the ONNX export of a model lives and what it records; shared by the exporter and the
runtime encoder, so it imports neither torch nor onnxruntime.

The export sits in `<model_dir>/onnx/`: `model.onnx` (float32) and `model_int8.onnx`
(dynamically quantized weights), each with its weights in a `.data` file beside it, and
`onnx_manifest.json`, which says what the graphs take and return and which source model they
were exported from.
"""

from __future__ import annotations

import json
from pathlib import Path

from embeddings.encoder import DERIVED_ONNX_DIR

ONNX_SUBDIR = DERIVED_ONNX_DIR
FP32_FILE = "model.onnx"
INT8_FILE = "model_int8.onnx"
MANIFEST_FILE = "onnx_manifest.json"
# Bump when the exported graphs change (inputs, outputs, pooling, quantization settings): an
# export recorded with another version is redone.
EXPORT_VERSION = 1
VARIANTS = {"fp32": FP32_FILE, "int8": INT8_FILE}


def onnx_dir(model_dir: Path) -> Path:
    return model_dir / ONNX_SUBDIR


def _read_json(path: Path) -> dict:
    try:
        with path.open(encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        return {}


def max_seq_length(model_dir: Path) -> int:
    """The truncation length sentence-transformers applies, special tokens included.

    `sentence_bert_config.json` may set it; this model's does not, and then sentence-transformers
    takes the tokenizer's `model_max_length` capped at the position table (512). Reading only
    `sentence_bert_config.json` with a fallback guess truncates at the wrong length: passages
    cut at 384 tokens instead of 512 score a cosine of 0.985 against torch.
    """
    configured = _read_json(model_dir / "sentence_bert_config.json").get("max_seq_length")
    if configured:
        return int(configured)
    positions = int(_read_json(model_dir / "config.json").get("max_position_embeddings", 512))
    tokenizer_max = _read_json(model_dir / "tokenizer_config.json").get("model_max_length")
    return min(int(tokenizer_max), positions) if tokenizer_max else positions


def prompts(model_dir: Path) -> tuple[dict[str, str], str | None, str | None]:
    """(all prompts, query prompt, document prompt), chosen as `Encoder` chooses them."""
    config = _read_json(model_dir / "config_sentence_transformers.json")
    named = dict(config.get("prompts") or {})
    default = named.get(config.get("default_prompt_name") or "")
    query = named.get("query", default) or None
    document_names = [name for name in ("document", "passage", "corpus") if name in named]
    document = (named[document_names[0]] if document_names else default) or None
    return named, query, document


def read_manifest(model_dir: Path) -> dict | None:
    manifest = _read_json(onnx_dir(model_dir) / MANIFEST_FILE)
    return manifest or None
