"""What `imagen serve` does with connections, over real sockets against a real
server process: a request that stalls is closed, stalled connections cannot use
up the process's file descriptors, `--addr :PORT` listens everywhere."""

from __future__ import annotations

import contextlib
import re
import socket
from collections.abc import Iterator

import pytest

from imagen_web import command, connections
from tests.web.test_e2e import env, raw_get, serve  # noqa: F401 (env is a fixture)

pytestmark = pytest.mark.slow

TOKEN = "connections-token-0123456789"


def address(url: str) -> tuple[str, int]:
    host, port = re.match(r"http://([^:]+):(\d+)/", url).groups()
    return host, int(port)


def read_all(conn: socket.socket) -> bytes:
    """Everything the server sends until it closes (the socket's timeout bounds each wait)."""
    data = b""
    while chunk := conn.recv(65536):
        data += chunk
    return data


@contextlib.contextmanager
def opened(url: str, first_bytes: bytes = b"") -> Iterator[socket.socket]:
    conn = socket.create_connection(address(url), timeout=30)
    try:
        if first_bytes:
            conn.sendall(first_bytes)
        yield conn
    finally:
        conn.close()


def test_the_defaults_in_help_are_the_servers():
    assert command.DEFAULT_REQUEST_TIMEOUT_S == connections.DEFAULT_REQUEST_TIMEOUT_S
    assert command.DEFAULT_MAX_CONNECTIONS == connections.DEFAULT_MAX_CONNECTIONS


def test_a_request_that_stalls_is_closed(env):  # noqa: F811
    server, url = serve(env, "--request-timeout", "0.5")
    host = "Host: 127.0.0.1\r\n"
    try:
        # Part of the headers, then nothing: a 408, then the connection closes.
        with opened(url, f"GET /v1/backends HTTP/1.1\r\n{host}".encode()) as conn:
            answer = read_all(conn)
        assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
        assert answer.endswith(
            b'{"error": {"code": "request_timeout", '
            b'"message": "the request did not arrive within 0.5 s"}}'
        )
        # Nothing at all: closed without a word.
        with opened(url) as conn:
            assert read_all(conn) == b""
        # Whole headers, part of the body: closed (the handler's wait ends quietly).
        body_start = f"POST /v1/jobs HTTP/1.1\r\n{host}".encode() + (
            b'Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"prompt": "a'
        )
        with opened(url, body_start) as conn:
            assert read_all(conn) == b""
        # The server lives on, and says nothing of it in its log.
        assert raw_get(url, "/v1/backends")[0] == 200
        assert server.proc.poll() is None
        assert not [line for line in server.lines if "Traceback" in line], server.lines
    finally:
        server.stop()


def test_stalled_connections_cannot_use_up_the_file_descriptors(env):  # noqa: F811
    # 400 open files at most, so 72 connections; 1,000 stalled clients, each
    # with part of its headers sent, then one that asks at once.
    server, url = serve(env, "--token", TOKEN, max_files=400)
    stalled: list[socket.socket] = []
    try:
        for _ in range(1000):
            conn = socket.create_connection(address(url), timeout=30)
            conn.sendall(b"GET /v1/backends HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            stalled.append(conn)
        with opened(
            url,
            b"GET /v1/backends HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Authorization: Bearer " + TOKEN.encode() + b"\r\nConnection: close\r\n\r\n",
        ) as conn:
            answer = read_all(conn)
        assert answer.startswith(b"HTTP/1.1 200 OK\r\n"), answer[:200]
        # The oldest stalled connection was closed to make room: a 408, or a
        # reset when it was closed before its bytes were read.
        with contextlib.suppress(ConnectionResetError):
            assert read_all(stalled[0]).startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    finally:
        for conn in stalled:
            conn.close()
        server.stop()
    assert not [line for line in server.lines if "Too many open files" in line], server.lines


def test_addr_without_a_host_listens_on_every_interface(env):  # noqa: F811
    server, url = serve(env, "--addr", ":0", "--token", TOKEN)
    try:
        assert server.lines[-1].endswith(
            "(every interface; token required; open the gallery once as /?token=…)"
        )
        port = address(url)[1]
        reachable = ["127.0.0.1"]
        if socket.has_dualstack_ipv6():
            reachable.append("::1")
        for name in reachable:
            for token, status in ((None, b"401"), (TOKEN, b"200")):
                auth = f"Authorization: Bearer {token}\r\n" if token else ""
                with socket.create_connection((name, port), timeout=30) as conn:
                    conn.sendall(
                        f"GET /v1/backends HTTP/1.1\r\nHost: example.org\r\n{auth}"
                        "Connection: close\r\n\r\n".encode()
                    )
                    assert read_all(conn).split(b" ", 2)[1] == status, (name, token)
    finally:
        server.stop()
