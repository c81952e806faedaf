"""The ONNX engine: the torch engine's vectors and tokens without torch, from an atomic,
idempotent export.

The export goes into a hard-linked copy of the model directory, so these tests neither pay for
nor leave 600 MB of graphs in the model the rest of the suite copies around.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from embeddings.encoder import model_fingerprint
from embeddings.errors import ModelError
from embeddings.onnx_files import MANIFEST_FILE, ONNX_SUBDIR
from tests.helpers import REPO, SEEDS

# Measured on the varied set below (scripts/onnx_fidelity.py gives the same on its larger set):
# float32 agrees to 1e-6; int8 (MatMul and embedding weights, FFN output kept in float32) had
# mean 0.9989 and min 0.9972 against torch float32.
FP32_MEAN, FP32_MIN = 0.999, 0.995
INT8_MEAN, INT8_MIN = 0.997, 0.99


def _link_tree(source: Path, target: Path) -> None:
    """A copy that shares the weights' disk blocks where it can (same filesystem)."""
    for path in source.rglob("*"):
        relative = path.relative_to(source)
        if relative.parts[0] == ONNX_SUBDIR or any(part.startswith(".") for part in relative.parts):
            continue
        destination = target / relative
        if path.is_dir():
            destination.mkdir(parents=True, exist_ok=True)
            continue
        destination.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(path, destination)
        except OSError:
            shutil.copy2(path, destination)


@pytest.fixture(scope="session")
def source_model_dir() -> Path:
    from embeddings.encoder import resolve_model

    directory = resolve_model(progress=False)[1]
    if directory is None:
        pytest.skip("QA_MODEL names a hub model, not a directory to export")
    return directory


@pytest.fixture(scope="session")
def onnx_model_dir(source_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from embeddings.onnx_export import export_onnx

    copy = tmp_path_factory.mktemp("onnx-model") / source_model_dir.name
    _link_tree(source_model_dir, copy)
    export_onnx(copy)
    return copy


@pytest.fixture(scope="module")
def torch_float32(source_model_dir: Path):
    from embeddings.encoder import Encoder

    return Encoder(source_model_dir, precision="float32", progress=False)


@pytest.fixture(scope="module")
def onnx_fp32(onnx_model_dir: Path):
    from embeddings.onnx_encoder import OnnxEncoder

    encoder = OnnxEncoder(onnx_model_dir, variant="fp32")
    yield encoder
    encoder.close()


@pytest.fixture(scope="module")
def onnx_int8(onnx_model_dir: Path):
    from embeddings.onnx_encoder import OnnxEncoder

    encoder = OnnxEncoder(onnx_model_dir, variant="int8")
    yield encoder
    encoder.close()


@pytest.fixture(scope="module")
def varied_texts() -> list[str]:
    """Whole articles (over 512 tokens), their sentences, questions in three languages, odd inputs."""
    articles = [path.read_text(encoding="utf-8") for path in sorted(SEEDS.glob("*.txt"))][:5]
    sentences = [s.strip() for a in articles for s in re.split(r"[.!؟?\n]+", a) if len(s.strip()) > 10]
    return [
        *articles,
        *sentences[:40],
        "ما هي عاصمة سوريا؟",
        "من التقى المبعوث الأميركي الخاص؟",
        "Who met the US special envoy for Syria?",
        "Qui a rencontré l'envoyé spécial américain ?",
        "The committee debated the budget for hours. " * 60,
        "إدلب",
        "a",
        "",
    ]


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1)


def _mixed_batches(encoder, texts: list[str]) -> np.ndarray:
    """Documents in shuffled batches of 5: short rows padded next to truncated 512-token ones."""
    order = list(range(len(texts)))
    random.Random(1).shuffle(order)
    out = np.empty((len(texts), encoder.dimension), dtype=np.float32)
    for start in range(0, len(order), 5):
        rows = order[start : start + 5]
        out[rows] = encoder._forward([encoder._document_prompt + texts[i] for i in rows])
    return out


