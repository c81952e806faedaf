"""Closing HTTP connections that do not send a request in time (`qa serve --idle-timeout`).

uvicorn 0.54 arms its keep-alive timer (`timeout_keep_alive`, `--timeout-keep-alive`) only once a
response is complete, in both its h11 and httptools protocols, and `data_received` cancels it. So
a connection that never sends its first byte, or sends part of a request line and stops, is held
open forever: each costs the server a socket and a file descriptor, and a few hundred of them
exhaust a process's limit (only the zttp HTTP/2 dispatcher times out a silent connection).

This protocol gives every connection a deadline for a complete request head: it starts when the
connection opens and again after each response, and is not moved by bytes that arrive before
the head is complete, so a client that trickles a header a byte at a time is closed too. Once the
head is in, the request belongs to the app and the timer is off.
"""

from __future__ import annotations

import asyncio

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol


class IdleTimeoutProtocol(H11Protocol):
    """uvicorn's h11 protocol, closing a connection that has no complete request head within
    `idle_timeout_s` of opening or of its last response."""

    idle_timeout_s: float  # set by `idle_timeout_protocol`
    _idle_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._start_idle_timer()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        # h11 leaves IDLE when it has parsed a whole request head; a partial one keeps the
        # deadline it had.
        if self.conn.their_state is not h11.IDLE:
            self._stop_idle_timer()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # IDLE again: a keep-alive connection waits for its next request. Not IDLE: a pipelined
        # request is already being handled, or the connection is closing.
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self._start_idle_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_idle_timer()
        super().connection_lost(exc)

    def _start_idle_timer(self) -> None:
        self._stop_idle_timer()
        self._idle_timer = self.loop.call_later(self.idle_timeout_s, self._close_idle)

    def _stop_idle_timer(self) -> None:
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None

    def _close_idle(self) -> None:
        self._idle_timer = None
        if not self.transport.is_closing():
            # Closed without a response, as uvicorn's own keep-alive timeout does: a connection
            # that asked nothing gets no answer, and an attacker's gets no bytes.
            self.transport.close()


def idle_timeout_protocol(seconds: float) -> type[IdleTimeoutProtocol]:
    """The protocol class for uvicorn's `http=` with this deadline."""
    return type("IdleTimeoutProtocol", (IdleTimeoutProtocol,), {"idle_timeout_s": seconds})
