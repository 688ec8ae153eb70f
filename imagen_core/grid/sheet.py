"""A grid's labelled sheet: column headers on top, row headers on the left.

::

    +-----------------------------------------------+
    | title (prompt, and the z value)                |
    | rows: y axis  |  columns: x axis               |
    |               | value 1 | value 2 | value 3    |
    | y value 1     | [image] | [image] | [image]    |
    |               | info    | info    | info       |
    | y value 2     | ...                            |

Cells are squares of ``tile`` pixels (images fitted without distortion), the
info line under each (latency and cost) optional; a failed cell shows its
error. The tile size follows the column count so that an 8 x 8 grid of 1024²
images makes a sheet about 2,900 pixels wide whose labels stay readable at
100 %. Images are decoded and scaled on two threads (Pillow lets go of the
GIL while it decodes and resizes). Pillow only.
"""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import attrs
from PIL import Image, ImageDraw

from imagen_core.contact_sheet import (
    _BACKGROUND,
    _DETAIL,
    _ERROR_AREA,
    _IMAGE_AREA,
    _TITLE,
    _draw_bold,
    _draw_error,
    _drawable,
    _fit_line,
    _font,
    _line_height,
    _load_fitted,
    _Style,
    _wrap,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["SheetCell", "encode_png", "render_grid_sheet", "tile_for"]

_HEADER: tuple[int, int, int] = (22, 22, 22)
_AXIS: tuple[int, int, int] = (140, 190, 255)  # axis names: set apart from their values


@attrs.frozen
class SheetCell:
    """One cell of the sheet: an image, or the error in its place."""

    image: Path | None = None
    error: str | None = None
    info: str = ""  # the line under the image: "3.12 s · $0.003"


def tile_for(columns: int) -> int:
    """The tile side for ``columns`` columns: 512 up to 5, then smaller, never below 256."""
    return max(256, min(512, 2560 // max(1, columns)))


def render_grid_sheet(
    cells: Sequence[Sequence[SheetCell]],
    *,
    column_title: str,
    column_labels: Sequence[str],
    row_title: str,
    row_labels: Sequence[str],
    title: str,
    tile: int | None = None,
    info: bool = True,
) -> Image.Image:
    """``cells`` is rows of columns (``len(row_labels)`` x ``len(column_labels)``)."""
    rows, cols = len(row_labels), len(column_labels)
    if rows < 1 or cols < 1 or len(cells) != rows or any(len(row) != cols for row in cells):
        raise ValueError(f"cells must be {rows} rows of {cols} columns")
    side = tile or tile_for(cols)
    style = _Style.for_tiles(side, 0)  # its fonts and spacing, for the error text
    head_font = _font(max(18, round(side * 0.07)))
    label_font = _font(max(16, round(side * 0.06)))
    head_h = _line_height(head_font)
    label_h = _line_height(label_font)
    gap, pad = style.gap, style.pad
    # The info line: 16 px at 320 px tiles (8 columns), never under 15 px.
    info_font = _font(max(15, round(side * 0.05)))
    band = pad + _line_height(info_font) + pad if info else 0
    left = max(side // 2, 200)  # the row headers' column
    header_lines = 2
    top = pad + head_h + pad + head_h + header_lines * label_h + pad
    pitch_x, pitch_y = side + gap, side + band + gap
    width = gap + left + gap + cols * pitch_x
    height = top + rows * pitch_y + gap
    sheet = Image.new("RGB", (width, height), _BACKGROUND)
    draw = ImageDraw.Draw(sheet)

    # Title, then the axis names, then the column headers.
    draw.rectangle((0, 0, width, top - pad), fill=_HEADER)
    _draw_bold(
        draw, (gap, pad), _fit_line(_drawable(title), head_font, width - 2 * gap), head_font, _TITLE
    )
    axis_y = pad + head_h + pad
    corner = f"rows: {row_title}" if rows > 1 or row_title else ""
    draw.text(
        (gap, axis_y), _fit_line(_drawable(corner), label_font, left), font=label_font, fill=_AXIS
    )
    x0 = gap + left + gap
    _draw_bold(
        draw,
        (x0, axis_y),
        _fit_line(_drawable(f"columns: {column_title}"), label_font, width - x0 - gap),
        label_font,
        _AXIS,
    )
    for col, label in enumerate(column_labels):
        lines = _wrap(label, label_font, side, header_lines)
        y = axis_y + head_h
        for line in lines:
            x = x0 + col * pitch_x + max(0, (side - int(label_font.getlength(line))) // 2)
            draw.text((x, y), line, font=label_font, fill=_TITLE)
            y += label_h

    # Row headers: the value, wrapped, at the top of its row.
    for row, label in enumerate(row_labels):
        y = top + row * pitch_y + pad
        for line in _wrap(label, label_font, left - pad, max(1, side // label_h)):
            draw.text((gap, y), line, font=label_font, fill=_TITLE)
            y += label_h

    flat = [cell for row_cells in cells for cell in row_cells]
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="sheet") as pool:
        fitted = list(pool.map(lambda c: _load_fitted(c.image, side) if c.image else None, flat))
    for index, (cell, image) in enumerate(zip(flat, fitted, strict=True)):
        row, col = divmod(index, cols)
        x, y = x0 + col * pitch_x, top + row * pitch_y
        area = (x, y, x + side - 1, y + side - 1)
        if image is None or isinstance(image, str):
            draw.rectangle(area, fill=_ERROR_AREA)
            problem = image if isinstance(image, str) else (cell.error or "no image")
            _draw_error(draw, problem, style, x, y)
        else:
            draw.rectangle(area, fill=_IMAGE_AREA)
            left_x = x + (side - image.width) // 2
            top_y = y + (side - image.height) // 2
            sheet.paste(image, (left_x, top_y), image if image.mode == "RGBA" else None)
        if info and cell.info:
            line = _fit_line(_drawable(cell.info), info_font, side)
            draw.text((x, y + side + pad), line, font=info_font, fill=_DETAIL)
    return sheet


def encode_png(sheet: Image.Image) -> bytes:
    """The sheet as PNG bytes (compress level 3, as the contact sheet)."""
    buf = io.BytesIO()
    buf.name = "sheet.png"  # not format=: that imports every Pillow format plugin
    sheet.save(buf, compress_level=3)
    return buf.getvalue()
