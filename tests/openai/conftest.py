"""Fixtures for imagen-openai: the fake OpenAI server, a clock that never waits
(tests/fake_http.py), the plugin registered on the test's plugin manager, and
the key set."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import imagen_core.notices
import imagen_openai
import imagen_openai.backend
from imagen_core.plugins import ImagenPluginManager
from imagen_openai.backend import OpenAIBackend
from imagen_openai.config import OpenAIConfig
from imagen_openai.pacing import Pacing
from tests.fake_http import FakeTime
from tests.helpers import registered, write_config
from tests.openai.fake_openai import FakeOpenAI


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI().start()
    yield server
    server.stop()


@pytest.fixture
def fake_time(monkeypatch: pytest.MonkeyPatch) -> FakeTime:
    clock = FakeTime()
    monkeypatch.setattr(
        imagen_openai.backend,
        "DEFAULT_PACING",
        Pacing(sleep=clock.sleep, clock=clock.clock, wait=clock.wait),
    )
    return clock


@pytest.fixture(autouse=True)
def openai_plugin(pm: ImagenPluginManager, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # warn(..., once=KEY) remembers keys for the process: each test starts afresh.
    monkeypatch.setattr(imagen_core.notices, "_said", set())
    with registered(pm, imagen_openai, "openai"):
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
        text = (
            "default_backend: oa\n"
            "backends:\n"
            "  oa:\n"
            "    type: openai\n"
            f"    model: {model}\n"
            f"    base_url: {base_url or fake.base_url}\n"
        )
        text += "".join(f"    {line}\n" for line in extra.splitlines() if line)
        return write_config(isolated_env, text)

    return write


@pytest.fixture
def make_backend(fake: FakeOpenAI, fake_time: FakeTime, key: str) -> Callable[..., Any]:
    """An OpenAIBackend built directly, talking to the fake, on the fake clock."""

    def build(**settings: Any) -> OpenAIBackend:
        settings.setdefault("base_url", fake.base_url)
        return OpenAIBackend(OpenAIConfig(**settings), pacing=imagen_openai.backend.DEFAULT_PACING)

    return build
