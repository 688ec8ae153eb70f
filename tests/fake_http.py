"""What the fakes of HTTP services in tests/ share: a threaded server on
127.0.0.1 that records every request and answers scripted or computed replies,
a fake clock for retries and timeouts, and a recording progress callback.

A fake subclasses ``FakeHTTPServer`` and implements ``handle(method, target,
headers, body) -> Reply``; the protocol itself (routes, bodies, status codes)
is the fake's own.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    body: bytes
    query: dict[str, list[str]] = field(default_factory=dict)

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    def __repr__(self) -> str:
        return f"{self.method} {self.path}"


HUNG_UP = 0  # the status of a Reply that answers nothing: the client has gone


@dataclass
class Reply:
    """A scripted answer: status, JSON (or bytes) body, headers."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


class FakeHTTPServer:
    """A threaded HTTP server on a free port of 127.0.0.1, calling ``handle``."""

    def __init__(self) -> None:
        # The connection of the request being handled, per handler thread: a fake
        # that holds an answer watches it to notice the client hang up.
        self.local = threading.local()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def start(self):  # -> the subclass
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self):  # -> the subclass, started
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Reply:
        raise NotImplementedError

    def extra_headers(self, target: str, reply: Reply) -> dict[str, str]:
        """Headers every answer of this path gets (rate-limit counters, ...)."""
        return {}


def _handler(fake: FakeHTTPServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as requests' Session expects
        # Headers and body in one segment: otherwise Nagle and delayed ACKs add
        # 40 ms to every request.
        wbufsize = 64 * 1024
        disable_nagle_algorithm = True

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            fake.local.connection = self.connection
            reply = fake.handle(self.command, self.path, headers, body)
            if reply.status == HUNG_UP:  # the client went away: nothing to answer
                self.close_connection = True
                return
            if isinstance(reply.body, bytes):
                payload, kind = reply.body, "application/octet-stream"
            else:
                payload, kind = json.dumps(reply.body).encode(), "application/json"
            self.send_response(reply.status)
            names = {k.lower() for k in reply.headers}
            if "content-type" not in names:
                self.send_header("Content-Type", kind)
            for name, value in {**reply.headers, **fake.extra_headers(self.path, reply)}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_DELETE = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet: pytest shows failures, not the access log

    return Handler


class FakeTime:
    """``sleep`` records the wait and moves the clock on, without waiting; a test
    may make the Nth sleep raise (Ctrl-C while the backend waits). ``wait`` (for
    an answer on an event) waits a few real milliseconds for it, then counts its
    slice as passed on the clock; the Nth wait may raise too."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []
        self.waits = 0
        self.on_sleep: Callable[[int], None] | None = None
        self.on_wait: Callable[[int], None] | None = None

    def wait(self, event: threading.Event, seconds: float) -> bool:
        if event.wait(0.02):
            return True
        self.waits += 1
        self.now += seconds
        if self.on_wait is not None:
            self.on_wait(self.waits)
        return False

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 6))
        self.now += seconds
        if self.on_sleep is not None:
            self.on_sleep(len(self.sleeps))

    def clock(self) -> float:
        return self.now


def fake_pacing(monkeypatch: Any, module: Any) -> FakeTime:
    """Put a FakeTime behind ``module.DEFAULT_PACING`` (a backend's Pacing, kept
    of its own class with its own numbers): its ``sleep``, ``clock`` and, where
    the Pacing waits for answers, ``wait``. Retries and timeouts then run
    without waiting."""
    import attrs

    clock = FakeTime()
    pacing = module.DEFAULT_PACING
    changes: dict[str, Any] = {"sleep": clock.sleep, "clock": clock.clock}
    if hasattr(pacing, "wait"):
        changes["wait"] = clock.wait
    monkeypatch.setattr(module, "DEFAULT_PACING", attrs.evolve(pacing, **changes))
    return clock


class Steps:
    """A Progress that records every call."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int, str]] = []

    def __call__(self, done: int, total: int, message: str = "") -> None:
        self.calls.append((done, total, message))
