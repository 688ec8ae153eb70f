"""Helpers shared by the tests."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from imagen_core.plugins import ImagenPluginManager


@contextlib.contextmanager
def registered(manager: ImagenPluginManager, plugin: object, name: str) -> Iterator[None]:
    """Register ``plugin`` for the duration of a block (the datasette pattern)."""
    manager.register(plugin, name=name)
    try:
        yield
    finally:
        manager.unregister(name=name)


def write_config(home: Path, text: str) -> Path:
    path = home / ".config" / "imagen.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def make_dist(site: Path, dist: str, module: str, source: str, version: str = "1.2.3") -> None:
    """A minimal installed distribution in ``site`` with an ``imagen`` entry point,
    found by importlib.metadata exactly like a pip-installed plugin."""
    site.mkdir(parents=True, exist_ok=True)
    (site / f"{module}.py").write_text(source)
    info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[imagen]\n{module} = {module}\n")
