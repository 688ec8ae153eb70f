"""The contact sheet of ``imagen compare``: grid geometry, undistorted fitting,
error tiles, labels and determinism, checked on the pixels Pillow produces."""

from __future__ import annotations

import io
from pathlib import Path

import attrs
import pytest
from PIL import Image, ImageChops

from imagen_core import contact_sheet
from imagen_core.contact_sheet import Tile, render_sheet, sheet_png
from imagen_mock.picture import render_png

TILE = 128  # small tiles keep the tests fast; the layout scales with tile_size
RED, GREEN, BLUE = (220, 20, 20), (20, 200, 40), (30, 60, 230)


@attrs.frozen
class Grid:
    """Where things are on a sheet, measured from sheets rather than copied from
    the module's constants, so a wrong pitch or gap shows up as a wrong size."""

    tile: int
    gap: int
    pitch_x: int  # from one cell's left edge to the next
    pitch_y: int  # from one cell's top edge to the next row's

    def area(self, index: int, columns: int) -> tuple[int, int, int, int]:
        """The square image area of cell ``index``, as a crop box."""
        row, col = divmod(index, columns)
        x, y = self.gap + col * self.pitch_x, self.gap + row * self.pitch_y
        return (x, y, x + self.tile, y + self.tile)

    def band(self, index: int, columns: int) -> tuple[int, int, int, int]:
        """The label band under cell ``index``."""
        x0, _, x1, y1 = self.area(index, columns)
        return (x0, y1, x1, y1 + self.pitch_y - self.tile - self.gap)


def failed(title: str = "b", details: tuple[str, ...] = ("m", "1.00 s · free")) -> Tile:
    return Tile(title, details, None, "boom")


