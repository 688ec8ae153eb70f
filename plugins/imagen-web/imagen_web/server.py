"""Running the app: the Session, the listening socket, uvicorn.

The socket is bound here rather than by uvicorn so that a taken port is one
clear line (uvicorn would log it in its own format), and so that port 0 can be
reported as the port the system picked.
"""

from __future__ import annotations

import signal
import socket
import sys

from imagen_core.errors import ImagenError, UsageError


def bind(host: str, port: int) -> socket.socket:
    shown = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
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
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise ImagenError(
            f"cannot listen on {shown}: {exc.strerror or exc} (pick another with --addr)"
        ) from None
    return sock


def url_of(sock: socket.socket, host: str) -> str:
    port = sock.getsockname()[1]
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def run(
    host: str,
    port: int,
    *,
    config_path: str | None,
    token: str | None,
    usage_source: str,
    loopback: bool,
    max_upload: int,
) -> None:
    from imagen_core.pipeline import Session
    from imagen_web.app import create_app
    from imagen_web.security import LOOPBACK_NAMES

    session = Session(config_path)
    # Misconfigurations are usage errors now, not a 503 on the first call.
    session.config.queue(session.registry)
    session.source(usage_source)
    sock = bind(host, port)
    url = url_of(sock, host)

    def ready() -> None:
        note = " (token required; open the gallery once as /?token=…)" if token else ""
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

    config = uvicorn.Config(
        app,
        log_level="warning",
        # The gallery may be opened as /?token=…: an access log would keep the token.
        access_log=False,
        server_header=False,
        lifespan="on",
        timeout_graceful_shutdown=5,
    )
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
