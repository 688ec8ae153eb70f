"""Running the app: the Session, the listening socket, uvicorn.

The socket is bound here rather than by uvicorn so that a taken port is one
clear line (uvicorn would log it in its own format), and so that port 0 can be
reported as the port the system picked.
"""

from __future__ import annotations

import errno
import signal
import socket
import sys
from typing import TYPE_CHECKING, Any

from imagen_core.errors import ImagenError, UsageError

if TYPE_CHECKING:
    import uvicorn

    from imagen_web.connections import Limits

#: Connections the kernel holds for us, which asyncio accepts in one go.
BACKLOG = 64


def bind(host: str, port: int) -> socket.socket:
    """A listening socket; host ``""`` is every interface (IPv6 and IPv4 where
    the system has both, else IPv4)."""
    shown = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    if not host:
        return _bind_everywhere(port)
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise UsageError(f"--addr {shown}: {exc.strerror or exc}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(BACKLOG)
    except OSError as exc:
        sock.close()
        raise ImagenError(
            f"cannot listen on {shown}: {exc.strerror or exc} (pick another with --addr)"
        ) from None
    return sock


def _bind_everywhere(port: int) -> socket.socket:
    if socket.has_dualstack_ipv6():
        try:
            return socket.create_server(
                ("", port), family=socket.AF_INET6, backlog=BACKLOG, dualstack_ipv6=True
            )
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ImagenError(
                    f"cannot listen on :{port}: {exc.strerror} (pick another with --addr)"
                ) from None
            # IPv6 present but not usable here (disabled in a container): IPv4 alone.
    try:
        return socket.create_server(("", port), family=socket.AF_INET, backlog=BACKLOG)
    except OSError as exc:
        raise ImagenError(
            f"cannot listen on :{port}: {exc.strerror or exc} (pick another with --addr)"
        ) from None


def url_of(sock: socket.socket, host: str) -> str:
    port = sock.getsockname()[1]
    if not host:  # every interface: the address to open on this machine
        return f"http://127.0.0.1:{port}/"
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def uvicorn_config(app: Any, limits: Limits) -> uvicorn.Config:
    """uvicorn's settings for ``app``, with ``limits`` on every connection."""
    import uvicorn

    return uvicorn.Config(
        app,
        http=limits.protocol(),
        log_level="warning",
        # The gallery may be opened as /?token=…: an access log would keep the token.
        access_log=False,
        server_header=False,
        lifespan="on",
        timeout_graceful_shutdown=5,
        backlog=BACKLOG,
    )


def run(
    host: str,
    port: int,
    *,
    config_path: str | None,
    token: str | None,
    usage_source: str,
    loopback: bool,
    request_timeout_s: float,
    max_connections: int,
    max_upload: int,
) -> None:
    from imagen_core.pipeline import Session
    from imagen_web.app import create_app
    from imagen_web.connections import Limits, connection_bound
    from imagen_web.security import LOOPBACK_NAMES

    session = Session(config_path)
    # Misconfigurations are usage errors now, not a 503 on the first call.
    session.config.queue(session.registry)
    session.source(usage_source)
    sock = bind(host, port)
    url = url_of(sock, host)

    def ready() -> None:
        notes = ["every interface"] if not host else []
        if token:
            notes.append("token required; open the gallery once as /?token=…")
        note = f" ({'; '.join(notes)})" if notes else ""
        sys.stderr.write(f"imagen serve: {url}{note}\n")
        sys.stderr.flush()

    app = create_app(
        session,
        token=token,
        usage_source=usage_source,
        # A loopback server answers only to loopback names: a page on another
        # site cannot rebind its own name to 127.0.0.1 and read the API.
        allowed_hosts=(*LOOPBACK_NAMES, host) if loopback else None,
        ready=ready,
        max_upload=max_upload,
    )
    import uvicorn

    limits = Limits(request_timeout_s=request_timeout_s, max_open=connection_bound(max_connections))
    config = uvicorn_config(app, limits)
    # uvicorn shuts down gracefully on SIGTERM, then raises the signal again
    # with the handler it found: this one makes that a clean exit 0, as for
    # `imagen worker` (Ctrl-C stays "interrupted", exit 130).
    signal.signal(signal.SIGTERM, _exit_0)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()


def _exit_0(_signum: int, _frame: object) -> None:
    raise SystemExit(0)
