"""Which engine runs the model: ONNX Runtime (the default for the built-in model) or torch.

`QA_ENGINE`: `auto` (default), `onnx` or `torch`. `auto` runs a model directory that holds an ONNX
export (`<model>/onnx/`, written by `qa model build`) on ONNX Runtime, and anything else (a hub
id, a `QA_MODEL` directory without an export) on torch through sentence-transformers. The
built-in model gets its export the first time it is needed, so a server of the built-in model
never loads torch. `QA_ONNX_VARIANT`: `fp32` (default) or `int8` (dynamically quantized weights;
docs/evaluation.md has its quality, docs/benchmarks.md its speed).

Both engines give the same vectors (cosine ≥ 0.99999 for fp32, tested) and the same fingerprint,
so an index built with one is served by the other.
"""

from __future__ import annotations

import sys
from pathlib import Path

from embeddings.build import default_model_dir
from embeddings.encoder import Encoder, TextEncoder, resolve_model
from embeddings.errors import ModelError
from qa import settings

ENGINES = settings.ENGINES
ONNX_VARIANTS = settings.ONNX_VARIANTS


def resolve_engine(setting: str | None = None) -> str:
    """`setting`, else QA_ENGINE, else auto; ModelError naming the accepted values otherwise."""
    return settings.ENGINE.get(setting)


def resolve_onnx_variant(setting: str | None = None) -> str:
    return settings.ONNX_VARIANT.get(setting)


def has_onnx_export(model_dir: Path) -> bool:
    from embeddings.onnx_export import is_current_export

    return is_current_export(model_dir)


def ensure_onnx_export(model_dir: Path, *, progress: bool = True, force: bool = False) -> None:
    """Export the model to ONNX unless a current export is there (torch is needed only here)."""
    if not force and has_onnx_export(model_dir):
        return
    from embeddings.onnx_export import export_onnx

    if progress:
        print(f"Exporting the model to ONNX in {model_dir / 'onnx'} (about a minute)…", file=sys.stderr)
    export_onnx(model_dir, force=force)


def load_encoder(
    model: str | Path | None = None,
    *,
    engine: str | None = None,
    variant: str | None = None,
    progress: bool = True,
) -> TextEncoder:
    """The encoder for a model setting (default `QA_MODEL`, else the built-in model) on the
    engine `QA_ENGINE` chooses."""
    name, directory = resolve_model(model, progress=progress)
    chosen = resolve_engine(engine)
    built_in = directory is not None and directory.resolve() == default_model_dir().resolve()
    if chosen == "auto":
        exported = directory is not None and (built_in or has_onnx_export(directory))
        chosen = "onnx" if exported else "torch"
    if chosen == "torch":
        return Encoder(name, progress=progress)
    if directory is None:
        raise ModelError(f"QA_ENGINE=onnx needs a model directory; {name!r} is not one. Use QA_ENGINE=torch")
    if built_in:
        ensure_onnx_export(directory, progress=progress)
    elif not has_onnx_export(directory):
        raise ModelError(
            f'{directory} has no ONNX export. Export it (python -c "from embeddings.onnx_export import '
            f"export_onnx; export_onnx('{directory}')\") or use QA_ENGINE=torch"
        )
    from embeddings.onnx_encoder import OnnxEncoder

    return OnnxEncoder(directory, variant=resolve_onnx_variant(variant))
