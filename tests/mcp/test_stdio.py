"""`imagen mcp` driven by the official MCP SDK's own client over stdio: a real
subprocess, the real handshake, the tools as an agent calls them."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import shutil
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, StdioServerParameters
from mcp.types import ImageContent, TextContent
from PIL import Image

pytestmark = pytest.mark.anyio

IMAGEN = shutil.which("imagen", path=str(Path(sys.executable).parent))
TOOLS = {
    "generate_image",
    "edit_image",
    "compare_backends",
    "list_backends",
    "usage_summary",
    "submit_job",
    "get_job",
}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def home(isolated_env: Path) -> Path:
    return isolated_env


def write_config(home: Path, extra: str = "") -> Path:
    config = home / "imagen.yaml"
    config.write_text(
        f"""
output:
  dir: {home / "out"}
  preview: off
backends:
  mock: {{type: mock}}
  slow: {{type: mock, latency_s: 120}}
  broken: {{type: mock, fail: "the GPU caught fire"}}
{extra}
"""
    )
    return config


def server(home: Path, config: Path) -> Client:
    assert IMAGEN, "the imagen script is installed beside this Python"
    env = {
        "HOME": str(home),
        "PATH": os.environ["PATH"],
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "IMAGEN_LOAD_PLUGINS": "imagen-mock,imagen-mcp",
    }
    params = StdioServerParameters(command=IMAGEN, args=["mcp", "--config", str(config)], env=env)
    return Client(params)


def image_of(result: Any) -> Image.Image:
    block = next(b for b in result.content if isinstance(b, ImageContent))
    image = Image.open(io.BytesIO(base64.b64decode(block.data)))
    assert block.mime_type == Image.MIME[image.format]
    return image


def text_of(result: Any) -> str:
    return "\n".join(b.text for b in result.content if isinstance(b, TextContent))


async def test_tools_are_listed_with_descriptions_and_typed_arguments(home: Path) -> None:
    async with server(home, write_config(home)) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert set(tools) == TOOLS
    for tool in tools.values():
        assert tool.description and len(tool.description) > 40, tool.name
    generate = tools["generate_image"].input_schema
    assert generate["required"] == ["prompt"]
    props = generate["properties"]
    assert props["prompt"]["type"] == "string"
    assert props["seed"]["type"] == "integer"
    assert "ctx" not in props  # the injected context is not an argument
    assert props["images"]["anyOf"][0] == {"items": {"type": "string"}, "type": "array"}
    assert tools["usage_summary"].input_schema["properties"]["group_by"]["enum"] == [
        "week",
        "backend",
        "model",
        "caller",
    ]


async def test_generate_returns_the_image_and_records_it_like_the_cli(home: Path) -> None:
    config = write_config(home)
    async with server(home, config) as client:
        result = await client.call_tool(
            "generate_image", {"prompt": "a lighthouse at dusk", "seed": 42, "size": "320x200"}
        )
        assert not result.is_error, text_of(result)
        data = result.structured_content
        assert data["seed"] == 42 and data["backend"] == "mock"
        assert (data["width"], data["height"]) == (320, 200)
        path = Path(data["path"])
        assert path.is_file() and path.is_relative_to(home / "out")
        # small enough: the file itself is the preview, byte for byte
        block = next(b for b in result.content if isinstance(b, ImageContent))
        assert base64.b64decode(block.data) == path.read_bytes()
        sidecar = json.loads(Path(data["sidecar"]).read_text())
        assert sidecar["prompt"] == "a lighthouse at dusk" and sidecar["seed"] == 42
        assert str(path) in text_of(result)

        usage = await client.call_tool("usage_summary", {"group_by": "backend"})
        assert usage.structured_content["groups"] == [
            {"key": "mock", "images": 1, "failed": 0, "cost_usd": 0.0, "cost_unknown": 0}
        ]


async def test_a_large_image_comes_as_a_preview_with_the_full_path_beside_it(home: Path) -> None:
    async with server(home, write_config(home)) as client:
        result = await client.call_tool("generate_image", {"prompt": "wide", "size": "2400x1200"})
    assert not result.is_error, text_of(result)
    preview = image_of(result)
    assert max(preview.size) == 1024 and preview.size[0] == 2 * preview.size[1]
    full = Image.open(result.structured_content["path"])
    assert full.size == (2400, 1200)


async def test_errors_are_tool_errors_with_imagens_message(home: Path) -> None:
    async with server(home, write_config(home)) as client:
        unknown = await client.call_tool("generate_image", {"prompt": "x", "backend": "nope"})
        assert unknown.is_error and "unknown backend 'nope'" in text_of(unknown)
        size = await client.call_tool("generate_image", {"prompt": "x", "size": "12x"})
        assert size.is_error and "'12x' is not WIDTHxHEIGHT" in text_of(size)
        failed = await client.call_tool("generate_image", {"prompt": "x", "backend": "broken"})
        assert failed.is_error and "the GPU caught fire" in text_of(failed)
        missing = await client.call_tool(
            "generate_image", {"prompt": "x", "images": [str(home / "no.png")]}
        )
        assert missing.is_error and "no.png" in text_of(missing)
        # the server lives on after every failure
        ok = await client.call_tool("generate_image", {"prompt": "x", "size": "64x64"})
        assert not ok.is_error


async def test_progress_arrives_and_cancel_stops_the_backend_call(home: Path) -> None:
    config = write_config(home)
    steps: list[tuple[float, float | None]] = []
    started = anyio.Event()

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        steps.append((progress, total))
        started.set()

    async with server(home, config) as client:
        async with anyio.create_task_group() as group:

            async def call() -> None:
                await client.call_tool(
                    "generate_image",
                    {"prompt": "slow", "backend": "slow"},
                    progress_callback=on_progress,
                )

            group.start_soon(call)
            with anyio.fail_after(60):
                await started.wait()  # the backend is running: it reported a step
            group.cancel_scope.cancel()
        assert steps and steps[0][1] is not None and steps[0][0] <= steps[0][1]

        # The backend call stopped: the ledger records the interrupted attempt.
        with anyio.fail_after(60):
            while True:
                usage = await client.call_tool("usage_summary", {"group_by": "backend"})
                groups = usage.structured_content["groups"]
                if groups:
                    break
                await anyio.sleep(0.05)
        assert groups == [
            {"key": "slow", "images": 0, "failed": 1, "cost_usd": 0.0, "cost_unknown": 0}
        ]
        after = await client.call_tool("generate_image", {"prompt": "next", "size": "64x64"})
        assert not after.is_error, text_of(after)
    assert not list((home / "out").rglob("*slow*.png"))


async def test_list_backends_shows_capabilities_and_problems(home: Path) -> None:
    config = write_config(home)
    config.write_text(config.read_text().replace("  broken:", "  gone: {type: nosuch}\n  broken:"))
    async with server(home, config) as client:
        result = await client.call_tool("list_backends", {})
    rows = {row["name"]: row for row in result.structured_content["backends"]}
    assert rows["mock"]["default"] is True
    assert rows["mock"]["capabilities"]["text_to_image"] is True
    assert rows["slow"]["type"] == "mock"
    assert "unknown backend type 'nosuch'" in rows["gone"]["problem"]
    assert "gone: nosuch, unusable: " in text_of(result)


async def test_submit_and_get_job_through_a_real_worker(home: Path) -> None:
    config = write_config(home)
    async with server(home, config) as client:
        submitted = await client.call_tool("submit_job", {"prompt": "queued", "seed": 7})
        assert not submitted.is_error, text_of(submitted)
        job_id = submitted.structured_content["job_id"]
        queued = await client.call_tool("get_job", {"job_id": job_id})
        assert queued.structured_content["status"] == "queued"

        env = {**os.environ, "HOME": str(home), "XDG_DATA_HOME": str(home / ".local" / "share")}
        worker = await anyio.run_process(
            [IMAGEN, "worker", "--once", "--config", str(config)], env=env, check=False
        )
        assert worker.returncode == 0, worker.stderr.decode()

        done = await client.call_tool("get_job", {"job_id": job_id})
        assert done.structured_content["status"] == "done"
        assert done.structured_content["seed"] == 7
        assert image_of(done).size == Image.open(done.structured_content["path"]).size
        # Where the worker put it: the folder of the job's submit hour.
        assert re.search(
            rf"/jobs/\d{{4}}-\d\d-\d\d/\d\d/{job_id}\.png$", done.structured_content["path"]
        )
        unknown = await client.call_tool("get_job", {"job_id": "nope"})
        assert unknown.is_error and "no job 'nope'" in text_of(unknown)


async def test_the_spend_guard_asks_before_a_call_over_the_limit(home: Path) -> None:
    config = write_config(home, "mcp: {confirm_above_usd: 0.05}\n")
    text = config.read_text()
    paid = "  paid: {type: mock, cost_usd: 0.04}\n  paid2: {type: mock, cost_usd: 0.04}\n"
    config.write_text(text.replace("  broken:", paid + "  broken:"))
    small = {"prompt": "x", "backend": "paid", "size": "64x64"}
    async with server(home, config) as client:
        listing = await client.call_tool("list_backends", {})
        prices = {r["name"]: r["price_usd"] for r in listing.structured_content["backends"]}
        assert prices["paid"] == 0.04 and prices["mock"] == 0.0
        under = await client.call_tool("generate_image", small)
        assert not under.is_error and under.structured_content["cost_usd"] == 0.04
        # Two paid backends in one comparison add up to 0.08: over the limit.
        pair = {"prompt": "x", "backends": ["paid", "mock"], "size": "64x64"}
        assert not (await client.call_tool("compare_backends", pair)).is_error
        pair["backends"] = ["paid", "mock", "paid2"]
        over = await client.call_tool("compare_backends", pair)
        assert over.is_error and over.structured_content["estimated_cost_usd"] == 0.08

    config.write_text(config.read_text().replace("cost_usd: 0.04", "cost_usd: 0.25"))
    before = sorted((home / "out").rglob("*.png"))
    async with server(home, config) as client:
        refused = await client.call_tool("generate_image", small)
        assert refused.is_error
        assert refused.structured_content == {
            "ran": False,
            "estimated_cost_usd": 0.25,
            "confirm_above_usd": 0.05,
        }
        assert "call again with confirm_spend: true" in text_of(refused)
        queued = await client.call_tool("submit_job", small)
        assert queued.is_error and "confirm_spend" in text_of(queued)
        assert sorted((home / "out").rglob("*.png")) == before
        confirmed = await client.call_tool("generate_image", {**small, "confirm_spend": True})
        assert not confirmed.is_error and confirmed.structured_content["cost_usd"] == 0.25


async def test_a_budget_refusal_is_a_tool_error_with_its_one_line(home: Path) -> None:
    config = write_config(home, "budgets:\n  - {period: day, limit_usd: 0.05}\n")
    text = config.read_text()
    config.write_text(text.replace("  broken:", "  paid: {type: mock, cost_usd: 0.04}\n  broken:"))
    small = {"prompt": "x", "backend": "paid", "size": "64x64"}
    async with server(home, config) as client:
        assert not (await client.call_tool("generate_image", small)).is_error
        refused = await client.call_tool("generate_image", small)
        assert refused.is_error
        assert text_of(refused).startswith(
            "over budget: the daily budget of $0.05 has $0.0400 spent and this run is "
            "estimated at $0.0400; it resets "
        )
    assert len(list((home / "out").rglob("*.png"))) == 1


async def test_edit_image_edits_a_generated_image_at_its_own_size(home: Path) -> None:
    import hashlib

    async with server(home, write_config(home)) as client:
        made = await client.call_tool("generate_image", {"prompt": "a fox", "size": "96x64"})
        source = made.structured_content["path"]
        edited = await client.call_tool(
            "edit_image", {"image": source, "prompt": "now at night", "strength": 0.5}
        )
        assert not edited.is_error, text_of(edited)
        data = edited.structured_content
        assert (data["width"], data["height"]) == (96, 64)
        sidecar = json.loads(Path(data["sidecar"]).read_text())
        (given,) = sidecar["request"]["inputs"]
        assert given["sha256"] == hashlib.sha256(Path(source).read_bytes()).hexdigest()
        assert (given["role"], sidecar["request"]["strength"]) == ("image", 0.5)
        missing = await client.call_tool(
            "edit_image", {"image": str(home / "gone.png"), "prompt": "x"}
        )
        assert missing.is_error and "gone.png" in text_of(missing)


async def test_a_mask_of_another_size_is_scaled_as_the_cli_scales_it(home: Path) -> None:
    source = home / "photo.png"
    Image.new("RGB", (96, 64), (200, 10, 10)).save(source)
    mask = Image.new("L", (48, 32), 0)  # half the image's size: its shape
    mask.paste(255, (0, 0, 24, 32))  # the left half is repainted
    mask.save(home / "mask.png")
    Image.new("L", (50, 50), 255).save(home / "square.png")
    async with server(home, write_config(home)) as client:
        edited = await client.call_tool(
            "edit_image",
            {"image": str(source), "prompt": "a storm", "mask": str(home / "mask.png")},
        )
        assert not edited.is_error, text_of(edited)
        note = f"{home / 'mask.png'} is 48x32; scaled it to the image's 96x64"
        assert text_of(edited).splitlines()[1:] == [f"warning: {note}"]
        data = edited.structured_content
        assert data["warnings"] == [note] and (data["width"], data["height"]) == (96, 64)
        with Image.open(data["path"]) as made:
            rgb = made.convert("RGB")
            assert rgb.getpixel((95, 0)) == (200, 10, 10)  # black in the mask: kept
            assert rgb.getpixel((1, 1)) != (200, 10, 10)  # white: repainted
        sidecar = json.loads(Path(data["sidecar"]).read_text())
        given = {i["role"]: i for i in sidecar["request"]["inputs"]}
        assert (given["mask"]["width"], given["mask"]["height"]) == (96, 64)

        square = await client.call_tool(
            "edit_image",
            {"image": str(source), "prompt": "x", "mask": str(home / "square.png")},
        )
        assert square.is_error
        assert text_of(square) == (
            f"{home / 'square.png'} is 50x50 but the image is 96x64: a mask must have the "
            "image's size (or at least its shape)"
        )
        stdin = await client.call_tool("generate_image", {"prompt": "x", "images": ["-"]})
        assert stdin.is_error and "'-' would read stdin" in text_of(stdin)
