"""Fixtures for imagen-replicate: the fake Replicate server, a clock that never
waits, the plugin registered on the test's plugin manager, and the token set."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import imagen_replicate
import imagen_replicate.backend
from imagen_core.plugins import ImagenPluginManager
from imagen_replicate.backend import ReplicateBackend
from imagen_replicate.config import ReplicateConfig
from tests.fake_http import FakeTime, Steps, fake_pacing
from tests.helpers import registered_afresh, write_backend

__all__ = ["FakeTime", "Steps"]
from tests.replicate.fake_replicate import FakeReplicate


@pytest.fixture
def fake() -> Iterator[FakeReplicate]:
    with FakeReplicate() as server:
        yield server


@pytest.fixture
def fake_time(monkeypatch: pytest.MonkeyPatch) -> FakeTime:
    return fake_pacing(monkeypatch, imagen_replicate.backend)


@pytest.fixture(autouse=True)
def replicate_plugin(pm: ImagenPluginManager, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    with registered_afresh(pm, monkeypatch, imagen_replicate, "replicate"):
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
        settings = {"model": model, "base_url": base_url or fake.url}
        return write_backend(isolated_env, "rep", "replicate", settings, extra)

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
