"""Tests for imagen-solid. Each test registers the plugin on imagen's plugin manager
and unregisters it afterwards, so no other installed plugin takes part."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

import pytest
from PIL import Image

import imagen_core
import imagen_solid
from imagen_core import Request, Session
from imagen_core.plugins import reset_plugin_manager

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from imagen_core.plugins import ImagenPluginManager


@pytest.fixture
def pm(monkeypatch: pytest.MonkeyPatch) -> Iterator[ImagenPluginManager]:
    # A fresh manager with the built-ins only: installed plugins stay out.
    monkeypatch.setenv("IMAGEN_LOAD_PLUGINS", "")
    reset_plugin_manager()
    manager = imagen_core.get_plugin_manager()
    manager.register(imagen_solid, name="solid")
    yield manager
    manager.unregister(name="solid")
    reset_plugin_manager()


def write_config(tmp_path: Path, backends: str) -> Path:
    path = tmp_path / "imagen.yaml"
    path.write_text(f"default_backend: solid\noutput:\n  dir: {tmp_path}\nbackends:\n{backends}")
    return path


def colors(data: bytes) -> list[tuple[int, Any]]:
    """(count, colour) of each colour in the image."""
    with Image.open(io.BytesIO(data)) as image:
        return image.getcolors() or []


def test_default_color_and_random_seed(pm: ImagenPluginManager, tmp_path: Path) -> None:
    session = Session(write_config(tmp_path, "  solid: {}\n"))
    generation = session.generate(Request("anything", width=32, height=16))
    assert generation.result is not None and generation.path is not None
    assert generation.path.suffix == ".png"
    assert colors(generation.result.image) == [(32 * 16, (0x80, 0x80, 0x80))]
    assert generation.result.seed != 0
    assert generation.result.model == "solid-v1"
    assert generation.result.cost_usd == 0.0


def test_configured_color_and_given_seed(pm: ImagenPluginManager, tmp_path: Path) -> None:
    session = Session(write_config(tmp_path, '  blue: {type: solid, color: "#336699"}\n'))
    generation = session.generate(Request("anything", width=8, height=8, seed=42, backend="blue"))
    assert generation.result is not None
    assert colors(generation.result.image) == [(64, (0x33, 0x66, 0x99))]
    assert generation.result.seed == 42


def test_bad_color_is_a_config_error(pm: ImagenPluginManager, tmp_path: Path) -> None:
    config = write_config(tmp_path, "  solid: {color: blue}\n")
    with pytest.raises(imagen_core.ConfigError, match=r"backends\.solid: color must look like"):
        Session(config)
