"""Fixtures for imagen-postgres: a real PostgreSQL (one per test session), a
database and a password-protected login role in it, and queues, each in a schema
of its own so that tests (and their NOTIFY channels) never see each other."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import imagen_postgres
from imagen_core import notices
from imagen_core.plugins import ImagenPluginManager
from imagen_postgres.queue import PostgresQueue
from imagen_postgres.settings import PostgresQueueConfig
from tests.helpers import registered
from tests.pgserver import PostgresServer

ROLE = "imagen_app"
# Characters that need escaping in a URL, so that redaction is tested on both forms.
PASSWORD = "s3cret-p@ss/word"


@pytest.fixture(scope="session")
def database(postgres: PostgresServer) -> str:
    name = postgres.create_database("imagen_queue_tests")
    postgres.create_role(ROLE, PASSWORD, name)
    return name


@pytest.fixture
def dsn(postgres: PostgresServer, database: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The queue role's connection string, in IMAGEN_DATABASE_URL (the default dsn_env)."""
    value = postgres.dsn(database, ROLE, PASSWORD)
    monkeypatch.setenv("IMAGEN_DATABASE_URL", value)
    return value


@pytest.fixture(autouse=True)
def fresh_notices(monkeypatch: pytest.MonkeyPatch) -> None:
    # warn(once=...) remembers per process; each test starts fresh.
    monkeypatch.setattr(notices, "_said", set())


@pytest.fixture
def plugin(pm: ImagenPluginManager) -> Iterator[ImagenPluginManager]:
    with registered(pm, imagen_postgres, "postgres"):
        yield pm


@pytest.fixture
def schema() -> str:
    return f"t_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def make_queue(
    dsn: str, schema: str, postgres: PostgresServer, database: str
) -> Iterator[Callable[..., PostgresQueue]]:
    """Queues on this test's schema (more than one: several workers), closed at the end."""
    made: list[PostgresQueue] = []

    def make(**settings: Any) -> PostgresQueue:
        queue = PostgresQueue(PostgresQueueConfig(**{"schema": schema, **settings}))
        made.append(queue)
        return queue

    yield make
    for queue in made:
        queue.close()
    postgres.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE', database)


@pytest.fixture
def queue(make_queue: Callable[..., PostgresQueue]) -> PostgresQueue:
    """An initialised queue in a schema of its own."""
    made = make_queue()
    made.init()
    return made


@pytest.fixture
def sql(postgres: PostgresServer, database: str) -> Callable[..., list[dict[str, Any]]]:
    """Plain SQL as the database's superuser, as a web app or an operator would run it."""
    import psycopg
    from psycopg.rows import dict_row

    def run(statement: str, params: Any = None) -> list[dict[str, Any]]:
        with psycopg.connect(postgres.dsn(database), autocommit=True, row_factory=dict_row) as conn:
            cursor = conn.execute(statement.encode(), params)
            return cursor.fetchall() if cursor.description else []

    return run
