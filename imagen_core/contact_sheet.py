"""The contact sheet of ``imagen compare``: one labelled tile per backend, in a grid.

Each cell is a square image area of ``tile_size`` pixels with a label band below
it (backend name, then model, latency and cost). Images of any size or aspect
ratio are fitted into the square without distortion, letterboxed and centred; a
backend that failed, or whose image cannot be read, gets its error message in
the image area instead. Pillow only: no ImageMagick on the user's machine.

This module is imported only when a sheet is built, never at CLI start, so
Pillow is imported at the top.
"""

from __future__ import annotations

import functools
import io
import math
import unicodedata
from pathlib import Path
from typing import TYPE_CHECKING

import attrs
from PIL import Image, ImageDraw, ImageFont, UnidentifiedImageError

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["Tile", "render_sheet", "sheet_png"]

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont
RGB = tuple[int, int, int]

_MIN_TILE_SIZE = 64  # below this not even a short label fits
_MAX_DETAIL_LINES = 4  # label lines under the title; more are dropped
_MAX_ERROR_LINES = 8  # wrapped error lines in a failed tile; the last gets an ellipsis

# Neutral dark greys, so no colour competes with the images themselves.
_BACKGROUND: RGB = (30, 30, 30)
_IMAGE_AREA: RGB = (46, 46, 46)  # the letterbox bars: shows each tile's square
_ERROR_AREA: RGB = (58, 34, 32)
_TITLE: RGB = (245, 245, 245)
_DETAIL: RGB = (175, 175, 175)
_WARNING: RGB = (255, 178, 102)

# Stand-ins for characters the bundled font (Aileron: ASCII and a few symbols) lacks;
# anything else it lacks is decomposed (é -> e) or drawn as "?".
_TRANSLIT = {
    "\u00d7": "x",  # multiplication sign, as in 1024×1024
    "\u2013": "-",
    "\u2014": "-",
    "\u2212": "-",
    "\u2018": "'",
    "\u2019": "'",
    "\u201d": '"',
    "\u2022": "\u00b7",
    "\u2192": "->",
    "\u00df": "ss",
    "\u00e6": "ae",
    "\u00c6": "AE",
    "\u00f8": "o",
    "\u00d8": "O",
}


@attrs.frozen
class Tile:
    """One backend's cell: its image, or the error that took its place."""

    title: str  # backend instance name, drawn prominently
    details: tuple[str, ...] = ()  # further label lines, e.g. ("flux1-schnell", "3.12 s · $0.003")
    image: Path | None = None  # the image file; None for a failed backend
    error: str | None = None  # shown (wrapped, in a warning colour) when image is None


