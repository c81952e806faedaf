"""The encoder on ONNX Runtime: the same vectors as `Encoder` without torch in the process.

It reads the export that `embeddings.onnx_export.export_onnx` writes into `<model>/onnx/` and
tokenizes with the `tokenizers` package straight from `tokenizer.json`. Nothing here imports
torch, transformers or sentence-transformers (a test checks it): the process needs a fraction
of the memory and starts in a fraction of the time.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from embeddings.encoder import LengthBatchedEngine, encode_by_length, model_fingerprint
from embeddings.errors import ModelError
from embeddings.onnx_files import (
    VARIANTS,
    max_seq_length,
    onnx_dir,
    prompts,
    read_manifest,
)


def _session_options(threads: int | None, *, spinning: bool = False):
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    # The CPUs this process may run on (a container or taskset may allow fewer than the machine has).
    options.intra_op_num_threads = threads or len(os.sched_getaffinity(0))
    options.inter_op_num_threads = 1
    # Spinning threads wait for work by busy-looping for a while after each run: a few hundred
    # microseconds faster per question, at the cost of whole cores burned between questions
    # that a server's other threads (and neighbours) would use. See scripts/onnx_fidelity.py.
    allow = "1" if spinning else "0"
    options.add_session_config_entry("session.intra_op.allow_spinning", allow)
    options.add_session_config_entry("session.inter_op.allow_spinning", allow)
    options.log_severity_level = 3  # warnings about unused initializers are not the user's business
    return options


class OnnxEncoder(LengthBatchedEngine):
    """Encodes questions and passages into L2-normalized float32 vectors with ONNX Runtime."""

    inner: tuple = ()

    def __init__(
        self,
        model: str | Path,
        *,
        variant: str = "fp32",
        batch_size: int = 16,
        threads: int | None = None,
        spinning: bool = False,
    ) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        if variant not in VARIANTS:
            raise ModelError(f"the ONNX variant must be one of {', '.join(VARIANTS)}, not {variant!r}")
        directory = Path(model).expanduser()
        manifest = read_manifest(directory)
        graph = onnx_dir(directory) / VARIANTS[variant]
        if manifest is None or not graph.is_file():
            raise ModelError(
                f"{directory} has no ONNX export ({graph} is missing). "
                "Export it with embeddings.onnx_export.export_onnx(model_dir)"
            )
        self.name = str(model)
        self.directory = directory
        self.variant = variant
        self.precision = f"onnx-{variant}"
        self.batch_size = batch_size
        self.fingerprint = model_fingerprint(directory)
        if manifest.get("source_fingerprint") != self.fingerprint:
            raise ModelError(
                f"the ONNX export in {onnx_dir(directory)} was made from other model files. "
                "Export it again: export_onnx(model_dir, force=True)"
            )
        self.prompts, self._query_prompt, self._document_prompt = prompts(directory)
        self._max_tokens = max_seq_length(directory)
        self._output = manifest["output"]["name"]
        self.dimension = int(manifest["output"]["shape"][1])

        # The tokenizer's padding and truncation stay off (tokenizer.json sets neither): they are
        # mutable state on a shared object, so a call that set them would race with other
        # threads. Truncation and padding are done per call on this call's own arrays instead,
        # and encoding itself only reads the tokenizer, so no lock is needed.
        self._tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        self._tokenizer.no_truncation()
        self._tokenizer.no_padding()
        self._encode_batch = getattr(self._tokenizer, "encode_batch_fast", self._tokenizer.encode_batch)
        self._prefix, self._suffix = self._special_tokens()
        pad = self._tokenizer.token_to_id("<pad>")
        self._pad_id = int(pad if pad is not None else 0)  # masked out, so any id would do

        options = _session_options(threads, spinning=spinning)  # spinning=True: to measure its effect
        self.threads = options.intra_op_num_threads
        self._session = onnxruntime.InferenceSession(
            str(graph), sess_options=options, providers=["CPUExecutionProvider"]
        )

    def _special_tokens(self) -> tuple[list[int], list[int]]:
        """The ids the post-processor puts before and after a text (<s> and </s> here), found by
        wrapping a probe, so a model with another template is wrapped by its own."""
        probe = self._tokenizer.encode("probe", add_special_tokens=False)
        bare, wrapped = probe.ids, self._tokenizer.post_process(probe).ids
        for start in range(len(wrapped) - len(bare) + 1):
            if wrapped[start : start + len(bare)] == bare:
                return wrapped[:start], wrapped[start + len(bare) :]
        raise ModelError("the tokenizer's post-processor changes the text's own tokens; cannot wrap texts")

    @property
    def max_tokens(self) -> int:
        return self._max_tokens

    def count_tokens(self, text: str) -> int:
        """Tokens of `text` alone, without the prompt and the special tokens around it."""
        return len(self._tokenizer.encode(text, add_special_tokens=False).ids)

    def _encode(self, texts: Sequence[str], *, query: bool, show_progress: bool) -> np.ndarray:
        """Batched by length as `Encoder` batches (see its `_encode` for the measurements)."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        prompt = (self._query_prompt if query else self._document_prompt) or ""
        return encode_by_length(
            texts,
            lambda batch: self._forward([prompt + text for text in batch]),
            dimension=self.dimension,
            batch_size=self.batch_size,
            query=query,
            show_progress=show_progress,
        )

    def tokenize(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(input_ids, attention_mask) as sentence-transformers builds them: each text truncated
        to `max_tokens` including its special tokens, the batch padded to its longest row."""
        room = self._max_tokens - len(self._prefix) - len(self._suffix)
        rows = [
            self._prefix + encoding.ids[:room] + self._suffix
            for encoding in self._encode_batch(list(texts), add_special_tokens=False)
        ]
        width = max(len(row) for row in rows)
        ids = np.full((len(rows), width), self._pad_id, dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = row
            mask[i, : len(row)] = 1
        return ids, mask

    def _forward(self, texts: list[str]) -> np.ndarray:
        ids, mask = self.tokenize(texts)
        (vectors,) = self._session.run([self._output], {"input_ids": ids, "attention_mask": mask})
        return vectors

    def info(self) -> dict:
        return {
            "name": self.name,
            "directory": str(self.directory),
            "dimension": self.dimension,
            "fingerprint": self.fingerprint,
            "max_tokens": self.max_tokens,
            "precision": self.precision,
            "prompts": self.prompts,
            "engine": "onnxruntime",
            "threads": self.threads,
        }

    def close(self) -> None:
        """Release the session (its weights); the encoder is unusable afterwards."""
        self._session = None
