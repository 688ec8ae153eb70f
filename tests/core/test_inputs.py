"""imagen_core.inputs: input images from paths, stdin and bytes, checked at the door."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from imagen_core.errors import InvalidInput
from imagen_core.inputs import load_input, load_inputs


def png(size=(32, 24), color=(200, 0, 0), fmt="PNG", mode="RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, color).save(buffer, fmt)
    return buffer.getvalue()


class Stream(io.BytesIO):
    def __init__(self, data: bytes = b"", tty: bool = False) -> None:
        super().__init__(data)
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


@pytest.fixture
def files(tmp_path):
    def make(name: str, data: bytes) -> str:
        path = tmp_path / name
        path.write_bytes(data)
        return str(path)

    return make


def test_roles_follow_the_order_and_sources_are_kept(files):
    a, b, m = files("a.png", png()), files("b.jpg", png(fmt="JPEG")), files("m.png", png())
    inputs = load_inputs([a, b], m)
    assert [(i.role, i.source, i.mime_type) for i in inputs] == [
        ("image", a, "image/png"),
        ("reference", b, "image/jpeg"),
        ("mask", m, "image/png"),
    ]
    assert load_inputs() == ()


def test_bytes_are_inputs_without_a_source():
    [one] = load_inputs([png(fmt="WEBP")])
    assert (one.role, one.source, one.mime_type, one.width) == ("image", None, "image/webp", 32)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"not an image at all", "is not a readable image"),
        (png(fmt="GIF", mode="P", color=1), "is GIF; give a PNG, JPEG or WebP file"),
        (png(size=(8193, 1)), "is 8193x1; input images may be at most 8192 pixels a side"),
    ],
)
def test_a_bad_file_is_named(files, data, message):
    path = files("bad.png", data)
    with pytest.raises(InvalidInput) as info:
        load_inputs([path])
    assert str(info.value).startswith(path) and message in str(info.value)
    assert info.value.exit_code == 2


def test_a_missing_file_and_an_empty_path_are_named(tmp_path):
    with pytest.raises(InvalidInput, match=f"cannot read input image {tmp_path}/nope.png: No such"):
        load_inputs([str(tmp_path / "nope.png")])
    with pytest.raises(InvalidInput, match="an empty path was given for the mask"):
        load_inputs([png()], " ")


def test_a_file_over_50_mb_is_refused_before_it_is_read(tmp_path):
    big = tmp_path / "huge.png"
    with big.open("wb") as handle:
        handle.truncate(51 * 2**20)  # sparse: costs no disk
    with pytest.raises(InvalidInput, match=r"huge.png: 51.0 MB is over the 50 MB limit"):
        load_inputs([str(big)])


def test_a_mask_needs_an_image():
    with pytest.raises(InvalidInput, match="--mask needs an image to apply to"):
        load_inputs([], png())


def test_stdin_bytes(files):
    [one] = load_inputs(["-"], stdin=Stream(png()))
    assert one.source is None and one.width == 32


def test_stdin_naming_a_file_reads_the_file(files):
    path = files("made.png", png(color=(0, 9, 0)))
    [one, ref] = load_inputs(["-", path], stdin=Stream(f"{path}\n".encode()))
    assert one.source == path and one.data == png(color=(0, 9, 0))
    assert ref.role == "reference"


@pytest.mark.parametrize(
    ("data", "tty", "message"),
    [
        (b"", True, "stdin is a terminal: pipe an image or a path"),
        (b"", False, "stdin is empty: pipe an image or a path into '-'"),
        (b" \n", False, "stdin is empty"),
        (b"/no/such/file.png\n", False, "stdin holds text, not an image, and '/no/such/file.png'"),
        (
            b"/a.png\n/b.png\n",
            False,
            "stdin holds 2 lines of text; '-' takes one image or one path",
        ),
    ],
)
def test_stdin_errors(data, tty, message):
    with pytest.raises(InvalidInput, match=message.replace("?", r"\?").replace(".", r"\.")):
        load_inputs(["-"], stdin=Stream(data, tty))


def test_stdin_holding_neither_image_nor_text_is_not_an_image():
    with pytest.raises(InvalidInput, match="the input image is not a readable image"):
        load_input("-", stdin=Stream(b"\x00\x01garbage"))


def test_stdin_is_read_once():
    with pytest.raises(InvalidInput, match="stdin can be read once"):
        load_inputs(["-"], "-", stdin=Stream(png()))


def test_a_mask_of_the_same_shape_is_scaled_with_a_warning(files):
    image = files("i.png", png((64, 48)))
    mask = files("m.png", png((32, 24), color=(255, 255, 255)))
    said: list[str] = []
    loaded = load_inputs([image], mask, warn=said.append)
    assert (loaded[-1].width, loaded[-1].height, loaded[-1].role) == (64, 48, "mask")
    assert loaded[-1].source == mask
    assert said == [f"{mask} is 32x24; scaled it to the image's 64x48"]


def test_a_mask_of_another_shape_is_refused(files):
    image = files("i.png", png((64, 48)))
    mask = files("m.png", png((48, 48)))
    with pytest.raises(InvalidInput) as info:
        load_inputs([image], mask)
    assert str(info.value) == (
        f"{mask} is 48x48 but the image is 64x48: a mask must have the image's size "
        "(or at least its shape)"
    )
