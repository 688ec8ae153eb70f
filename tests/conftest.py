"""Test isolation, from imagen-core's own pytest plugin (imagen_core/pytest_plugin.py,
the one plugin authors use): every test gets its own HOME/XDG dirs, no IMAGEN_*
variables from the developer's shell, and a fresh plugin manager holding the
built-ins plus the mock backend -- never the plugins installed on the machine by
accident."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import imagen_mock
from imagen_core.plugins import ImagenPluginManager
from tests.pgserver import PostgresError, PostgresServer, start_postgres


@pytest.fixture
def imagen_plugins() -> dict[str, object]:
    """What imagen_pm registers besides the built-ins, in every test here."""
    return {"mock": imagen_mock}


@pytest.fixture(autouse=True)
def isolated_env(imagen_env: Path) -> Path:
    return imagen_env


@pytest.fixture(autouse=True)
def pm(imagen_pm: ImagenPluginManager) -> ImagenPluginManager:
    """The process-wide plugin manager for this test: built-ins + imagen_mock."""
    return imagen_pm


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
