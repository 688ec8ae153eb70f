"""Fixtures for imagen-replicate: the fake Replicate server, a clock that never
waits, the plugin registered on the test's plugin manager, and the token set."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import imagen_core.notices
import imagen_replicate
import imagen_replicate.backend
from imagen_core.plugins import ImagenPluginManager
from imagen_replicate.backend import ReplicateBackend
from imagen_replicate.config import ReplicateConfig
from imagen_replicate.pacing import Pacing
from tests.fake_http import FakeTime, Steps
from tests.helpers import registered, write_config

__all__ = ["FakeTime", "Steps"]
from tests.replicate.fake_replicate import FakeReplicate


@pytest.fixture
def fake() -> Iterator[FakeReplicate]:
    server = FakeReplicate().start()
    yield server
    server.stop()


@pytest.fixture
def fake_time(monkeypatch: pytest.MonkeyPatch) -> FakeTime:
    clock = FakeTime()
    monkeypatch.setattr(
        imagen_replicate.backend, "DEFAULT_PACING", Pacing(sleep=clock.sleep, clock=clock.clock)
    )
    return clock


@pytest.fixture(autouse=True)
def replicate_plugin(pm: ImagenPluginManager, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # warn(..., once=KEY) remembers keys for the process: each test starts afresh.
    monkeypatch.setattr(imagen_core.notices, "_said", set())
    with registered(pm, imagen_replicate, "replicate"):
        yield


@pytest.fixture
def token(fake: FakeReplicate, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("REPLICATE_API_TOKEN", fake.token)
    return fake.token


@pytest.fixture
def configure(isolated_env: Path, fake: FakeReplicate) -> Callable[..., Path]:
    """Write imagen.yaml with one replicate instance ``rep`` pointing at the fake."""

    def write(
        model: str = "black-forest-labs/flux-schnell", extra: str = "", base_url: str = ""
    ) -> Path:
        text = (
            "default_backend: rep\n"
            "backends:\n"
            "  rep:\n"
            "    type: replicate\n"
            f"    model: {model}\n"
            f"    base_url: {base_url or fake.url}\n"
        )
        text += "".join(f"    {line}\n" for line in extra.splitlines() if line)
        return write_config(isolated_env, text)

    return write


@pytest.fixture
def make_backend(fake: FakeReplicate, fake_time: FakeTime, token: str) -> Callable[..., Any]:
    """A ReplicateBackend built directly, talking to the fake, on the fake clock."""

    def build(**settings: Any) -> ReplicateBackend:
        settings.setdefault("base_url", fake.url)
        prices = settings.pop("prices", None)
        return ReplicateBackend(
            ReplicateConfig(**settings),
            pacing=imagen_replicate.backend.DEFAULT_PACING,
            prices=prices,
        )

    return build
