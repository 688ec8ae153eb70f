"""Connections `imagen serve` accepts: a deadline for every request, and a bound.

uvicorn closes an idle keep-alive connection after ``timeout_keep_alive``, but
nothing closes a connection that has sent part of a request and then waits:
a few hundred of those (slowloris) hold every file descriptor the process may
open, and the server stops accepting anyone, before any token is checked. So
each connection runs under two rules, enforced here in uvicorn's h11 protocol:

- **A deadline while the server waits for the client.** From the moment a
  connection opens (or its previous answer was sent) its request's headers
  must arrive whole within ``request_timeout_s``, and each part of the body
  within ``request_timeout_s`` of the previous one. Otherwise the connection
  is closed, with a ``408`` when part of a request had come.
- **A bound on open connections** (``max_open``). When a new connection would
  go over it, the connection that has been waiting longest for its client is
  closed to make room: a crowd of stalled connections cannot lock out one that
  sends its request at once. When every open connection is busy with a
  request the server is answering, the new one gets a ``503`` and is closed.

The state of a request is h11's (``their_state``): ``IDLE`` until the headers
are in, ``SEND_BODY`` while the body comes, ``DONE`` once it is whole.

This module imports uvicorn: it is loaded only when the server runs.
"""

from __future__ import annotations

import json
import resource
from typing import TYPE_CHECKING, Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from imagen_web.server import BACKLOG

if TYPE_CHECKING:
    import asyncio

    from uvicorn.config import Config
    from uvicorn.server import ServerState

DEFAULT_REQUEST_TIMEOUT_S = 10.0
DEFAULT_MAX_CONNECTIONS = 256
ACCEPT_BURSTS = 4
REFUSED_LINGER_S = 1.0


def connection_bound(wanted: int) -> int:
    """``wanted``, cut to what the open-file limit leaves: asyncio accepts up to
    ``BACKLOG`` connections at a time, and a few such bursts come before the
    first of them is counted (``connection_made``), so ``ACCEPT_BURSTS`` of them
    are set aside; then half of the rest, the other half being for what requests
    open (images, sidecars, the queue, the ledger)."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return wanted
    return max(1, min(wanted, (soft - ACCEPT_BURSTS * BACKLOG) // 2))


def _raw_response(status: str, code: str, message: str, extra: bytes = b"") -> bytes:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    return (
        f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n".encode()
        + extra
        + b"\r\n"
        + body
    )


class Limits:
    """What every connection of one server shares: the rules, and the
    connections now waiting for their client, the longest-waiting first."""

    def __init__(self, *, request_timeout_s: float, max_open: int) -> None:
        self.request_timeout_s = request_timeout_s
        self.max_open = max_open
        self.open: set[GuardedH11] = set()
        self.waiting: dict[GuardedH11, None] = {}  # insertion order: the oldest first

    def protocol(self) -> type[GuardedH11]:
        """The protocol class to give uvicorn (``Config(http=...)``), bound to these limits."""
        limits = self

        class Bound(GuardedH11):
            def __init__(
                self,
                config: Config,
                server_state: ServerState,
                app_state: dict[str, Any],
                _loop: asyncio.AbstractEventLoop | None = None,
            ) -> None:
                super().__init__(config, server_state, app_state, _loop, limits=limits)

        return Bound


class GuardedH11(H11Protocol):
    """uvicorn's h11 protocol with a request deadline and the connection bound."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        limits: Limits,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.limits = limits
        self._deadline: asyncio.TimerHandle | None = None
        self._partial = False  # part of the awaited request has come
        self._refused = False

    # ------------------------------------------------------------- asyncio
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[arg-type]
        limits = self.limits
        if len(limits.open) >= limits.max_open and not self._make_room():
            self._refuse()
            return
        limits.open.add(self)
        self._wait()

    def _refuse(self) -> None:
        """A 503, then the connection ends: our side at once, and the whole of it
        a moment later. Closing at once, with the request still unread, would
        make the kernel reset the connection and the client might never read
        the answer."""
        self._refused = True
        self.transport.write(
            _raw_response(
                "503 Service Unavailable",
                "too_many_connections",
                f"the server is answering {len(self.limits.open)} requests; try again shortly",
                b"retry-after: 1\r\n",
            )
        )
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.loop.call_later(REFUSED_LINGER_S, self.transport.close)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # read, and dropped
        if self._deadline is None and self.conn.their_state is h11.IDLE:
            self._wait()  # a kept-alive connection starts its next request
        self._partial = True
        super().data_received(data)
        state = self.conn.their_state
        if state is h11.SEND_BODY:
            self._wait()  # the body moves: its next part gets a fresh deadline
        elif state is not h11.IDLE:
            self._stop_waiting()  # the request is whole (or the connection is done)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
            self._partial = False
            self._wait()  # uvicorn's keep-alive timeout usually closes it first

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_waiting()
        self.limits.open.discard(self)
        super().connection_lost(exc)

    # ------------------------------------------------------------- deadline
    def _wait(self) -> None:
        self._stop_waiting()
        self._deadline = self.loop.call_later(self.limits.request_timeout_s, self._expired)
        self.limits.waiting[self] = None

    def _stop_waiting(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        self.limits.waiting.pop(self, None)

    def _expired(self) -> None:
        self._deadline = None
        self._close(
            "408 Request Timeout",
            "request_timeout",
            f"the request did not arrive within {self.limits.request_timeout_s:g} s",
        )

    def _close(self, status: str, code: str, message: str) -> None:
        self._stop_waiting()
        if self.transport.is_closing():
            return
        # A 408 only where no answer has begun: before the request's headers.
        if self._partial and self.conn.their_state is h11.IDLE and self.conn.our_state is h11.IDLE:
            self.transport.write(_raw_response(status, code, message))
        self.transport.close()

    def _make_room(self) -> bool:
        """Close the connection that has waited longest for its client, if any."""
        for oldest in self.limits.waiting:
            if oldest is not self:
                oldest._close(
                    "408 Request Timeout",
                    "request_timeout",
                    "the server needed the connection; send the request at once",
                )
                self.limits.open.discard(oldest)
                return True
        return False