def measure(tile_size: int = TILE, details: int = 2) -> Grid:
    tile = failed(details=("d",) * details)
    one = render_sheet([tile], tile_size=tile_size).size
    two_across = render_sheet([tile] * 2, tile_size=tile_size, columns=2).size
    two_down = render_sheet([tile] * 2, tile_size=tile_size, columns=1).size
    pitch_x, pitch_y = two_across[0] - one[0], two_down[1] - one[1]
    gap = one[0] - tile_size
    assert gap % 2 == 0
    return Grid(tile_size, gap // 2, pitch_x, pitch_y)


def solid(path: Path, size: tuple[int, int], colour: tuple[int, ...], mode: str = "RGB") -> Path:
    Image.new(mode, size, colour).save(path)
    return path


def colour_box(img: Image.Image, colour: tuple[int, int, int]) -> tuple[int, int, int, int] | None:
    """Bounding box of the pixels within a small distance of ``colour``."""
    target = Image.new("RGB", img.size, colour)
    diff = ImageChops.difference(img.convert("RGB"), target).convert("L")
    return diff.point(lambda v: 255 if v < 24 else 0).getbbox()


def is_uniform(img: Image.Image) -> bool:
    return all(lo == hi for lo, hi in img.getextrema())


# --------------------------------------------------------------------------
# grid geometry


def test_cells_are_a_square_image_area_plus_a_label_band_with_a_small_gap() -> None:
    grid = measure(512)
    assert grid.pitch_x == 512 + grid.gap
    assert 4 <= grid.gap <= 32
    band = grid.pitch_y - 512 - grid.gap
    # Title and two detail lines at readable sizes, yet no wasted space.
    assert 70 <= band <= 140, band
    assert render_sheet([failed()], tile_size=512).size == (
        512 + 2 * grid.gap,
        grid.pitch_y + grid.gap,
    )


@pytest.mark.parametrize(
    ("count", "columns", "rows"),
    [
        (1, 1, 1),
        (2, 2, 1),
        (3, 3, 1),
        (4, 2, 2),
        (5, 3, 2),
        (6, 3, 2),
        (7, 4, 2),
        (8, 4, 2),
        (9, 3, 3),
        (10, 4, 3),
        (16, 4, 4),
    ],
)
def test_automatic_grid_is_near_square_and_wide(count: int, columns: int, rows: int) -> None:
    grid = measure()
    sheet = render_sheet([failed()] * count, tile_size=TILE)
    assert sheet.size == (columns * grid.pitch_x + grid.gap, rows * grid.pitch_y + grid.gap)
    assert sheet.mode == "RGB"


@pytest.mark.parametrize(
    ("count", "asked", "columns", "rows"),
    [(8, 3, 3, 3), (8, 8, 8, 1), (8, 1, 1, 8), (3, 2, 2, 2), (2, 5, 2, 1)],
)
def test_explicit_columns_are_kept_but_never_more_than_tiles(
    count: int, asked: int, columns: int, rows: int
) -> None:
    grid = measure()
    sheet = render_sheet([failed()] * count, tile_size=TILE, columns=asked)
    assert sheet.size == (columns * grid.pitch_x + grid.gap, rows * grid.pitch_y + grid.gap)


def test_tiles_fill_the_grid_row_by_row_in_order(tmp_path: Path) -> None:
    colours = [RED, GREEN, BLUE, (240, 240, 0), (0, 230, 230)]
    tiles = [
        Tile(f"t{i}", (), solid(tmp_path / f"{i}.png", (64, 64), c)) for i, c in enumerate(colours)
    ]
    sheet = render_sheet(tiles, tile_size=TILE, columns=2)
    grid = measure(details=0)
    for index, colour in enumerate(colours):
        assert colour_box(sheet, colour) == grid.area(index, 2), index


def test_the_label_band_grows_with_the_most_detail_lines_and_is_capped() -> None:
    heights = [render_sheet([failed(details=("d",) * n)], tile_size=TILE).height for n in range(7)]
    line = heights[1] - heights[0]
    assert line > 0
    assert heights[:5] == [heights[0] + n * line for n in range(5)]
    assert heights[5] == heights[6] == heights[4]  # at most four detail lines
    mixed = render_sheet([failed(details=()), failed(details=("a", "b"))], tile_size=TILE)
    assert mixed.height == heights[2]  # every cell the same height
    # Lines past the fourth are dropped, not drawn into the gap below the band.
    grid = measure(details=4)
    many = render_sheet([failed(details=("Hgjy",) * 6)] * 2, tile_size=TILE, columns=1)
    x0, _, x1, y1 = grid.band(0, 1)
    assert is_uniform(many.crop((x0, y1, x1, y1 + grid.gap)))


@pytest.mark.parametrize(
    "kwargs", [{"tile_size": 16}, {"columns": 0}, {"columns": -1}], ids=["tiny", "zero", "neg"]
)
def test_bad_arguments_are_value_errors(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError, match=r"tile_size|columns"):
        render_sheet([failed()], **kwargs)


def test_no_tiles_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="at least one tile"):
        render_sheet([])


# --------------------------------------------------------------------------
# fitting images without distortion


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        ((1536, 512), (512, 171)),  # 3:1, letterboxed top and bottom
        ((512, 1536), (171, 512)),  # 1:3, pillarboxed
        ((1024, 1024), (512, 512)),  # the usual case: exact halving
        ((64, 64), (512, 512)),  # small images are scaled up to the tile
        ((1360, 768), (512, 289)),  # a non-integer factor
        ((3000, 2000), (512, 341)),
    ],
)
def test_images_keep_their_aspect_ratio_and_are_centred(
    tmp_path: Path, size: tuple[int, int], expected: tuple[int, int]
) -> None:
    sheet = render_sheet([Tile("r", (), solid(tmp_path / "r.png", size, RED))], tile_size=512)
    grid = measure(512, details=0)
    x0, y0, x1, y1 = grid.area(0, 1)
    box = colour_box(sheet, RED)
    assert box is not None
    width, height = box[2] - box[0], box[3] - box[1]
    assert abs(width - expected[0]) <= 1 and abs(height - expected[1]) <= 1, box
    assert abs(width / height - size[0] / size[1]) < 0.02 * size[0] / size[1]
    # Centred: equal margins (within a pixel) inside the image area.
    assert abs((box[0] - x0) - (x1 - box[2])) <= 1
    assert abs((box[1] - y0) - (y1 - box[3])) <= 1
    # The letterbox bars are the plain image-area colour, not stretched image.
    if height < 500:
        assert is_uniform(sheet.crop((x0, y0, x1, box[1])))


