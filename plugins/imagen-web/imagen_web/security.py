"""What keeps `imagen serve` from being a door into the machine.

- It listens on loopback unless told otherwise, and a non-loopback address
  needs a token (``check_bind``).
- With a token, every ``/v1`` and ``/images`` request must carry it as
  ``Authorization: Bearer <token>``, compared in constant time. ``<img>`` tags
  cannot send headers, so ``GET /images/...`` also takes the token from the
  ``imagen_token`` cookie, which the gallery sets ``SameSite=Strict`` (no other
  site's page can make the browser send it).
- Request bodies are capped (413) before they are read whole, whatever
  ``Content-Length`` claims: 64 KiB, or ``max_upload`` on the routes that
  take images.
- ``POST`` bodies must be ``application/json``: a cross-site form can only send
  "simple" content types, so another site's page cannot make a browser on this
  machine submit jobs (which may cost money) through a token-less loopback server.
  The routes that take images also take ``multipart/form-data``, a simple type:
  those refuse a form whose ``Origin`` is another site (``uploads.check_origin``).
- ``/images/<path>`` resolves the path and serves it only when its real path is
  inside ``output.dir``'s real path (``resolve_inside``).
- On loopback, only loopback ``Host`` headers are served (DNS rebinding).
"""

from __future__ import annotations

import hmac
import ipaddress
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, MutableMapping, Sequence

    Scope = MutableMapping[str, Any]
    Message = MutableMapping[str, Any]
    Receive = Callable[[], Awaitable[Message]]
    Send = Callable[[Message], Awaitable[None]]
    ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

DEFAULT_ADDR = "127.0.0.1:8080"
MAX_BODY_BYTES = 64 * 1024
MIN_TOKEN_CHARS = 16
TOKEN_COOKIE = "imagen_token"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


class AddressError(ValueError):
    """A bad ``--addr`` or a missing token; the message is the one line to print."""


def parse_addr(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:8080`` for IPv6) -> (host, port). Port 0 picks a free
    one; no host (``:8080``) is every interface, host ``""``."""
    host, sep, port_text = text.strip().rpartition(":")
    if not sep or not (port_text.isascii() and port_text.isdigit()):
        raise AddressError(f"--addr {text!r} is not HOST:PORT, e.g. {DEFAULT_ADDR}")
    port = int(port_text)
    if port > 65535:
        raise AddressError(f"--addr {text!r}: port must be 0-65535, got {port}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise AddressError(f"--addr {text!r}: write an IPv6 host in brackets, e.g. [::1]:8080")
    return host, port


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve anywhere
        return False


def check_bind(host: str, token: str | None) -> None:
    """Refuse a non-loopback address without a token, and a token too short to guess."""
    if token is not None and len(token) < MIN_TOKEN_CHARS:
        raise AddressError(
            f"--token must be at least {MIN_TOKEN_CHARS} characters; make one with "
            "`python -c 'import secrets; print(secrets.token_urlsafe())'`"
        )
    if token is None and not is_loopback(host):
        where = host or "without a host (every interface)"
        raise AddressError(
            f"--addr {where} is reachable from other machines: set a token with --token "
            "or IMAGEN_SERVE_TOKEN (or listen on 127.0.0.1)"
        )


def token_matches(expected: str, given: str | None) -> bool:
    if given is None:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())


def cookie_token(header: str) -> str | None:
    """The token of the ``imagen_token`` cookie, URL-decoded as the gallery
    stores it (``encodeURIComponent``: a base64 token's ``+/=`` are ``%2B%2F%3D``
    there). Parsed as browsers write the header, one ``name=value`` per ``;``:
    another cookie of the host that ``http.cookies`` finds malformed must not
    hide this one."""
    from urllib.parse import unquote

    for part in header.split(";"):
        name, sep, value = part.partition("=")
        if sep and name.strip() == TOKEN_COOKIE:
            return unquote(value.strip(), errors="replace") if value.strip() else None
    return None


def resolve_inside(root: Path, relative: str) -> Path | None:
    """The file ``relative`` names under ``root``, or None when it is not an image
    file whose real path (symlinks followed) is inside ``root``'s real path."""
    if not relative or "\x00" in relative or relative.startswith(("/", "\\")):
        return None
    parts = Path(relative).parts
    if any(part.startswith(".") for part in parts):  # "..", and hidden temp files
        return None
    if Path(relative).suffix.lower() not in IMAGE_SUFFIXES:
        return None
    try:
        real_root = root.resolve(strict=True)
        real = (real_root / relative).resolve(strict=True)
    except (OSError, RuntimeError):  # missing, or a symlink loop
        return None
    if not real.is_relative_to(real_root) or not real.is_file():
        return None
    return real


