"""`qa serve` closes connections that do not send a request in time (QA_IDLE_TIMEOUT_S), while
requests keep being answered: a real server process, real sockets on loopback.

Times are only bounded generously (the timeout plus 10 s) and from below by the timeout itself,
which a busy machine can only lengthen."""

from __future__ import annotations

import selectors
import socket
import threading
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest

from qa.reliability.serve import QaServe

TIMEOUT_S = 2.0
SLACK_S = 10.0  # a loaded machine may be late to close, never early
SILENT = 200


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    workdir = tmp_path_factory.mktemp("idle")
    env = {"QA_IDLE_TIMEOUT_S": str(TIMEOUT_S)}
    with QaServe(workdir / "index", workdir / "logs", env=env) as serve:  # a new, empty index
        yield serve.start()


def connect(url: str) -> socket.socket:
    address = urlsplit(url)
    return socket.create_connection((address.hostname, address.port), timeout=30)


def seconds_until_closed(sockets: list[socket.socket], since: float) -> list[float]:
    """For each socket, seconds from `since` until the server closed it (EOF or reset); inf for
    one still open `TIMEOUT_S + SLACK_S` after `since`."""
    closed = dict.fromkeys(sockets, float("inf"))
    with selectors.DefaultSelector() as selector:
        for sock in sockets:
            selector.register(sock, selectors.EVENT_READ)
        deadline = since + TIMEOUT_S + SLACK_S
        while selector.get_map() and time.monotonic() < deadline:
            for key, _ in selector.select(timeout=deadline - time.monotonic()):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                try:
                    data = sock.recv(65536)
                except ConnectionResetError:
                    data = b""
                if not data:
                    closed[sock] = time.monotonic() - since
                    selector.unregister(sock)
    return [closed[sock] for sock in sockets]


@pytest.mark.model
def test_silent_and_half_sent_connections_are_closed_while_requests_are_answered(server: str) -> None:
    started = time.monotonic()
    silent = [connect(server) for _ in range(SILENT)]
    half = connect(server)
    half.sendall(b"GET /hea")  # half a request line, then nothing
    try:
        # The server still answers while they wait.
        health = httpx.get(f"{server}/health", timeout=30)
        assert health.status_code == 200 and health.json()["status"] == "ok"
        waited = seconds_until_closed([*silent, half], started)
    finally:
        for sock in [*silent, half]:
            sock.close()
    assert all(TIMEOUT_S * 0.9 <= seconds <= TIMEOUT_S + SLACK_S for seconds in waited), sorted(waited)[-5:]
    assert httpx.get(f"{server}/health", timeout=30).status_code == 200  # and after


@pytest.mark.model
def test_a_request_head_sent_a_byte_at_a_time_does_not_keep_the_connection(server: str) -> None:
    trickle = connect(server)
    stop = threading.Event()

    def drip() -> None:
        # Each byte arrives well inside the timeout; together they never finish a request head.
        for byte in b"GET /health HTTP/1.1\r\nHost: x\r\nX-Padding: " + b"a" * 1000:
            if stop.wait(TIMEOUT_S / 4):
                return
            try:
                trickle.send(bytes([byte]))
            except OSError:  # closed by the server, as it should be
                return

    started = time.monotonic()
    sender = threading.Thread(target=drip)
    sender.start()
    try:
        [waited] = seconds_until_closed([trickle], started)
    finally:
        stop.set()
        sender.join()
        trickle.close()
    assert TIMEOUT_S * 0.9 <= waited <= TIMEOUT_S + SLACK_S, waited


@pytest.mark.model
def test_a_kept_alive_connection_is_closed_when_idle_after_its_response(server: str) -> None:
    with connect(server) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        answered = b""
        while b'"status":"ok"' not in answered:
            chunk = sock.recv(65536)
            assert chunk, answered
            answered += chunk
        assert answered.startswith(b"HTTP/1.1 200 ")
        [waited] = seconds_until_closed([sock], time.monotonic())
    assert TIMEOUT_S * 0.9 <= waited <= TIMEOUT_S + SLACK_S, waited


@pytest.mark.model
def test_a_request_whose_body_is_slower_than_the_timeout_is_still_answered(server: str) -> None:
    # Once the head is in, the request is the app's: the timeout is for connections that ask nothing.
    body = b'{"question": "who met Jeffrey in Brussels", "k": 1}'
    with connect(server) as sock:
        head = (
            f"POST /api/ask HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        )
        sock.sendall(head.encode() + body[:10])
        time.sleep(TIMEOUT_S * 1.5)
        sock.sendall(body[10:])
        answered = b""
        while chunk := sock.recv(65536):
            answered += chunk
    assert answered.startswith(b"HTTP/1.1 200 "), answered[:500]