def test_mixed_sizes_and_modes_share_one_grid(tmp_path: Path) -> None:
    tiles = [
        Tile("wide", (), solid(tmp_path / "wide.png", (900, 300), RED)),
        Tile("tall", (), solid(tmp_path / "tall.jpg", (200, 600), GREEN)),  # JPEG: draft()
        Tile("grey", (), solid(tmp_path / "grey.png", (400, 400), 120, mode="L")),
        Tile("palette", (), solid(tmp_path / "p.gif", (100, 50), BLUE)),  # GIF: mode P
    ]
    sheet = render_sheet(tiles, tile_size=TILE, columns=4)
    grid = measure(details=0)
    assert sheet.size == (4 * grid.pitch_x + grid.gap, grid.pitch_y + grid.gap)
    expected = [
        (RED, (128, 43)),
        (GREEN, (43, 128)),
        ((120, 120, 120), (128, 128)),
        (BLUE, (128, 64)),
    ]
    for index, (colour, (width, height)) in enumerate(expected):
        area = grid.area(index, 4)
        box = colour_box(sheet.crop(area), colour)
        assert box is not None, index
        assert abs(box[2] - box[0] - width) <= 2 and abs(box[3] - box[1] - height) <= 2, (
            index,
            box,
        )


def test_transparent_pixels_show_the_tile_behind_them(tmp_path: Path) -> None:
    path = solid(tmp_path / "clear.png", (64, 64), (255, 0, 0, 0), mode="RGBA")
    opaque = solid(tmp_path / "wide.png", (128, 32), RED)
    sheet = render_sheet([Tile("a", (), path), Tile("b", (), opaque)], tile_size=TILE)
    grid = measure(details=0)
    clear = sheet.crop(grid.area(0, 2))
    assert is_uniform(clear)
    # The same colour as the letterbox bars of an opaque image: not black, not red.
    x0, y0, _, _ = grid.area(1, 2)
    assert clear.getpixel((0, 0)) == sheet.getpixel((x0 + 1, y0 + 1)) != (0, 0, 0)


def test_a_real_generated_picture_is_scaled_faithfully(tmp_path: Path) -> None:
    path = tmp_path / "mock.png"
    path.write_bytes(render_png("a lighthouse at dusk", 7, 1024, 1024))
    sheet = render_sheet([Tile("mock", (), path)], tile_size=512)
    grid = measure(512, details=0)
    cell = sheet.crop(grid.area(0, 1))
    reference = Image.open(path).convert("RGB").resize((512, 512), Image.Resampling.LANCZOS)
    diff = ImageChops.difference(cell, reference).convert("L")
    mean = sum(i * n for i, n in enumerate(diff.histogram())) / (512 * 512)
    assert mean < 3, mean  # close to a straight Lanczos resize: nothing shifted or blurred


# --------------------------------------------------------------------------
# failed and unreadable tiles


def warning_box(img: Image.Image) -> tuple[int, int, int, int] | None:
    return colour_box(img, contact_sheet._WARNING)


def test_a_failed_tile_shows_its_error_wrapped_inside_the_image_area() -> None:
    grid = measure(details=0)
    short = render_sheet([Tile("b", (), None, "timeout")], tile_size=TILE, columns=1)
    long_message = "the server answered 503 Service Unavailable " * 4
    long = render_sheet([Tile("b", (), None, long_message)], tile_size=TILE, columns=1)
    area = grid.area(0, 1)
    short_box, long_box = warning_box(short.crop(area)), warning_box(long.crop(area))
    assert short_box is not None and long_box is not None
    # Wrapped onto more lines, not run off the side of the tile.
    assert long_box[3] - long_box[1] > 2 * (short_box[3] - short_box[1])
    assert long_box[0] > 0 and long_box[2] < TILE
    # The label band under it has no warning text in it.
    assert warning_box(long.crop(grid.band(0, 1))) is None


