"""Tests for the mock backend's procedural picture (imagen_mock.picture)."""

from __future__ import annotations

import io
import itertools
import os
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image, ImageChops, ImageFont, ImageStat

from imagen_mock import picture
from imagen_mock.picture import render, render_png

PROMPT = "a lighthouse at dusk"


def _decode(png: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(png))
    img.load()
    return img


def _png_chunk_types(png: bytes) -> list[bytes]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    types, pos = [], 8
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        types.append(png[pos + 4 : pos + 8])
        pos += 12 + length
    return types


def _mean_diff(a: Image.Image, b: Image.Image) -> float:
    return sum(ImageStat.Stat(ImageChops.difference(a, b)).mean) / 3


@pytest.fixture
def fresh_font_caches():
    picture._font.cache_clear()
    picture._has_glyph.cache_clear()
    yield
    picture._font.cache_clear()
    picture._has_glyph.cache_clear()


# -- determinism -------------------------------------------------------------


def test_same_inputs_give_identical_png_bytes():
    first = render_png(PROMPT, 1234, 320, 200)
    assert render_png(PROMPT, 1234, 320, 200) == first
    assert render(PROMPT, 1234, 320, 200).tobytes() == _decode(first).tobytes()


def test_identical_across_processes_and_hash_seeds():
    """No salted hash(), set ordering or other per-process state may leak in."""
    code = (
        "import sys; from imagen_mock.picture import render_png; "
        f"sys.stdout.buffer.write(render_png({PROMPT!r}, 77, 96, 64))"
    )
    outputs = set()
    for hash_seed in ("1", "2"):
        path = os.pathsep.join([str(Path(picture.__file__).parents[1]), *sys.path])
        env = {**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": path}
        done = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, check=True
        )
        outputs.add(done.stdout)
    assert outputs == {render_png(PROMPT, 77, 96, 64)}


def test_different_seed_or_prompt_gives_different_picture():
    base = render_png(PROMPT, 1, 128, 128)
    assert render_png(PROMPT, 2, 128, 128) != base
    assert render_png("a lighthouse at dawn", 1, 128, 128) != base
    assert render_png(PROMPT, 1, 128, 129) != base


def test_different_seeds_are_visibly_different():
    pictures = [render(PROMPT, seed, 96, 96) for seed in range(1, 7)]
    for a, b in itertools.combinations(pictures, 2):
        assert _mean_diff(a, b) > 5.0


# -- sizes and encoding ------------------------------------------------------


@pytest.mark.parametrize(
    ("width", "height"),
    [
        (1, 1),
        (2, 1),
        (1, 3),
        (7, 5),
        (64, 64),
        (333, 211),
        (1536, 64),
        (16, 2048),
        (3, 2000),
        (8192, 16),
        (16, 8192),
        (8192, 1),
    ],
)
def test_exact_size_and_mode(width, height):
    img = render(PROMPT, 5, width, height)
    assert img.size == (width, height)
    assert img.mode == "RGB"
    decoded = _decode(render_png(PROMPT, 5, width, height))
    assert decoded.format == "PNG"
    assert decoded.size == (width, height)
    assert decoded.mode == "RGB"


def test_png_has_no_metadata_chunks():
    png = render_png(PROMPT, 9, 64, 48)
    assert set(_png_chunk_types(png)) == {b"IHDR", b"IDAT", b"IEND"}


@pytest.mark.parametrize(("width", "height"), [(0, 10), (10, 0), (-1, 5)])
def test_non_positive_size_is_rejected(width, height):
    with pytest.raises(ValueError, match="positive"):
        render(PROMPT, 1, width, height)


def test_any_seed_value_works():
    for seed in (0, -1, 2**64 + 3):
        assert render(PROMPT, seed, 40, 30).size == (40, 30)


# -- text --------------------------------------------------------------------


