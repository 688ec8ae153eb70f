"""The same tools as streamable HTTP, for ``imagen serve`` to mount at ``/mcp``.

imagen-web owns the door: its guard checks the Host header (DNS rebinding on
loopback) and the token before a request reaches these tools, so the SDK's own
Host check is off here rather than answering 421 to the names imagen serve was
told to answer to.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from contextlib import AbstractAsyncContextManager

    from imagen_core.pipeline import Session

PATH = "/mcp"


class Mounted:
    """The ASGI app answering at ``/mcp`` and the lifespan it needs (the SDK's
    session manager must run for as long as the server does)."""

    def __init__(self, session: Session) -> None:
        from mcp.server.transport_security import TransportSecuritySettings

        from imagen_mcp.server import build_server

        server = build_server(session)
        self.app: Any = server.streamable_http_app(
            streamable_http_path=PATH,
            transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        )
        self._server = server

    def lifespan(self) -> AbstractAsyncContextManager[Any]:
        return self._server.session_manager.run()
