"""Fixtures for imagen-openai: the fake OpenAI server, a clock that never waits
(tests/fake_http.py), the plugin registered on the test's plugin manager, and
the key set."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import imagen_openai
import imagen_openai.backend
from imagen_core.plugins import ImagenPluginManager
from imagen_openai.backend import OpenAIBackend
from imagen_openai.config import OpenAIConfig
from tests.fake_http import FakeTime, fake_pacing
from tests.helpers import registered_afresh, write_backend
from tests.openai.fake_openai import FakeOpenAI


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def fake_time(monkeypatch: pytest.MonkeyPatch) -> FakeTime:
    return fake_pacing(monkeypatch, imagen_openai.backend)


@pytest.fixture(autouse=True)
def openai_plugin(pm: ImagenPluginManager, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    with registered_afresh(pm, monkeypatch, imagen_openai, "openai"):
        yield


@pytest.fixture
def key(fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> str:
    assert fake.key is not None
    monkeypatch.setenv("OPENAI_API_KEY", fake.key)
    return fake.key


@pytest.fixture
def configure(isolated_env: Path, fake: FakeOpenAI) -> Callable[..., Path]:
    """Write imagen.yaml with one openai instance ``oa`` pointing at the fake."""

    def write(model: str = "gpt-image-1", extra: str = "", base_url: str = "") -> Path:
        settings = {"model": model, "base_url": base_url or fake.base_url}
        return write_backend(isolated_env, "oa", "openai", settings, extra)

    return write


@pytest.fixture
def make_backend(fake: FakeOpenAI, fake_time: FakeTime, key: str) -> Callable[..., Any]:
    """An OpenAIBackend built directly, talking to the fake, on the fake clock."""

    def build(**settings: Any) -> OpenAIBackend:
        settings.setdefault("base_url", fake.base_url)
        return OpenAIBackend(OpenAIConfig(**settings), pacing=imagen_openai.backend.DEFAULT_PACING)

    return build
