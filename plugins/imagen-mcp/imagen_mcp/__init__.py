"""imagen-mcp: ``imagen mcp``, imagen's backends as MCP tools for agents.

Registering is cheap: only the click command is imported. The ``mcp`` SDK (and
pydantic under it) is imported when ``imagen mcp`` runs or ``imagen serve``
mounts ``/mcp``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from imagen_core import hookimpl

if TYPE_CHECKING:
    import click


@hookimpl
def register_commands(cli: click.Group) -> None:
    from imagen_mcp.command import mcp

    cli.add_command(mcp)
