"""Fixtures for imagen-supabase: the plugin registered, a fake Supabase, credentials
pointing at it, no real sleeping, and (session-wide) a real PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import imagen_supabase
from imagen_core import notices
from imagen_core.plugins import ImagenPluginManager
from imagen_supabase import transport
from tests.helpers import registered
from tests.supabase.fake import SERVICE_KEY, FakeSupabase


@pytest.fixture(autouse=True)
def clean_supabase_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # The developer's own Supabase must never be reached from a test.
    for name in ("SUPABASE_URL", "SUPABASE_SERVICE_KEY", "MAI_SUPABASE_KEY", "IMAGEN_CALLER"):
        monkeypatch.delenv(name, raising=False)
    # A proxy from the environment would stand between requests and the fake.
    for name in (
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
    ):
        monkeypatch.delenv(name, raising=False)
    # warn(once=...) remembers per process; each test starts fresh.
    monkeypatch.setattr(notices, "_said", set())


@pytest.fixture(autouse=True)
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Backoff and Retry-After waits, recorded instead of slept."""
    waited: list[float] = []
    monkeypatch.setattr(transport, "sleep", waited.append)
    return waited


@pytest.fixture
def plugin(pm: ImagenPluginManager) -> Iterator[ImagenPluginManager]:
    with registered(pm, imagen_supabase, "supabase"):
        yield pm


@pytest.fixture
def fake() -> Iterator[FakeSupabase]:
    server = FakeSupabase()
    yield server
    server.close()


@pytest.fixture
def credentials(fake: FakeSupabase, monkeypatch: pytest.MonkeyPatch) -> str:
    """SUPABASE_URL and SUPABASE_SERVICE_KEY set for the fake; returns the key."""
    monkeypatch.setenv("SUPABASE_URL", fake.url)
    monkeypatch.setenv("SUPABASE_SERVICE_KEY", SERVICE_KEY)
    return SERVICE_KEY