@pytest.mark.model
def test_fp32_vectors_match_torch_in_every_batching(torch_float32, onnx_fp32, varied_texts):
    documents = torch_float32.encode_documents(varied_texts)
    queries = torch_float32.encode_queries(varied_texts)
    cosines = np.concatenate(
        [
            _cosines(documents, onnx_fp32.encode_documents(varied_texts)),
            _cosines(queries, onnx_fp32.encode_queries(varied_texts)),
            _cosines(documents[:8], np.vstack([onnx_fp32.encode_documents([t]) for t in varied_texts[:8]])),
            _cosines(documents, _mixed_batches(onnx_fp32, varied_texts)),
        ]
    )
    assert cosines.mean() >= FP32_MEAN
    assert cosines.min() >= FP32_MIN


@pytest.mark.model
def test_int8_vectors_stay_close_to_torch(torch_float32, onnx_int8, varied_texts):
    cosines = np.concatenate(
        [
            _cosines(torch_float32.encode_documents(varied_texts), onnx_int8.encode_documents(varied_texts)),
            _cosines(torch_float32.encode_queries(varied_texts), onnx_int8.encode_queries(varied_texts)),
        ]
    )
    assert cosines.mean() >= INT8_MEAN
    assert cosines.min() >= INT8_MIN


@pytest.mark.model
def test_tokens_are_the_ones_sentence_transformers_feeds_the_model(torch_float32, onnx_fp32, varied_texts):
    for text in varied_texts:
        expected = torch_float32._model.preprocess([text], prompt="passage: ")["input_ids"].tolist()
        ids, mask = onnx_fp32.tokenize(["passage: " + text])
        assert ids.tolist() == expected
        assert mask.all()
        assert onnx_fp32.count_tokens(text) == torch_float32.count_tokens(text)


@pytest.mark.model
def test_a_text_gets_the_same_vector_alone_and_padded_beside_a_long_one(onnx_fp32, varied_texts):
    short, long = "ما هي عاصمة سوريا؟", varied_texts[0]
    alone = onnx_fp32.encode_queries([short])
    together = onnx_fp32.encode_queries([long, short, "Who?"])  # questions share one padded batch
    np.testing.assert_allclose(together[1:2], alone, atol=1e-5)


@pytest.mark.model
def test_text_beyond_the_token_limit_is_cut_as_sentence_transformers_cuts_it(onnx_fp32, varied_texts):
    article = varied_texts[0]
    assert onnx_fp32.count_tokens(article) > onnx_fp32.max_tokens == 512
    ids, _ = onnx_fp32.tokenize(["passage: " + article])
    assert ids.shape == (1, onnx_fp32.max_tokens)
    assert ids[0, -1] == 2  # </s> kept after the cut
    # What lies past the limit cannot change the vector.
    np.testing.assert_allclose(
        onnx_fp32.encode_documents([article]),
        onnx_fp32.encode_documents([article + " نهاية مختلفة"]),
        atol=1e-6,
    )


@pytest.mark.model
def test_no_texts_give_an_empty_matrix(onnx_fp32):
    for vectors in (onnx_fp32.encode_documents([]), onnx_fp32.encode_queries([])):
        assert vectors.shape == (0, onnx_fp32.dimension) and vectors.dtype == np.float32


@pytest.mark.model
def test_the_onnx_engine_reports_the_torch_engines_fingerprint(onnx_fp32, source_model_dir):

    # The source directory has no onnx/ (unless exported there), the copy has: both agree.
    assert onnx_fp32.fingerprint == model_fingerprint(source_model_dir)
    if not (source_model_dir / ONNX_SUBDIR).exists():
        assert onnx_fp32.fingerprint == model_fingerprint(source_model_dir)
    info = onnx_fp32.info()
    assert info["precision"] == "onnx-fp32" and info["dimension"] == 384 and info["max_tokens"] == 512


