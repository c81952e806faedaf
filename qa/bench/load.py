"""Timing loops: in-process calls, and HTTP clients on loopback, alone or concurrent.

Every loop is bounded twice, by a number of requests and by a time limit, and stops by itself.
"""

from __future__ import annotations

import contextlib
import http.client
import itertools
import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from qa.bench.stats import Latency

# (method, path, body) of one request for one question
RequestFor = Callable[[str], tuple[str, str, bytes | None]]


def time_interleaved(
    calls: dict[str, Callable[[str], object]],
    questions: Sequence[str],
    *,
    repeats: int = 1,
    max_seconds: float = 60.0,
    warmup: int = 3,
) -> dict[str, list[float]]:
    """Milliseconds per call for each named system, question by question in turn, so that a
    burst of load from elsewhere on the machine hits all systems alike."""
    for call in calls.values():
        for question in questions[:warmup]:
            call(question)
    timings: dict[str, list[float]] = {name: [] for name in calls}
    deadline = time.perf_counter() + max_seconds
    for question in itertools.chain.from_iterable(itertools.repeat(questions, repeats)):
        if time.perf_counter() > deadline:
            break
        for name, call in calls.items():
            started = time.perf_counter()
            call(question)
            timings[name].append((time.perf_counter() - started) * 1000)
    return timings


def ask_ours(question: str, k: int = 5) -> tuple[str, str, bytes]:
    return "POST", "/api/ask", json.dumps({"question": question, "k": k}).encode()


def ask_txtai(question: str, k: int = 5) -> tuple[str, str, None]:
    return "GET", f"/search?query={quote(question)}&limit={k}", None


class HttpClient:
    """One keep-alive connection, as a client library would hold."""

    def __init__(self, base_url: str, timeout: float = 30.0) -> None:
        parts = urlsplit(base_url)
        self._host, self._port, self._timeout = parts.hostname or "127.0.0.1", parts.port or 80, timeout
        self._connection: http.client.HTTPConnection | None = None

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        for attempt in (1, 2):
            if self._connection is None:
                self._connection = http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)
            try:
                headers = {"Content-Type": "application/json"} if body is not None else {}
                self._connection.request(method, path, body=body, headers=headers)
                response = self._connection.getresponse()
                return response.status, response.read()
            except (ConnectionError, http.client.HTTPException):
                self.close()  # the server closed an idle connection: reconnect once
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


@dataclass(frozen=True)
class LoadResult:
    clients: int
    completed: int
    errors: int
    seconds: float
    latency: Latency

    @property
    def requests_per_s(self) -> float:
        return self.completed / self.seconds if self.seconds else 0.0


def run_load(
    base_url: str,
    request_for: RequestFor,
    questions: Sequence[str],
    *,
    clients: int,
    max_requests: int,
    max_seconds: float,
    warmup: int = 4,
) -> LoadResult:
    """`clients` threads, each with its own connection, send questions back to back until
    `max_requests` were sent in all or `max_seconds` passed."""
    counter = itertools.count()
    lock = threading.Lock()
    latencies: list[float] = []
    errors = [0]
    start_gate = threading.Barrier(clients + 1, timeout=120)
    deadline = [float("inf")]

    def client(number: int) -> None:
        connection = HttpClient(base_url)
        try:
            for question in questions[number : number + warmup]:  # connect, warm the path
                with contextlib.suppress(OSError):  # counted below if it keeps failing
                    connection.request(*request_for(question))
            start_gate.wait()
            mine: list[float] = []
            failed = 0
            while True:
                with lock:
                    sent = next(counter)
                if sent >= max_requests or time.perf_counter() > deadline[0]:
                    break
                started = time.perf_counter()
                try:
                    status, _ = connection.request(*request_for(questions[sent % len(questions)]))
                except OSError:
                    status = 0
                if status == 200:
                    mine.append((time.perf_counter() - started) * 1000)
                else:
                    failed += 1
            with lock:
                latencies.extend(mine)
                errors[0] += failed
        finally:
            connection.close()

    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(clients)]
    for thread in threads:
        thread.start()
    started = time.perf_counter()
    deadline[0] = started + max_seconds + 120  # until the gate opens: warm-up time
    start_gate.wait()
    started = time.perf_counter()
    deadline[0] = started + max_seconds
    for thread in threads:
        thread.join(max_seconds + 60)
    seconds = time.perf_counter() - started
    return LoadResult(clients, len(latencies), errors[0], seconds, Latency.of(latencies))
