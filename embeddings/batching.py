"""Micro-batching of question encodings: concurrent callers share one forward pass of the model.

The server answers each request in a worker thread of a pool. Run from those threads, forward
passes fight over the two cores, and every thread that calls torch gets its own team of
OpenMP threads, which spin while they wait and slow each other down (docs/benchmarks.md). Here
one encoder thread runs every forward pass: a question that finds it idle is encoded at once,
with no waiting window, so a lone client pays only a thread hand-off; questions that arrive
while it is busy queue up and go through together in the next pass, where a batch of eight
costs little more than one question.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from embeddings.encoder import TextEncoder
from qa.settings import DEFAULT_QUERY_BATCH as DEFAULT_MAX_BATCH


@dataclass(eq=False)
class _Pending:
    texts: list[str]
    vectors: np.ndarray | None = None
    error: BaseException | None = None
    done: bool = False


class BatchingEncoder:
    """A `TextEncoder` whose `encode_queries` runs on one encoder thread, in batches.

    Documents go straight through on the caller's thread: ingest already encodes them in
    large batches.
    """

    def __init__(self, encoder: TextEncoder, max_batch: int = DEFAULT_MAX_BATCH) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, not {max_batch}")
        self.encoder = encoder
        self.max_batch = max_batch
        self.name = encoder.name
        self.dimension = encoder.dimension
        self.fingerprint = encoder.fingerprint
        self.precision = encoder.precision
        self.directory = encoder.directory
        self.inner = (encoder,)
        self._condition = threading.Condition()
        self._queue: deque[_Pending] = deque()
        self._worker: threading.Thread | None = None
        self._closed = False
        self.batches = 0  # forward passes run, for the benchmark and tests
        self.batched_texts = 0

    @property
    def queued(self) -> int:
        """Calls waiting for the encoder thread (for tests and monitoring)."""
        with self._condition:
            return len(self._queue)

    def count_tokens(self, text: str) -> int:
        return self.encoder.count_tokens(text)

    def info(self) -> dict:
        return self.encoder.info()

    def encode_documents(self, texts: Sequence[str], *, show_progress: bool | None = None) -> np.ndarray:
        return self.encoder.encode_documents(texts, show_progress=show_progress)

    def encode_query(self, text: str) -> np.ndarray:
        return self.encode_queries([text])[0]

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        pending = _Pending(list(texts))
        with self._condition:
            if self._closed:
                raise RuntimeError("the encoder is closed")
            if self._worker is None:
                worker = threading.Thread(target=self._work, name="query-encoder", daemon=True)
                worker.start()  # a failure to start raises here, before anything waits on it
                self._worker = worker
            self._queue.append(pending)
            self._condition.notify_all()
            while not pending.done:
                self._condition.wait()
        if pending.error is not None:
            raise pending.error
        assert pending.vectors is not None
        return pending.vectors

    def close(self) -> None:
        """Stop the encoder thread once the queue is empty (the process exiting stops it too)."""
        with self._condition:
            self._closed = True
            self._condition.notify_all()
            worker = self._worker
        if worker is not None:
            worker.join()

    def _work(self) -> None:
        try:
            while True:
                with self._condition:
                    while not self._queue and not self._closed:
                        self._condition.wait()
                    if not self._queue:
                        return
                    batch = self._take_batch()
                self._run(batch)
        finally:
            self._fail_waiting()

    def _fail_waiting(self) -> None:
        """However the encoder thread ends, no caller is left waiting for it: the queued ones get
        an error, and the next question starts a new thread (unless closed)."""
        with self._condition:
            error = RuntimeError("the query encoder stopped; ask again")
            while self._queue:
                request = self._queue.popleft()
                request.error, request.done = error, True
            if self._worker is threading.current_thread():
                self._worker = None
            self._condition.notify_all()

    def _take_batch(self) -> list[_Pending]:
        """The oldest requests, up to `max_batch` texts (always at least one request)."""
        batch: list[_Pending] = []
        size = 0
        while self._queue and (not batch or size + len(self._queue[0].texts) <= self.max_batch):
            request = self._queue.popleft()
            batch.append(request)
            size += len(request.texts)
        return batch

    def _run(self, batch: list[_Pending]) -> None:
        try:
            texts = [text for request in batch for text in request.texts]
            try:
                vectors = self.encoder.encode_queries(texts)
            except Exception:
                if len(batch) == 1:
                    raise
                # One caller's texts must not fail the others: each goes on its own.
                for request in batch:
                    self._run_alone(request)
                return
            start = 0
            for request in batch:
                request.vectors = vectors[start : start + len(request.texts)]
                start += len(request.texts)
        except BaseException as exc:  # every waiting caller gets the error, not a hang
            for request in batch:
                request.error = exc
        finally:
            with self._condition:
                for request in batch:
                    request.done = True
                self.batches += 1
                self.batched_texts += sum(len(request.texts) for request in batch)
                self._condition.notify_all()

    def _run_alone(self, request: _Pending) -> None:
        try:
            request.vectors = self.encoder.encode_queries(request.texts)
        except Exception as exc:
            request.error = exc
