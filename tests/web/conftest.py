"""Fixtures of the imagen-web tests: an app built from a Session on the mock
backend, in the isolated HOME of tests/conftest.py, driven by Starlette's
TestClient (the lifespan runs: the index is built as `imagen serve` builds it)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from imagen_core import Session
from imagen_web.app import create_app
from tests.helpers import write_config

CONFIG = """
output: {{dir: '{out}', preview: off}}
queue: {{type: sqlite, poll_s: 0.02}}
styles:
  poster: "a poster of {{prompt}}"
backends:
  mock: {{type: mock}}
  other: {{type: mock, model: other-model}}
  broken: {{type: mock, fail: CUDA out of memory}}
"""


@pytest.fixture
def config_path(isolated_env: Path, output_dir: Path) -> Path:
    return write_config(isolated_env, CONFIG.format(out=output_dir))


@pytest.fixture
def session(config_path: Path) -> Session:
    return Session(config_path)


@pytest.fixture
def client(session: Session) -> Iterator[TestClient]:
    with TestClient(create_app(session)) as test_client:
        yield test_client


def small(prompt: str = "a red fox", **fields: object) -> dict[str, object]:
    """A generate/job body for a tiny image (the mock renders it in milliseconds)."""
    return {"prompt": prompt, "width": 32, "height": 32, **fields}
