"""A server busy generating still answers reads: 45 `POST /v1/generate` on a
backend that does not finish must not make `GET /v1/images` wait.

The server is the real thing (uvicorn with imagen's settings, on a socket of
127.0.0.1) run in a thread of the test, so that the backend can be a test
plugin that waits for the test's word."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest
import uvicorn

from imagen_core import Session, hookimpl
from imagen_core.models import Result
from imagen_web.app import create_app
from imagen_web.connections import Limits
from imagen_web.server import bind, uvicorn_config
from tests.helpers import registered, write_config

GENERATIONS = 45  # more than the 40 threads of Starlette's pool


@attrs.frozen
class GateConfig:
    pass


class Gate:
    """A backend that waits until the test opens the gate."""

    entered = threading.Event()
    open = threading.Event()

    def __init__(self, config: GateConfig) -> None:
        self.config = config

    def generate(self, request, progress):
        from imagen_mock.backend import MockBackend, MockConfig

        Gate.entered.set()
        while not Gate.open.wait(0.05):  # short slices: a cancel can land between them
            pass
        made = MockBackend(MockConfig()).generate(request, progress)
        return attrs.evolve(made, model="gate") if isinstance(made, Result) else made


class GatePlugin:
    @hookimpl
    def register_backends(self, register):
        register("gate", Gate, config=GateConfig)


class Counting:
    """ASGI middleware: how many requests to a path the app has begun."""

    def __init__(self, app, path: str) -> None:
        self.app = app
        self.path = path
        self.begun = 0
        self.changed = threading.Condition()

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["path"] == self.path:
            with self.changed:
                self.begun += 1
                self.changed.notify_all()
        await self.app(scope, receive, send)


@contextlib.contextmanager
def running(app, max_open: int = 256) -> Iterator[int]:
    sock = bind("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn_config(app, Limits(request_timeout_s=60, max_open=max_open)))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        for _ in range(600):
            if server.started:
                break
            thread.join(0.05)
        assert server.started, "the server did not start"
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


def request(port: int, method: str, path: str, body: dict[str, object] | None = None) -> bytes:
    data = json.dumps(body).encode() if body is not None else b""
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
    if body is not None:
        head += f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
    return (head + "\r\n").encode() + data


def answer(conn: socket.socket) -> tuple[int, bytes]:
    data = b""
    while chunk := conn.recv(65536):
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


@pytest.fixture
def gate(pm) -> Iterator[None]:
    Gate.entered.clear()
    Gate.open.clear()
    with registered(pm, GatePlugin(), "gate"):
        yield
    Gate.open.set()


def test_reads_answer_while_generations_fill_the_server(gate, isolated_env, output_dir: Path):
    config = write_config(
        isolated_env,
        f"output: {{dir: '{output_dir}', preview: off}}\n"
        "backends:\n  gate: {type: gate}\n  mock: {type: mock}\n",
    )
    app = Counting(create_app(Session(config)), "/v1/generate")
    body = {"prompt": "a slow one", "backend": "gate", "width": 32, "height": 32}
    with running(app) as port:
        pending = []
        try:
            for _ in range(GENERATIONS):
                conn = socket.create_connection(("127.0.0.1", port), timeout=60)
                conn.sendall(request(port, "POST", "/v1/generate", body))
                pending.append(conn)
            with app.changed:
                assert app.changed.wait_for(lambda: app.begun == GENERATIONS, timeout=60)
            assert Gate.entered.wait(60)

            # Every generation is waiting for the gate: reads answer all the same.
            for path in ("/v1/images", "/v1/jobs", "/v1/backends", "/v1/usage"):
                with socket.create_connection(("127.0.0.1", port), timeout=60) as conn:
                    conn.sendall(request(port, "GET", path))
                    status, _ = answer(conn)
                assert (path, status) == (path, 200)
            assert not Gate.open.is_set()  # ... while no generation could finish

            # A generation on another backend does not wait for the gate either.
            with socket.create_connection(("127.0.0.1", port), timeout=60) as conn:
                conn.sendall(request(port, "POST", "/v1/generate", {**body, "backend": "mock"}))
                status, made = answer(conn)
            assert status == 200 and json.loads(made)["backend"] == "mock"

            Gate.open.set()
            results = [answer(conn) for conn in pending]
        finally:
            Gate.open.set()
            for conn in pending:
                conn.close()
    assert [status for status, _ in results] == [200] * GENERATIONS
    assert {json.loads(made)["model"] for _, made in results} == {"gate"}


def test_when_every_connection_is_busy_a_new_one_is_told_to_retry(
    gate, isolated_env, output_dir: Path
):
    """At the bound, a stalled connection makes room (see test_connections);
    connections whose requests are being answered do not: the newcomer gets a
    503 with Retry-After, and the busy ones their answers."""
    config = write_config(
        isolated_env,
        f"output: {{dir: '{output_dir}', preview: off}}\nbackends:\n  gate: {{type: gate}}\n",
    )
    app = Counting(create_app(Session(config)), "/v1/generate")
    body = {"prompt": "busy", "backend": "gate", "width": 32, "height": 32}
    with running(app, max_open=3) as port:
        busy = []
        try:
            for _ in range(3):
                conn = socket.create_connection(("127.0.0.1", port), timeout=60)
                conn.sendall(request(port, "POST", "/v1/generate", body))
                busy.append(conn)
            with app.changed:
                assert app.changed.wait_for(lambda: app.begun == 3, timeout=60)
            with socket.create_connection(("127.0.0.1", port), timeout=60) as conn:
                conn.sendall(request(port, "GET", "/v1/backends"))
                data = b""
                while chunk := conn.recv(65536):
                    data += chunk
            head, _, refused = data.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
            assert b"\r\nretry-after: 1\r\n" in head + b"\r\n"
            assert json.loads(refused)["error"]["code"] == "too_many_connections"
            Gate.open.set()
            assert [answer(conn)[0] for conn in busy] == [200, 200, 200]
        finally:
            Gate.open.set()
            for conn in busy:
                conn.close()
