"""Micro-batching of questions (embeddings.batching): questions asked together share one forward
pass of the model, each gets its own vector, and failures stay with their question.

No timing assertions: speed is measured by `qa bench`, not by tests.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from embeddings.batching import BatchingEncoder
from qa.service import open_service
from tests.fakes import FakeEncoder

# -- micro-batching ------------------------------------------------------------------------------


class GatedEncoder(FakeEncoder):
    """Blocks its first query batch until released, and records every batch it encodes."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()
        self.entered = threading.Event()
        self.batches: list[list[str]] = []

    def encode_queries(self, texts):
        self.batches.append(list(texts))
        if len(self.batches) == 1:
            self.entered.set()
            assert self.release.wait(10)
        if "boom" in texts:
            raise RuntimeError("cannot encode boom")
        return super().encode_queries(texts)


def _wait_until(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.005)


def _ask_concurrently(batcher: BatchingEncoder, inner: GatedEncoder, texts: list[str]) -> dict[str, object]:
    """The first text occupies the model; the others queue behind it, then the gate opens."""
    results: dict[str, object] = {}

    def call(text: str) -> None:
        try:
            results[text] = batcher.encode_queries([text])
        except Exception as exc:
            results[text] = exc

    first = threading.Thread(target=call, args=(texts[0],))
    first.start()
    assert inner.entered.wait(10)
    others = [threading.Thread(target=call, args=(text,)) for text in texts[1:]]
    for thread in others:
        thread.start()
    _wait_until(lambda: batcher.queued == len(others))
    inner.release.set()
    for thread in [first, *others]:
        thread.join(10)
    return results


def test_concurrent_questions_share_one_batch_and_get_their_own_vectors():
    inner = GatedEncoder()
    batcher = BatchingEncoder(inner, max_batch=32)
    texts = [f"question number {n} about Idlib" for n in range(8)]
    results = _ask_concurrently(batcher, inner, texts)
    assert [len(batch) for batch in inner.batches] == [1, 7]
    for text in texts:
        np.testing.assert_allclose(results[text], FakeEncoder().encode_queries([text]))


def test_a_batch_never_exceeds_its_limit():
    inner = GatedEncoder()
    batcher = BatchingEncoder(inner, max_batch=3)
    texts = [f"q{n}" for n in range(8)]
    results = _ask_concurrently(batcher, inner, texts)
    assert all(len(batch) <= 3 for batch in inner.batches)
    assert sorted(text for batch in inner.batches for text in batch) == sorted(texts)
    assert all(isinstance(results[text], np.ndarray) for text in texts)


def test_one_failing_question_does_not_fail_the_others_in_its_batch():
    inner = GatedEncoder()
    batcher = BatchingEncoder(inner)
    results = _ask_concurrently(batcher, inner, ["first", "boom", "fine"])
    assert isinstance(results["boom"], RuntimeError)
    assert isinstance(results["first"], np.ndarray) and isinstance(results["fine"], np.ndarray)
    assert batcher.queued == 0


def test_a_lone_caller_and_the_rest_of_the_encoder_pass_straight_through():
    inner = FakeEncoder()
    batcher = BatchingEncoder(inner)
    np.testing.assert_allclose(batcher.encode_queries(["a", "b"]), inner.encode_queries(["a", "b"]))
    assert batcher.encode_queries([]).shape == (0, inner.dimension)
    assert batcher.count_tokens("two words") == 2
    assert (batcher.name, batcher.dimension, batcher.fingerprint) == ("fake", 64, "fake-v1")
    np.testing.assert_allclose(batcher.encode_documents(["x y"]), inner.encode_documents(["x y"]))


def test_a_closed_encoder_finishes_its_queue_then_refuses_new_questions():
    batcher = BatchingEncoder(FakeEncoder())
    assert batcher.encode_queries(["before"]).shape == (1, 64)
    worker = batcher._worker
    batcher.close()
    assert worker is not None and not worker.is_alive()
    with pytest.raises(RuntimeError, match="closed"):
        batcher.encode_queries(["after"])


def test_an_encoder_that_raises_reaches_its_caller_and_the_thread_goes_on():
    inner = GatedEncoder()
    inner.release.set()
    batcher = BatchingEncoder(inner)
    with pytest.raises(RuntimeError, match="boom"):
        batcher.encode_queries(["boom"])
    assert batcher.encode_queries(["still here"]).shape == (1, 64)


# The crash is meant to reach the thread's own traceback report, as an unexpected one would.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_if_the_encoder_thread_dies_no_caller_hangs_and_the_next_question_restarts_it(monkeypatch):
    batcher = BatchingEncoder(FakeEncoder())
    original = batcher._take_batch
    calls = {"n": 0}

    def broken_once():
        calls["n"] += 1
        if calls["n"] == 1:
            raise MemoryError("simulated crash outside the model call")
        return original()

    monkeypatch.setattr(batcher, "_take_batch", broken_once)
    earlier_threads = set(threading.enumerate())
    with pytest.raises(RuntimeError, match="query encoder stopped"):
        batcher.encode_queries(["lost"])
    for thread in set(threading.enumerate()) - earlier_threads:  # the crash is reported in this test
        thread.join(10)
    _wait_until(lambda: batcher._worker is None)
    assert batcher.encode_queries(["answered"]).shape == (1, 64)
    batcher.close()


def test_the_service_batches_questions_unless_turned_off(tmp_path, monkeypatch):
    assert isinstance(open_service(tmp_path / "a", encoder=FakeEncoder()).encoder, BatchingEncoder)
    monkeypatch.setenv("QA_QUERY_BATCH", "1")
    assert isinstance(open_service(tmp_path / "b", encoder=FakeEncoder()).encoder, FakeEncoder)
