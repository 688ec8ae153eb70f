"""Test isolation: every test gets its own HOME/XDG dirs, no IMAGEN_* variables
from the developer's shell, and a fresh plugin manager holding the built-ins plus
the mock backend -- never the plugins installed on the machine by accident."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import imagen_mock
from imagen_core import plugins
from imagen_core.plugins import ImagenPluginManager, create_plugin_manager
from tests.pgserver import PostgresError, PostgresServer, start_postgres


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    for name in list(os.environ):
        if name.startswith(("IMAGEN_", "XDG_", "MAI_", "TMUX")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local" / "share"))
    return home


@pytest.fixture(autouse=True)
def pm() -> Iterator[ImagenPluginManager]:
    """The process-wide plugin manager for this test: built-ins + imagen_mock."""
    manager = create_plugin_manager(entry_points=False)
    manager.register(imagen_mock, name="mock")
    plugins.reset_plugin_manager(manager)
    yield manager
    plugins.reset_plugin_manager(None)


@pytest.fixture
def output_dir(isolated_env: Path) -> Path:
    return isolated_env / "Pictures" / "imagen"


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One real PostgreSQL server for the whole run, started when a test first
    needs it (imagen-postgres's queue, imagen-supabase's SQL); each user makes its
    own database."""
    try:
        server = start_postgres()
    except PostgresError as exc:
        pytest.fail(str(exc), pytrace=False)
    yield server
    server.stop()