def test_error_text_is_capped_and_never_leaves_its_tile() -> None:
    grid = measure(details=0)
    huge = "x" * 5000 + " word" * 2000
    for size in (TILE, 512):
        box = warning_box(render_sheet([Tile("a", (), None, huge)], tile_size=size))
        assert box is not None
        x0, y0, x1, y1 = measure(size, details=0).area(0, 1)
        assert x0 < box[0] and box[2] < x1 and y0 < box[1] and box[3] < y1, (size, box)
    sheet = render_sheet([Tile("a", (), None, huge), Tile("b", (), None, "ok")], tile_size=TILE)
    assert warning_box(sheet.crop(grid.area(1, 2))) is not None  # the next tile still drawn


def test_wrap_keeps_at_most_eight_lines_each_fitting_and_marks_the_cut() -> None:
    font = contact_sheet._font(20)
    lines = contact_sheet._wrap("word " * 500, font, 300, 8)
    assert len(lines) == 8
    assert all(font.getlength(line) <= 300 for line in lines)
    assert lines[-1].endswith("\u2026")
    assert contact_sheet._wrap("a/very/long/path/" * 10, font, 100, 8)[0].startswith("a/very")
    assert contact_sheet._wrap("one\ntwo", font, 300, 8) == ["one", "two"]
    assert contact_sheet._wrap("short", font, 300, 8) == ["short"]


def test_different_errors_draw_different_tiles() -> None:
    a = sheet_png([Tile("b", (), None, "connection refused")], tile_size=TILE)
    b = sheet_png([Tile("b", (), None, "out of memory")], tile_size=TILE)
    assert a != b


def test_an_unreadable_image_becomes_an_error_tile(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.png"
    garbage.write_bytes(b"this is not a PNG")
    real = tmp_path / "real.png"
    real.write_bytes(render_png("x", 1, 256, 256))
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(real.read_bytes()[:2000])
    tiles = [
        Tile("garbage", (), garbage),
        Tile("missing", (), tmp_path / "missing.png"),
        Tile("truncated", (), truncated),
        Tile("directory", (), tmp_path),
    ]
    sheet = render_sheet(tiles, tile_size=TILE, columns=4)
    grid = measure(details=0)
    for index in range(len(tiles)):
        assert warning_box(sheet.crop(grid.area(index, 4))) is not None, tiles[index].title


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("garbage.png", "not an image"),
        ("missing.png", "not found"),
        ("truncated.png", "truncated"),
        ("folder.png", "directory"),
    ],
)
def test_the_reason_for_an_unreadable_image_is_short_and_names_the_file(
    tmp_path: Path, name: str, reason: str
) -> None:
    (tmp_path / "garbage.png").write_bytes(b"GIF89a broken")
    (tmp_path / "truncated.png").write_bytes(render_png("x", 1, 256, 256)[:2000])
    (tmp_path / "folder.png").mkdir()
    message = contact_sheet._load_fitted(tmp_path / name, TILE)
    assert isinstance(message, str)
    assert reason in message and name in message
    assert str(tmp_path) not in message and len(message) < 120


# --------------------------------------------------------------------------
# labels


def test_labels_are_drawn_in_the_band() -> None:
    grid = measure()
    sheet = render_sheet([failed(), failed(details=())], tile_size=TILE)
    band = sheet.crop(grid.band(0, 2))
    assert not is_uniform(band)
    # Title line and detail lines both carry text.
    third = band.height // 3
    assert not is_uniform(band.crop((0, 0, band.width, third)))
    assert not is_uniform(band.crop((0, 2 * third, band.width, band.height)))
    # A tile without details leaves the detail lines empty.
    other = sheet.crop(grid.band(1, 2))
    assert is_uniform(other.crop((0, 2 * third, other.width, other.height)))


def test_different_labels_draw_different_bands() -> None:
    grid = measure()
    a = render_sheet([failed("comfyui")], tile_size=TILE).crop(grid.band(0, 1))
    b = render_sheet([failed("replicate")], tile_size=TILE).crop(grid.band(0, 1))
    assert ImageChops.difference(a, b).getbbox() is not None


