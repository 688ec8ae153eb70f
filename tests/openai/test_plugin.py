"""imagen-openai as a distribution: its entry point, a cheap import, and a wheel
that carries the model table."""

from __future__ import annotations

import zipfile
from importlib.metadata import distribution
from pathlib import Path

import pytest

from tests.helpers import build_wheels, cli_imports

ROOT = Path(__file__).resolve().parents[2]
PROJECT = ROOT / "plugins" / "imagen-openai"


def imported(*args: str) -> set[str]:
    return cli_imports(*args, plugins="imagen-openai")[0]


def test_the_entry_point_is_registered():
    dist = distribution("imagen-openai")
    (entry,) = [e for e in dist.entry_points if e.group == "imagen"]
    assert (entry.name, entry.value) == ("openai", "imagen_openai")
    assert dist.version == "0.1.0"
    assert set(dist.requires or []) >= {"imagen-core==0.1.0", "requests>=2.31"}


def test_help_imports_the_plugin_but_not_requests():
    modules = imported("--help")
    assert "imagen_openai" in modules
    assert not modules & {"requests", "urllib3", "attrs"}


def test_listing_backends_registers_the_type_without_requests():
    modules = imported("backends")
    assert "imagen_openai" in modules and "requests" not in modules


@pytest.mark.slow
def test_the_wheel_carries_the_model_table(tmp_path):
    build_wheels(tmp_path, PROJECT)
    (wheel,) = tmp_path.glob("imagen_openai-0.1.0-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = next(n for n in names if n.endswith("entry_points.txt"))
        assert "[imagen]\nopenai = imagen_openai" in archive.read(entry_points).decode()
    assert {
        "imagen_openai/models.json",
        "imagen_openai/py.typed",
        "imagen_openai/backend.py",
    } <= names
    assert not [n for n in names if n.startswith("tests/")]