@pytest.mark.model
def test_threads_share_one_encoder_without_a_lock(onnx_fp32, varied_texts):
    """The tokenizer's padding/truncation are never set, so counting tokens while another
    thread encodes a batch cannot change that batch (the torch engine needs a lock for this)."""
    texts = varied_texts[5:25]
    expected_vectors = onnx_fp32.encode_queries(texts)
    expected_counts = [onnx_fp32.count_tokens(t) for t in varied_texts]
    failures: list[str] = []

    def encode() -> None:
        for _ in range(5):
            if not np.allclose(onnx_fp32.encode_queries(texts), expected_vectors, atol=1e-5):
                failures.append("vectors")

    def count() -> None:
        for _ in range(20):
            if [onnx_fp32.count_tokens(t) for t in varied_texts] != expected_counts:
                failures.append("counts")

    threads = [threading.Thread(target=f) for f in (encode, encode, count, count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


@pytest.mark.model
def test_the_onnx_engine_never_imports_torch(onnx_model_dir):
    script = (
        "import sys\n"
        "from embeddings.onnx_encoder import OnnxEncoder\n"
        f"encoder = OnnxEncoder({str(onnx_model_dir)!r}, variant='int8')\n"
        "encoder.encode_queries(['ما هي عاصمة سوريا؟', 'Who?'])\n"
        "encoder.encode_documents(['passage one', 'deux'])\n"
        "print(sorted(m for m in ('torch', 'transformers', 'sentence_transformers') if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.strip() == "[]"


@pytest.mark.model
def test_a_second_export_rewrites_nothing_and_leaves_no_temporary_files(onnx_model_dir):
    from embeddings.onnx_export import export_onnx

    exported = onnx_model_dir / ONNX_SUBDIR
    before = {path.name: path.stat().st_mtime_ns for path in exported.iterdir()}
    manifest = export_onnx(onnx_model_dir)
    assert {path.name: path.stat().st_mtime_ns for path in exported.iterdir()} == before
    assert manifest["output"]["name"] == "sentence_embedding" and manifest["opset"] == 17
    assert sorted(before) == sorted(
        [MANIFEST_FILE, "model.onnx", "model.onnx.data", "model_int8.onnx", "model_int8.onnx.data"]
    )
    leftovers = [
        p.name for p in onnx_model_dir.iterdir() if p.name.startswith(f".{ONNX_SUBDIR}.") and p.is_dir()
    ]
    assert leftovers == []


@pytest.mark.model
def test_a_failed_export_keeps_the_previous_one_and_leaves_no_debris(onnx_model_dir, monkeypatch):
    from embeddings import onnx_export

    exported = onnx_model_dir / ONNX_SUBDIR
    before = {path.name: path.stat().st_mtime_ns for path in exported.iterdir()}

    def explode(model_dir: Path, out: Path, fingerprint: str) -> dict:
        (out / "model.onnx").write_bytes(b"half a graph")
        raise OSError("disk full")

    monkeypatch.setattr(onnx_export, "_export_into", explode)
    with pytest.raises(OSError, match="disk full"):
        onnx_export.export_onnx(onnx_model_dir, force=True)
    assert {path.name: path.stat().st_mtime_ns for path in exported.iterdir()} == before
    leftovers = [
        p.name for p in onnx_model_dir.iterdir() if p.name.startswith(f".{ONNX_SUBDIR}.") and p.is_dir()
    ]
    assert leftovers == []


def test_a_model_without_an_export_is_refused_with_the_fix(tmp_path):
    from embeddings.onnx_encoder import OnnxEncoder

    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ModelError, match=r"no ONNX export.*export_onnx"):
        OnnxEncoder(tmp_path)
    with pytest.raises(ModelError, match="variant"):
        OnnxEncoder(tmp_path, variant="int4")