def render_sheet(
    tiles: Sequence[Tile], *, tile_size: int = 512, columns: int | None = None
) -> Image.Image:
    """The grid as an RGB image. columns=None picks a near-square grid (1→1, 2→2, 3→3,
    4→2, 5-6→3, 7-8→4, 9→3, ...); an explicit count is capped at ``len(tiles)``."""
    if not tiles:
        raise ValueError("a contact sheet needs at least one tile")
    if tile_size < _MIN_TILE_SIZE:
        raise ValueError(f"tile_size must be at least {_MIN_TILE_SIZE}, got {tile_size}")
    if columns is not None and columns < 1:
        raise ValueError(f"columns must be at least 1, got {columns}")
    cols = min(columns, len(tiles)) if columns is not None else _auto_columns(len(tiles))
    rows = -(-len(tiles) // cols)
    detail_lines = min(_MAX_DETAIL_LINES, max(len(tile.details) for tile in tiles))
    style = _Style.for_tiles(tile_size, detail_lines)

    pitch_x = tile_size + style.gap
    pitch_y = tile_size + style.band + style.gap
    sheet = Image.new("RGB", (cols * pitch_x + style.gap, rows * pitch_y + style.gap), _BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    for index, tile in enumerate(tiles):
        row, col = divmod(index, cols)
        _draw_tile(sheet, draw, tile, style, style.gap + col * pitch_x, style.gap + row * pitch_y)
    return sheet


def sheet_png(tiles: Sequence[Tile], *, tile_size: int = 512, columns: int | None = None) -> bytes:
    """render_sheet(...) encoded as PNG bytes (no timestamps: same tiles, same bytes)."""
    sheet = render_sheet(tiles, tile_size=tile_size, columns=columns)
    buf = io.BytesIO()
    # Named, not format="PNG": with an explicit format Pillow imports its BMP, GIF,
    # JPEG and PPM plugins too. Level 3 compresses about twice as fast as the
    # default 6 for a file about a fifth larger; the sheet is a preview, not an archive.
    buf.name = "sheet.png"
    sheet.save(buf, compress_level=3)
    return buf.getvalue()


def _auto_columns(count: int) -> int:
    """Columns of a near-square grid, wider rather than taller: screens are landscape."""
    rows = max(1, math.isqrt(count))
    return -(-count // rows)


# --------------------------------------------------------------------------
# layout


@attrs.frozen
class _Style:
    """Every size on the sheet, derived from tile_size so a small sheet stays in proportion."""

    tile: int
    gap: int  # between cells and around the sheet
    pad: int  # inside the label band and the error area
    title_font: Font
    detail_font: Font
    title_height: int
    detail_height: int
    band: int  # height of the label band under the image area

    @classmethod
    def for_tiles(cls, tile: int, detail_lines: int) -> _Style:
        # 28 px title, 23 px details at tile 512: readable at 100% zoom; never
        # smaller than 13/12 px, below which the bundled font turns to mush.
        title_font = _font(max(13, round(tile * 0.055)))
        detail_font = _font(max(12, round(tile * 0.045)))
        pad = max(4, round(tile * 0.02))
        title_height = _line_height(title_font)
        detail_height = _line_height(detail_font)
        band = pad + title_height + detail_lines * detail_height + pad
        return cls(
            tile=tile,
            gap=max(4, round(tile / 32)),
            pad=pad,
            title_font=title_font,
            detail_font=detail_font,
            title_height=title_height,
            detail_height=detail_height,
            band=band,
        )


@functools.cache
def _font(size: int) -> Font:
    try:
        return ImageFont.load_default(size=size)
    except Exception:  # no FreeType in this Pillow build: the fixed bitmap font
        return ImageFont.load_default()


def _line_height(font: Font) -> int:
    if isinstance(font, ImageFont.FreeTypeFont):
        ascent, descent = font.getmetrics()
        return ascent + descent
    return int(font.getbbox("Hgjy")[3]) + 3


# --------------------------------------------------------------------------
# drawing one tile


def _draw_tile(
    sheet: Image.Image, draw: ImageDraw.ImageDraw, tile: Tile, style: _Style, x: int, y: int
) -> None:
    problem = tile.error or "no image"
    fitted = None
    if tile.image is not None:
        loaded = _load_fitted(tile.image, style.tile)
        if isinstance(loaded, str):
            problem = loaded
        else:
            fitted = loaded

    area = (x, y, x + style.tile - 1, y + style.tile - 1)
    if fitted is not None:
        draw.rectangle(area, fill=_IMAGE_AREA)
        left = x + (style.tile - fitted.width) // 2
        top = y + (style.tile - fitted.height) // 2
        # An RGBA image is its own mask: transparency shows the tile behind it.
        sheet.paste(fitted, (left, top), fitted if fitted.mode == "RGBA" else None)
    else:
        draw.rectangle(area, fill=_ERROR_AREA)
        _draw_error(draw, problem, style, x, y)

    # The label band: left-aligned with the image area's edge.
    text_y = y + style.tile + style.pad
    title = _fit_line(_drawable(tile.title), style.title_font, style.tile)
    _draw_bold(draw, (x, text_y), title, style.title_font, _TITLE)
    text_y += style.title_height
    for detail in tile.details[:_MAX_DETAIL_LINES]:
        line = _fit_line(_drawable(detail), style.detail_font, style.tile)
        draw.text((x, text_y), line, font=style.detail_font, fill=_DETAIL)
        text_y += style.detail_height


def _draw_error(draw: ImageDraw.ImageDraw, message: str, style: _Style, x: int, y: int) -> None:
    """A "failed" heading and the wrapped message, centred vertically in the image area."""
    margin = 2 * style.pad
    heading = style.title_height + style.detail_height // 2
    # Eight lines fit a tile of 512; a small tile takes what fits inside it.
    room = (style.tile - 2 * margin - heading) // style.detail_height
    max_lines = max(1, min(room, _MAX_ERROR_LINES))
    lines = _wrap(message, style.detail_font, style.tile - 2 * margin, max_lines)
    block = heading + len(lines) * style.detail_height
    text_y = y + max(margin, (style.tile - block) // 2)
    _draw_bold(draw, (x + margin, text_y), "failed", style.title_font, _WARNING)
    text_y += heading
    for line in lines:
        draw.text((x + margin, text_y), line, font=style.detail_font, fill=_WARNING)
        text_y += style.detail_height


def _draw_bold(
    draw: ImageDraw.ImageDraw, xy: tuple[int, int], text: str, font: Font, fill: RGB
) -> None:
    # The bundled font has no bold face; drawing twice, one pixel apart, makes a
    # semibold that sets the title apart at a glance and works for any font.
    draw.text(xy, text, font=font, fill=fill)
    draw.text((xy[0] + 1, xy[1]), text, font=font, fill=fill)


def _load_fitted(path: Path, box: int) -> Image.Image | str:
    """The image scaled to fit a ``box`` square (RGB, or RGBA if it has
    transparency), or a short reason why it cannot be shown."""
    try:
        with Image.open(path) as im:
            size = _fit_size(im.size, box)
            # JPEG only: decode at 1/2, 1/4 or 1/8 scale straight away.
            im.draft("RGB", size)
            mode = "RGBA" if im.has_transparency_data else "RGB"
            converted: Image.Image = im if im.mode == mode else im.convert(mode)
            # reducing_gap: a cheap integer reduce() first (exact for 1024 -> 512),
            # then Lanczos for the rest of the scale.
            return converted.resize(size, Image.Resampling.LANCZOS, reducing_gap=1.0)
    except FileNotFoundError:
        return f"image file not found: {path.name}"
    except UnidentifiedImageError:
        return f"not an image Pillow can read: {path.name}"
    except OSError as exc:  # strerror leaves out the full path the message repeats
        return f"cannot read {path.name}: {exc.strerror or exc}"
    except Exception as exc:  # a corrupt file or a decompression bomb: a tile, not a failed sheet
        return f"cannot read {path.name}: {exc}"


def _fit_size(size: tuple[int, int], box: int) -> tuple[int, int]:
    width, height = size
    scale = box / max(width, height)
    return (
        min(box, max(1, round(width * scale))),
        min(box, max(1, round(height * scale))),
    )


# --------------------------------------------------------------------------
# text that fits


@functools.cache
def _has_glyph(ch: str) -> bool:
    font = _font(16)
    if not isinstance(font, ImageFont.FreeTypeFont):
        return 0x20 <= ord(ch) < 0x7F
    notdef = font.getmask("\ue000")  # private use: never in the bundled font
    mask = font.getmask(ch)
    return not (mask.size == notdef.size and bytes(mask) == bytes(notdef))


def _drawable(text: str) -> str:
    """``text`` on one line with only characters the font can draw."""
    out = []
    for ch in text:
        if ch.isspace():
            out.append(" ")
        elif unicodedata.category(ch)[0] == "C":  # control, format, surrogate
            continue
        elif _has_glyph(ch):
            out.append(ch)
        elif ch in _TRANSLIT:
            out.append(_TRANSLIT[ch])
        else:
            base = "".join(c for c in unicodedata.normalize("NFKD", ch) if _has_glyph(c))
            out.append(base or "?")
    return " ".join("".join(out).split())


def _ellipsis() -> str:
    return "\u2026" if _has_glyph("\u2026") else "..."


def _fit_line(text: str, font: Font, width: int) -> str:
    """``text`` if it fits in ``width`` pixels, else cut short with an ellipsis."""
    return text if font.getlength(text) <= width else _ellipsize(text, font, width)


def _ellipsize(text: str, font: Font, width: int) -> str:
    """The longest prefix of ``text`` that fits in ``width`` with an ellipsis after it."""
    ell = _ellipsis()
    lo, hi = 0, len(text)  # the longest prefix that fits lies in [lo, hi]
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if font.getlength(text[:mid].rstrip() + ell) <= width:
            lo = mid
        else:
            hi = mid - 1
    return text[:lo].rstrip() + ell


def _wrap(text: str, font: Font, width: int, max_lines: int) -> list[str]:
    """Greedy word wrap (line breaks in ``text`` kept), long words broken anywhere;
    at most ``max_lines``, the last ending in an ellipsis when text was left out."""
    lines: list[str] = []
    for paragraph in text.splitlines() or [""]:
        line = ""
        for word in _drawable(paragraph).split(" "):
            candidate = f"{line} {word}" if line else word
            if font.getlength(candidate) <= width:
                line = candidate
                continue
            if line:
                lines.append(line)
            # A path or URL longer than the line: break it wherever it must.
            while font.getlength(word) > width and len(lines) <= max_lines:
                cut = _longest_prefix(word, font, width)
                lines.append(word[:cut])
                word = word[cut:]
            line = word
        lines.append(line)
        if len(lines) > max_lines:
            break
    while len(lines) > 1 and not lines[-1]:
        lines.pop()  # trailing blank lines
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        lines[-1] = _ellipsize(lines[-1], font, width)
    return lines


def _longest_prefix(word: str, font: Font, width: int) -> int:
    lo, hi = 1, len(word)  # at least one character, so the loop always advances
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if font.getlength(word[:mid]) <= width:
            lo = mid
        else:
            hi = mid - 1
    return lo
