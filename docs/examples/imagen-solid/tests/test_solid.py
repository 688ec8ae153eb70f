"""Tests for imagen-solid, with the fixtures imagen-core gives pytest: each test
runs with imagen's built-ins and imagen-solid only (never the plugins installed
on the machine), and its config, data folder and images in a temporary home."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

import pytest
from PIL import Image

import imagen_core
import imagen_solid
from imagen_core import Request, Session

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from imagen_core.plugins import ImagenPluginManager


@pytest.fixture
def imagen_plugins() -> dict[str, Any]:
    """The plugins every test here runs with, besides imagen's built-ins."""
    return {"solid": imagen_solid}


@pytest.fixture
def config(
    imagen_pm: ImagenPluginManager, imagen_config: Callable[[str], Path]
) -> Callable[[str], Path]:
    """imagen.yaml with solid as the default backend and the given blocks."""
    return lambda backends: imagen_config(f"default_backend: solid\nbackends:\n{backends}")


def colors(data: bytes) -> list[tuple[int, Any]]:
    """(count, colour) of each colour in the image."""
    with Image.open(io.BytesIO(data)) as image:
        return image.getcolors() or []


def test_default_color_and_random_seed(config: Callable[[str], Path], imagen_env: Path) -> None:
    session = Session(config("  solid: {}\n"))
    generation = session.generate(Request("anything", width=32, height=16))
    assert generation.result is not None and generation.path is not None
    assert generation.path.suffix == ".png"
    assert generation.path.is_relative_to(imagen_env)  # never the real ~/Pictures
    assert colors(generation.result.image) == [(32 * 16, (0x80, 0x80, 0x80))]
    assert generation.result.seed != 0
    assert generation.result.model == "solid-v1"
    assert generation.result.cost_usd == 0.0
    # The ledger row went to the test's data folder, not the developer's.
    assert (imagen_env / ".local" / "share" / "imagen" / "usage.db").is_file()


def test_configured_color_and_given_seed(config: Callable[[str], Path]) -> None:
    session = Session(config('  blue: {type: solid, color: "#336699"}\n'))
    generation = session.generate(Request("anything", width=8, height=8, seed=42, backend="blue"))
    assert generation.result is not None
    assert colors(generation.result.image) == [(64, (0x33, 0x66, 0x99))]
    assert generation.result.seed == 42


def test_bad_color_is_a_config_error(config: Callable[[str], Path]) -> None:
    path = config("  solid: {color: blue}\n")
    with pytest.raises(imagen_core.ConfigError, match=r"backends\.solid: color must look like"):
        Session(path)


def test_the_command_line(
    config: Callable[[str], Path], imagen_cli: Callable[..., tuple[int, str, str]]
) -> None:
    config('  teal: {type: solid, color: "#008080"}\n')
    code, out, err = imagen_cli("generate", "anything", "--backend", "teal", "--size", "8x8")
    assert (code, err) == (0, "")
    with Image.open(out.strip()) as image:
        assert image.convert("RGB").getpixel((0, 0)) == (0, 128, 128)
    code, _, err = imagen_cli("generate", "x", "--backend", "nope")
    assert code == 2 and "unknown backend 'nope'" in err
