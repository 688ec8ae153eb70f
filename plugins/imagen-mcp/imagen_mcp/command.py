"""``imagen mcp``: the MCP server on stdin/stdout."""

from __future__ import annotations

import click

from imagen_core.cli import common


@click.command("mcp")
@common
def mcp(config_path: str | None) -> None:
    """Serve the configured backends as MCP tools on stdin/stdout.

    For agents: Claude Desktop, Claude Code, VS Code and any MCP client start
    this command and call its tools (generate_image, edit_image,
    compare_backends, list_backends, usage_summary, submit_job, get_job).
    Every image lands on disk with its sidecar and in the ledger, as with
    `imagen generate`. Nothing but the protocol is written to stdout.
    """
    from imagen_core.pipeline import Session
    from imagen_mcp.server import build_server

    # Config problems stop here, as one line and exit 2, before the protocol starts.
    session = Session(config_path)
    build_server(session).run()
