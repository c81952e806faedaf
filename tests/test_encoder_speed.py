"""The encoder's fast paths: length-bucketed batches, bfloat16 weights, one shared tokenizer."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from embeddings import encoder as encoder_module
from embeddings.encoder import length_batches, resolve_precision
from embeddings.errors import ModelError

TEXTS = [
    "who met Jeffrey in Brussels",
    "التقى عبد الرحمن مصطفى جيمس جيفري في بروكسل لبحث الأوضاع في شمال سوريا.",
    "short",
    "A much longer passage about the meeting, " * 12,
    "من التقى جيفري؟",
]


def test_length_batches_cover_every_text_once_longest_first():
    lengths = [5, 300, 12, 290, 40, 41, 7, 150]
    batches = length_batches(lengths, batch_size=3)
    flat = [i for batch in batches for i in batch]
    assert sorted(flat) == list(range(len(lengths)))
    assert [lengths[i] for i in flat] == sorted(lengths, reverse=True)
    for batch in batches:
        assert len(batch) <= 3
        # no text in a batch is much shorter than the batch's longest: little padding
        assert min(lengths[i] for i in batch) >= 0.6 * lengths[batch[0]]


def test_length_batches_of_nothing_and_of_equal_lengths():
    assert length_batches([], 8) == []
    assert length_batches([10] * 20, 8) == [list(range(8)), list(range(8, 16)), list(range(16, 20))]


def test_precision_setting(monkeypatch):
    monkeypatch.delenv("QA_MODEL_PRECISION", raising=False)
    monkeypatch.setattr(encoder_module, "cpu_has_native_bf16", lambda: False)
    assert resolve_precision() == "float32"
    monkeypatch.setattr(encoder_module, "cpu_has_native_bf16", lambda: True)
    assert resolve_precision() == "bfloat16"
    monkeypatch.setenv("QA_MODEL_PRECISION", "Float32")
    assert resolve_precision() == "float32"
    assert resolve_precision("bfloat16") == "bfloat16"
    monkeypatch.setenv("QA_MODEL_PRECISION", "int4")
    with pytest.raises(ModelError, match="QA_MODEL_PRECISION must be one of auto, float32, bfloat16"):
        resolve_precision()


@pytest.fixture(scope="module")
def float32_encoder():
    from embeddings.encoder import Encoder

    return Encoder(precision="float32")


@pytest.mark.model
def test_our_batches_give_what_sentence_transformers_encode_gives(float32_encoder):
    """The length-bucketed forward passes equal the library's own `encode_query`/`encode_document`."""
    model = float32_encoder._model
    for ours, theirs in (
        (float32_encoder.encode_queries(TEXTS), model.encode_query(TEXTS, normalize_embeddings=True)),
        (float32_encoder.encode_documents(TEXTS), model.encode_document(TEXTS, normalize_embeddings=True)),
    ):
        assert ours.dtype == np.float32
        assert np.allclose(ours, theirs, atol=2e-5)


@pytest.mark.model
def test_bfloat16_vectors_match_float32_ones(float32_encoder):
    from embeddings.encoder import Encoder

    half = Encoder(precision="bfloat16")
    assert half.precision == "bfloat16" and half.info()["precision"] == "bfloat16"
    for kind in ("encode_queries", "encode_documents"):
        exact, approximate = getattr(float32_encoder, kind)(TEXTS), getattr(half, kind)(TEXTS)
        assert approximate.dtype == np.float32
        assert np.allclose(np.linalg.norm(approximate, axis=1), 1.0, atol=1e-5)
        assert float(np.min(np.sum(exact * approximate, axis=1))) > 0.999
    # an index built at one precision ranks the same at the other
    documents = float32_encoder.encode_documents(TEXTS)
    assert np.array_equal(
        np.argmax(float32_encoder.encode_queries(TEXTS) @ documents.T, axis=1),
        np.argmax(half.encode_queries(TEXTS) @ documents.T, axis=1),
    )


@pytest.mark.model
def test_counting_tokens_while_encoding_does_not_disturb_either(float32_encoder):
    """The tokenizer is shared (a copy costs ~270 MB) and guarded by a lock."""
    expected_vectors = float32_encoder.encode_documents(TEXTS)
    expected_counts = [float32_encoder.count_tokens(text) for text in TEXTS]
    failures: list[str] = []

    def count() -> None:
        for _ in range(200):
            if [float32_encoder.count_tokens(text) for text in TEXTS] != expected_counts:
                failures.append("count")

    def encode() -> None:
        for _ in range(15):
            if not np.allclose(float32_encoder.encode_documents(TEXTS), expected_vectors, atol=1e-5):
                failures.append("encode")

    threads = [threading.Thread(target=count), threading.Thread(target=encode)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
