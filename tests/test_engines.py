"""Choosing the engine (`embeddings.engines`): ONNX Runtime for the built-in model, torch on
request; a server of the built-in model never loads torch, and an index built on one engine is
served by the other."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx
import numpy as np
import pytest

from embeddings.engines import load_encoder, resolve_engine, resolve_onnx_variant
from embeddings.errors import ModelError
from qa.reliability.serve import QaServe, qa_command
from tests.helpers import REPO, SEEDS


def test_every_encoder_and_wrapper_has_the_whole_protocol(tmp_path):
    from embeddings.batching import BatchingEncoder
    from embeddings.cache import CachedEncoder
    from embeddings.encoder import TextEncoder
    from embeddings.paired import PairedEncoder
    from tests.fakes import FakeEncoder

    fake = FakeEncoder()
    cached = CachedEncoder(fake, tmp_path / "cache.sqlite")
    batching = BatchingEncoder(fake)
    paired = PairedEncoder(cached, FakeEncoder(dimension=32))
    for encoder in (fake, cached, batching, paired):
        assert isinstance(encoder, TextEncoder), type(encoder).__name__
        assert encoder.encode_queries(["who met Jeffrey"]).shape == (1, encoder.dimension)
    assert paired.inner[0] is cached and batching.inner == (fake,)
    batching.close()
    cached.close()


@pytest.mark.model
def test_both_engines_have_the_whole_protocol(real_encoder):
    from embeddings.encoder import TextEncoder

    assert isinstance(real_encoder, TextEncoder)
    assert isinstance(load_encoder(engine="torch"), TextEncoder)


def test_settings_are_checked_with_the_accepted_values_named(monkeypatch):
    monkeypatch.setenv("QA_ENGINE", "tensorflow")
    with pytest.raises(ModelError, match="QA_ENGINE must be one of auto, onnx, torch"):
        resolve_engine()
    monkeypatch.setenv("QA_ONNX_VARIANT", "int4")
    with pytest.raises(ModelError, match="QA_ONNX_VARIANT must be one of fp32, int8"):
        resolve_onnx_variant()
    monkeypatch.setenv("QA_ENGINE", " ONNX ")
    assert resolve_engine() == "onnx"


@pytest.mark.model
def test_the_built_in_model_runs_on_onnx_runtime_by_default_with_the_torch_engines_identity(real_encoder):
    assert real_encoder.info()["engine"] == "onnxruntime"
    torch_engine = load_encoder(engine="torch")
    assert torch_engine.fingerprint == real_encoder.fingerprint  # either serves the other's index
    texts = ["who met Jeffrey in Brussels", "التقى عبد الرحمن مصطفى المبعوث جيمس جيفري في بروكسل"]
    cosines = np.sum(real_encoder.encode_queries(texts) * torch_engine.encode_queries(texts), axis=1)
    # bfloat16 weights where the CPU has them: the torch side may differ by ~1e-4.
    assert cosines.min() > 0.999


@pytest.mark.model
def test_a_server_of_the_built_in_model_never_loads_torch(tmp_path: Path, real_encoder):
    index = tmp_path / "index"
    env = {"PYTHONPATH": str(REPO)}
    built = subprocess.run(
        [*qa_command(), "ingest", str(SEEDS), "--index", str(index)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert built.returncode == 0, built.stderr
    with QaServe(index, tmp_path / "logs", env=env) as serve:
        url = serve.start()
        answer = httpx.get(f"{url}/api/ask", params={"q": "who met Jeffrey in Brussels"}, timeout=60).json()
        assert answer["passages"][0]["document"]["id"] == "002_b8689e71eb8b336f"
        mapped = Path(f"/proc/{serve.pid}/maps").read_text()
        assert "libonnxruntime" in mapped
        assert "libtorch" not in mapped, "the server loaded torch"
    # The torch engine serves the same index (the same fingerprint), as a fallback.
    with QaServe(index, tmp_path / "logs-torch", env={**env, "QA_ENGINE": "torch"}) as serve:
        url = serve.start()
        health = httpx.get(f"{url}/health", timeout=60).json()
        assert health["documents"] == len(list(SEEDS.glob("*.txt")))
        assert "libtorch" in Path(f"/proc/{serve.pid}/maps").read_text()
    info = subprocess.run(
        [*qa_command(), "model", "info", "--json"], capture_output=True, text=True, timeout=600
    )
    assert json.loads(info.stdout)["engine"] == "onnxruntime", info.stderr
