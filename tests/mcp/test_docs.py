"""docs/mcp.md's tool table names every tool the server lists, with exactly its
arguments, so the docs and the code cannot drift apart."""

from __future__ import annotations

import re
from pathlib import Path

import anyio

from imagen_core.pipeline import Session
from imagen_mcp.server import build_server

DOC = Path(__file__).resolve().parents[2] / "docs" / "mcp.md"


def documented() -> dict[str, list[str]]:
    """tool -> its arguments, from the table; "as `other`" means other's arguments."""
    rows = re.findall(r"^\| `(\w+)` \|([^|]*)\|", DOC.read_text(), re.M)
    table = {name: re.findall(r"`(\w+)`", args) for name, args in rows}
    for name, args in rows:
        if same := re.fullmatch(r"\s*as `(\w+)`\s*", args):
            table[name] = table[same.group(1)]
    return table


def test_every_tool_is_documented_with_its_arguments(isolated_env) -> None:
    server = build_server(Session())
    tools = anyio.run(server.list_tools)
    listed = {tool.name: list(tool.input_schema["properties"]) for tool in tools}
    docs = documented()
    assert set(docs) == set(listed)
    for name, args in listed.items():
        assert sorted(docs[name]) == sorted(args), name