@pytest.mark.parametrize(
    "prompt",
    [
        "",
        "   \t\n  ",
        "\u200b\u200d\ufe0f",
        "🚀🌙✨",
        "👩‍🚀🏳️‍🌈",
        "!!! ??? ... ***",
        "漢字かな交じり文",
        "café crème brûlée — Æsir × Øresund",
        "\x00\x1b[31mred\x07",
        "lone \ud800 surrogate",
    ],
)
def test_unusual_prompts_do_not_crash(prompt):
    for size in ((256, 160), (1536, 64), (3, 3)):
        png = render_png(prompt, 3, *size)
        assert _decode(png).size == size


def test_caption_is_drawn_in_the_upper_middle(monkeypatch):
    """With the scenery pinned, only the caption changes between two prompts."""
    monkeypatch.setattr(picture, "_mix_seed", lambda prompt, seed: seed)
    plain = render("", 42, 400, 300)
    captioned = render("hello world", 42, 400, 300)
    box = ImageChops.difference(plain, captioned).getbbox()
    assert box is not None, "the caption was not drawn"
    left, top, right, bottom = box
    assert 0 < left < 200 < right < 400
    assert 0 < top < 150 and bottom < 300
    # the panel and shadow only darken; the letters themselves are light
    brighter = ImageChops.subtract(captioned.convert("L"), plain.convert("L"))
    assert brighter.getextrema()[1] > 100


def test_footer_names_seed_and_size(monkeypatch):
    drawn: list[str] = []
    real = picture._draw_lines

    def spy(img, lines, *args, **kwargs):
        drawn.extend(text for _, _, text in lines)
        return real(img, lines, *args, **kwargs)

    monkeypatch.setattr(picture, "_draw_lines", spy)
    render(PROMPT, 1234, 1024, 768)
    assert "imagen mock \u00b7 seed 1234 \u00b7 1024x768" in drawn
    assert PROMPT in drawn


def test_long_prompt_is_truncated_with_an_ellipsis():
    prompt = " ".join(f"word{i}" for i in range(2000))
    font_and_lines = picture._layout(prompt, 800, 900, 60)
    assert font_and_lines is not None
    font, lines = font_and_lines
    assert 1 <= len(lines) <= 5
    assert lines[-1].endswith("\u2026")
    assert all(font.getlength(line) <= 800 for line in lines)
    # and the whole picture still renders, at several shapes
    for size in ((1024, 1024), (1536, 64), (64, 1536), (20, 20)):
        assert render(prompt, 8, *size).size == size


def test_huge_prompt_is_cheap():
    prompt = "lorem ipsum dolor sit amet " * 40_000  # about a megabyte
    start = time.perf_counter()
    assert render(prompt, 1, 256, 256).size == (256, 256)
    assert time.perf_counter() - start < 5.0  # typically well under 0.5 s


def test_long_unbroken_word_is_split_to_fit():
    font_and_lines = picture._layout("x" * 3000, 300, 400, 40)
    assert font_and_lines is not None
    font, lines = font_and_lines
    assert len(lines) <= 5
    assert all(font.getlength(line) <= 300 for line in lines)


def test_short_prompt_keeps_a_large_single_line():
    font, lines = picture._layout(PROMPT, 840, 900, 60)
    assert lines == [PROMPT]
    assert font.size == 60


def test_bitmap_font_fallback(monkeypatch, fresh_font_caches):
    """Without FreeType, load_default(size=...) raises; the picture must still render."""

    def no_freetype(size=None):
        if size is not None:
            raise OSError("FreeType not available")
        return ImageFont.load_default_imagefont()

    monkeypatch.setattr(ImageFont, "load_default", no_freetype)
    for prompt in (PROMPT, "🚀 — café × 漢字", "x" * 500):
        for size in ((512, 384), (1536, 64), (9, 9)):
            assert render(prompt, 4, *size).size == size


def test_module_imports_only_stdlib_and_pil():
    source = Path(picture.__file__).read_text(encoding="utf-8")
    imported = {
        line.split()[1].split(".")[0]
        for line in source.splitlines()
        if line.startswith(("import ", "from "))
    }
    allowed = set(sys.stdlib_module_names) | {"PIL", "__future__"}
    assert imported <= allowed
