"""The same tools at /mcp in a real `imagen serve` process, reached by the SDK's
streamable HTTP client, behind the server's token."""

from __future__ import annotations

from pathlib import Path

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.helpers import write_config
from tests.web.processes import cli_env, serve
from tests.web.test_e2e import TOKEN

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def env(isolated_env: Path, output_dir: Path) -> dict[str, str]:
    config = write_config(
        isolated_env, f"output: {{dir: '{output_dir}', preview: off}}\nbackends:\n  mock: {{}}\n"
    )
    return cli_env(config, "imagen-mock,imagen-web,imagen-mcp")


def client(url: str, token: str | None) -> Client:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    http = httpx2.AsyncClient(headers=headers, timeout=60)
    return Client(streamable_http_client(url + "mcp", http_client=http))


async def test_the_tools_answer_at_mcp_behind_the_token(env, output_dir) -> None:
    server, url = serve(env, "--token", TOKEN)
    try:
        async with client(url, TOKEN) as session:
            names = {tool.name for tool in (await session.list_tools()).tools}
            assert {"generate_image", "list_backends"} <= names
            result = await session.call_tool("generate_image", {"prompt": "over http", "seed": 5})
            assert not result.is_error
            path = Path(result.structured_content["path"])
            assert path.is_relative_to(output_dir) and path.is_file()
        ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
        async with httpx2.AsyncClient() as http:
            for headers in ({}, {"authorization": "Bearer wrong-token-0123456789"}):
                refused = await http.post(url + "mcp", json=ping, headers=headers)
                assert refused.status_code == 401, headers
                assert refused.json()["error"]["code"] == "unauthorized"
    finally:
        server.stop()