def test_the_title_is_larger_than_the_details() -> None:
    grid = measure(512)
    band = render_sheet([failed("H", ("H", "H"))], tile_size=512).crop(grid.band(0, 1))
    rows = [y for y in range(band.height) if not is_uniform(band.crop((0, y, band.width, y + 1)))]
    runs: list[list[int]] = []
    for y in rows:
        if runs and y == runs[-1][-1] + 1:
            runs[-1].append(y)
        else:
            runs.append([y])
    title, *details = (len(run) for run in runs)
    assert len(details) == 2
    assert title > max(details) >= 14  # an "H" ~16 px tall at tile 512: readable at 100%


def test_long_labels_are_cut_with_an_ellipsis_inside_their_cell() -> None:
    grid = measure()
    title = "a-very-long-backend-instance-name-" * 5
    sheet = render_sheet([failed(title, (title,)), failed()], tile_size=TILE)
    x0, y0, x1, y1 = grid.band(0, 2)
    # The gap between the two cells stays empty: the label did not run over.
    assert is_uniform(sheet.crop((x1, y0, x1 + grid.gap, y1)))
    # But the label did use the width of its cell.
    ink = ImageChops.difference(
        sheet.crop((x0, y0, x1, y1)), Image.new("RGB", (TILE, y1 - y0), contact_sheet._BACKGROUND)
    )
    box = ink.getbbox()
    assert box is not None and box[2] > TILE * 0.85


@pytest.mark.parametrize(
    ("text", "drawable"),
    [
        ("1024×1024 — ok", "1024x1024 - ok"),
        ("café naïve", "cafe naive"),
        ("3.12 s · $0.003", "3.12 s · $0.003"),
        ("tab\tand\nnewline", "tab and newline"),
        ("日本", "??"),
        ("bell\x07", "bell"),
    ],
)
def test_text_is_reduced_to_what_the_font_can_draw(text: str, drawable: str) -> None:
    assert contact_sheet._drawable(text) == drawable


# --------------------------------------------------------------------------
# encoding


def test_same_tiles_give_the_same_png_bytes(tmp_path: Path) -> None:
    paths = []
    for seed in (1, 2, 3):
        path = tmp_path / f"{seed}.png"
        path.write_bytes(render_png("a lighthouse", seed, 256, 192))
        paths.append(path)
    tiles = [Tile(f"b{i}", ("model", "1.00 s · free"), p) for i, p in enumerate(paths)]
    tiles.append(Tile("broken", ("failed",), None, "HTTP 500"))
    first, second = sheet_png(tiles, tile_size=TILE), sheet_png(tiles, tile_size=TILE)
    assert first == second
    assert first.startswith(b"\x89PNG\r\n\x1a\n")
    decoded = Image.open(io.BytesIO(first))
    assert decoded.mode == "RGB"
    assert ImageChops.difference(decoded, render_sheet(tiles, tile_size=TILE)).getbbox() is None


def test_without_freetype_the_bitmap_font_still_labels_every_tile(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from PIL import ImageFont

    def no_freetype(size: float | None = None) -> ImageFont.ImageFont:
        if size is not None:
            raise ImportError("The _imagingft C module is not installed")
        return ImageFont.load_default_imagefont()

    monkeypatch.setattr(ImageFont, "load_default", no_freetype)
    contact_sheet._font.cache_clear()
    contact_sheet._has_glyph.cache_clear()
    try:
        assert not isinstance(contact_sheet._font(28), ImageFont.FreeTypeFont)
        tiles = [failed("x" * 300, ("1024×1024 · é",)), Tile("b", (), None, "long error " * 200)]
        sheet = render_sheet(tiles, tile_size=TILE)
        grid = measure(details=1)
    finally:
        contact_sheet._font.cache_clear()
        contact_sheet._has_glyph.cache_clear()
    for index in range(2):
        assert not is_uniform(sheet.crop(grid.band(index, 2)))
        assert warning_box(sheet.crop(grid.area(index, 2))) is not None
    # The over-long title is still cut to its cell.
    _, y0, x1, y1 = grid.band(0, 2)
    assert is_uniform(sheet.crop((x1, y0, x1 + grid.gap, y1)))
