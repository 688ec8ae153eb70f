"""Fixtures for imagen-fal: the fake fal queue, a clock that never waits, the
plugin registered on the test's plugin manager, and the key set."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

import imagen_fal
import imagen_fal.backend
from imagen_core import ImageInput
from imagen_core.plugins import ImagenPluginManager
from imagen_fal.backend import FalBackend
from imagen_fal.config import FalConfig
from tests.fake_http import FakeTime, Steps, fake_pacing
from tests.fal.fake_fal import FakeFal
from tests.helpers import registered_afresh, write_backend

__all__ = ["FakeTime", "Steps", "image", "png"]


@pytest.fixture
def fake() -> Iterator[FakeFal]:
    with FakeFal() as server:
        yield server


@pytest.fixture
def fake_time(monkeypatch: pytest.MonkeyPatch) -> FakeTime:
    return fake_pacing(monkeypatch, imagen_fal.backend)


@pytest.fixture(autouse=True)
def fal_plugin(pm: ImagenPluginManager, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    with registered_afresh(pm, monkeypatch, imagen_fal, "fal"):
        yield


@pytest.fixture
def key(fake: FakeFal, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("FAL_KEY", fake.key)
    return fake.key


@pytest.fixture
def configure(isolated_env: Path, fake: FakeFal) -> Callable[..., Path]:
    """Write imagen.yaml with one fal instance ``fal1`` pointing at the fake."""

    def write(model: str = "fal-ai/flux/schnell", extra: str = "", base_url: str = "") -> Path:
        settings = {"model": model, "base_url": base_url or fake.url, "storage_url": fake.url}
        return write_backend(isolated_env, "fal1", "fal", settings, extra)

    return write


@pytest.fixture
def make_backend(fake: FakeFal, fake_time: FakeTime, key: str) -> Callable[..., Any]:
    """A FalBackend built directly, talking to the fake, on the fake clock."""

    def build(**settings: Any) -> FalBackend:
        settings.setdefault("base_url", fake.url)
        settings.setdefault("storage_url", fake.url)
        prices = settings.pop("prices", None)
        return FalBackend(
            FalConfig(**settings), pacing=imagen_fal.backend.DEFAULT_PACING, prices=prices
        )

    return build


def png(width: int = 32, height: int = 24, color=(200, 10, 10)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, "PNG")
    return buffer.getvalue()


def image(role: str = "image", **kwargs) -> ImageInput:
    return ImageInput.from_bytes(png(**kwargs), role=role, source=f"/tmp/{role}.png")