def host_name(header: str) -> str:
    """The name of a Host header without its port: ``[::1]:8080`` -> ``::1``."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1 : header.find("]")] if "]" in header else header
    return header.rpartition(":")[0] if header.count(":") == 1 else header


class BodyTooLarge(Exception):
    pass


class Guard:
    """ASGI middleware: token check on /v1 and /images, body size limit, headers.

    A pure ASGI middleware (not Starlette's BaseHTTPMiddleware) so that bodies
    are counted as they stream in."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        token: str | None,
        max_body: int = MAX_BODY_BYTES,
        allowed_hosts: Sequence[str] | None = None,
        upload_paths: Sequence[str] = (),
        max_upload: int | None = None,
    ) -> None:
        self.app = app
        self.token = token
        self.max_body = max_body
        # Routes that take images: their bodies may be up to max_upload.
        self.upload_paths = frozenset(upload_paths)
        self.max_upload = max_body if max_upload is None else max_upload
        self.allowed_hosts = None if allowed_hosts is None else {h.lower() for h in allowed_hosts}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        from starlette.datastructures import Headers

        headers = Headers(scope=scope)
        path: str = scope["path"]
        limit = self.max_upload if path in self.upload_paths else self.max_body
        problem = self._problem(headers, path, limit)
        if problem is not None:
            status, code, message = problem
            extra = {"www-authenticate": 'Bearer realm="imagen"'} if status == 401 else None
            await _reject(scope, receive, send, status, code, message, extra)
            return
        await self.app(scope, self._counting(receive, limit), _with_headers(send))

    def _problem(self, headers: Any, path: str, limit: int) -> tuple[int, str, str] | None:
        """Why the request is refused before the app sees it, or None."""
        host = host_name(headers.get("host", ""))
        if self.allowed_hosts is not None and host not in self.allowed_hosts:
            return 400, "bad_host", "this server answers to localhost only"
        guarded = path.startswith(("/v1/", "/images/")) or path == "/mcp"
        if (
            self.token is not None
            and guarded
            and not token_matches(self.token, self._given(headers, path))
        ):
            return 401, "unauthorized", "send the server's token: `Authorization: Bearer <token>`"
        length = headers.get("content-length")
        if length is not None and not (length.isascii() and length.isdigit()):
            return 400, "bad_request", "Content-Length is not a number"
        if length is not None and int(length) > limit:
            return 413, "body_too_large", _too_large(limit)
        return None

    def _given(self, headers: Any, path: str) -> str | None:
        scheme, _, value = headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return str(value.strip())
        if path.startswith("/images/"):
            return cookie_token(headers.get("cookie", ""))
        return None

    def _counting(self, receive: Receive, limit: int) -> Receive:
        seen = 0
        message_text = _too_large(limit)

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(message_text)
            return message

        return counted


def _too_large(limit: int) -> str:
    if limit >= 2**20:
        return f"the request body is over {limit // 2**20} MiB (imagen serve --max-upload)"
    return f"the request body is over {limit // 1024} KiB"


SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    # The gallery may be opened with ?token=: never send the URL to anyone.
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]

PAGE_CSP = (
    "default-src 'self'; img-src 'self' data: blob:; script-src 'self'; style-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


def _with_headers(send: Send) -> Send:
    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
        await send(message)

    return sending


async def _reject(
    scope: Scope,
    receive: Receive,
    send: Send,
    status: int,
    code: str,
    message: str,
    headers: dict[str, str] | None = None,
) -> None:
    from starlette.responses import JSONResponse

    from imagen_web.openai_api import body_for

    body = body_for(scope["path"], status, code, message)
    response = JSONResponse(body, status_code=status, headers=headers)
    await response(scope, receive, _with_headers(send))
