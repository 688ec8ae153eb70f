"""Fixtures for the ComfyUI backend: a fresh fake server per test, the plugin
registered on the test's plugin manager, and the client's waits made short."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import imagen_comfyui
from imagen_comfyui.client import ComfyUIClient
from tests.comfyui.fake_comfyui import FakeComfyUI
from tests.helpers import registered, write_config


@pytest.fixture(autouse=True)
def comfyui_plugin(pm) -> Iterator[None]:
    with registered(pm, imagen_comfyui, "comfyui"):
        yield


@pytest.fixture(autouse=True)
def quick_client(monkeypatch: pytest.MonkeyPatch) -> None:
    """Seconds become milliseconds, so every failure path runs fast."""
    monkeypatch.setattr(ComfyUIClient, "poll_interval_s", 0.01)
    monkeypatch.setattr(ComfyUIClient, "history_retry_s", 1.0)
    monkeypatch.setattr(ComfyUIClient, "watchdog_s", 0.2)
    monkeypatch.setattr(ComfyUIClient, "unreachable_s", 0.3)
    monkeypatch.setattr(ComfyUIClient, "connect_timeout_s", 2.0)
    monkeypatch.setattr(ComfyUIClient, "read_timeout_s", 5.0)
    monkeypatch.setattr(ComfyUIClient, "cancel_timeout_s", 2.0)
    monkeypatch.setattr(ComfyUIClient, "view_retry_s", 0.001)


@pytest.fixture
def comfy() -> Iterator[FakeComfyUI]:
    fake = FakeComfyUI().start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def configure(isolated_env: Path, comfy: FakeComfyUI):
    """Write imagen.yaml with a comfyui instance ``comfy`` (the default backend)
    pointing at the fake; extra block lines are indented under it."""

    def write(*lines: str, workflow: str = "flux1-schnell", timeout_s: float = 10) -> Path:
        block = "".join(f"    {line}\n" for line in lines)
        return write_config(
            isolated_env,
            "default_backend: comfy\n"
            "output:\n  preview: off\n"
            "backends:\n"
            "  comfy:\n"
            "    type: comfyui\n"
            f"    url: {comfy.url}\n"
            f"    workflow: {workflow}\n"
            f"    timeout_s: {timeout_s}\n" + block,
        )

    return write
