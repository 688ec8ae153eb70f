"""The mock backend uses its input images visibly: tests read pixels."""

from __future__ import annotations

import io
import json

import pytest
from PIL import Image

from imagen_core import Capabilities, Estimate, ImageInput, Request, Session, generate
from imagen_core.models import capabilities_of, estimate_of, no_progress
from imagen_mock.backend import MockBackend, MockConfig
from imagen_mock.edit import inset_box
from imagen_mock.picture import render
from tests.helpers import write_config

W, H = 64, 48
RED, BLUE, GREEN = (220, 20, 20), (20, 20, 220), (20, 200, 20)


def png(size=(W, H), color=RED, mode="RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, color).save(buffer, "PNG")
    return buffer.getvalue()


def half_mask(size=(W, H)) -> bytes:
    """White (repaint) on the left half, black on the right."""
    mask = Image.new("L", size, 0)
    mask.paste(255, (0, 0, size[0] // 2, size[1]))
    buffer = io.BytesIO()
    mask.save(buffer, "PNG")
    return buffer.getvalue()


def run(*inputs: ImageInput, strength: float | None = None, seed: int = 5) -> Image.Image:
    request = Request("a fox", width=W, height=H, seed=seed, inputs=inputs, strength=strength)
    result = MockBackend(MockConfig()).generate(request, no_progress)
    image = Image.open(io.BytesIO(result.image))
    image.load()
    return image.convert("RGB")


def image(color=RED, size=(W, H)) -> ImageInput:
    return ImageInput.from_bytes(png(size, color))


def close(a, b, tolerance=2) -> bool:
    return all(abs(x - y) <= tolerance for x, y in zip(a, b, strict=True))


def test_it_declares_every_kind_of_input_and_is_free():
    backend = MockBackend(MockConfig())
    assert capabilities_of(backend) == Capabilities(
        text_to_image=True, images=4, strength=True, mask=True
    )
    assert capabilities_of(backend).summary() == "text, 4 images, strength, mask"
    assert estimate_of(backend, Request("x")) == Estimate(0.0, "free", "the mock backend")


def test_strength_zero_keeps_the_image_and_one_gives_the_picture():
    assert run(image(), strength=0.0).tobytes() == Image.new("RGB", (W, H), RED).tobytes()
    assert run(image(), strength=1.0).tobytes() == render("a fox", 5, W, H).tobytes()


def test_strength_sets_how_far_from_the_image_it_goes():
    picture = render("a fox", 5, W, H)
    for strength in (0.25, 0.75):
        out = run(image(), strength=strength)
        for xy in ((3, 3), (W // 2, H // 2), (W - 5, 10)):
            expected = [
                round(r + (p - r) * strength)
                for r, p in zip(RED, picture.getpixel(xy), strict=True)
            ]
            assert close(out.getpixel(xy), expected), (strength, xy)
    # without a strength: the default (0.6) -- between the two
    default = run(image()).getpixel((W // 2, H // 2))
    assert default != RED and default != picture.getpixel((W // 2, H // 2))


def test_the_mask_limits_where_it_paints():
    mask = ImageInput.from_bytes(half_mask(), role="mask")
    out = run(image(), mask)  # default strength with a mask: 1.0, repaint fully
    picture = render("a fox", 5, W, H)
    for y in (0, H // 2, H - 1):
        assert out.getpixel((W - 1, y)) == RED  # black in the mask: untouched
        assert out.getpixel((W // 2 + 2, y)) == RED
        assert out.getpixel((2, y)) == picture.getpixel((2, y))  # white: repainted
    half = run(image(), mask, strength=0.5)
    assert half.getpixel((W - 1, 0)) == RED
    assert close(
        half.getpixel((2, 2)),
        [round((r + p) / 2) for r, p in zip(RED, picture.getpixel((2, 2)), strict=True)],
    )


def test_references_are_inset_along_the_bottom():
    refs = [
        ImageInput.from_bytes(png((10, 10), color), role="reference") for color in (BLUE, GREEN)
    ]
    out = run(*refs)  # text to image with two references
    for index, color in enumerate((BLUE, GREEN)):
        left, top, right, bottom = inset_box(index, (W, H))
        assert out.getpixel((left + 1, top + 1)) == color
        assert out.getpixel((right - 2, bottom - 2)) == color
    # with an image to edit, the insets are painted like the rest (strength 1: fully)
    edited = run(image(), refs[0], strength=1.0)
    left, top, _, _ = inset_box(0, (W, H))
    assert edited.getpixel((left + 1, top + 1)) == BLUE


def test_an_image_of_another_size_is_scaled_and_the_output_is_the_requested_size():
    out = run(image(size=(16, 12)), strength=0.0)
    assert out.size == (W, H)
    assert out.getpixel((W // 2, H // 2)) == RED


def test_same_inputs_same_bytes_other_inputs_other_bytes():
    request = Request("a fox", width=W, height=H, seed=3, inputs=[image()])
    backend = MockBackend(MockConfig())
    first = backend.generate(request, no_progress).image
    assert backend.generate(request, no_progress).image == first
    other = Request("a fox", width=W, height=H, seed=3, inputs=[image(BLUE)])
    assert backend.generate(other, no_progress).image != first


def test_a_generation_with_inputs_records_them_in_the_sidecar(isolated_env, tmp_path):
    write_config(isolated_env, "")
    source = tmp_path / "photo.png"
    source.write_bytes(png())
    given = ImageInput.from_path(source)
    done = generate(Request("a fox", width=W, height=H, seed=2, inputs=[given], strength=0.3))
    sidecar = json.loads(done.sidecar.read_text())
    assert sidecar["request"]["inputs"] == [
        {
            "sha256": given.sha256,
            "role": "image",
            "width": W,
            "height": H,
            "mime_type": "image/png",
            "source": str(source),
        }
    ]
    assert sidecar["request"]["strength"] == 0.3 and sidecar["metadata"]["strength"] == 0.3
    assert b"IDAT" not in done.sidecar.read_bytes()


def test_a_backend_without_inputs_is_refused_before_it_runs(isolated_env):
    from imagen_core.errors import Unsupported

    calls = []

    class TextOnly:
        def __init__(self, _config):
            pass

        def generate(self, request, progress):
            calls.append(request)
            raise AssertionError("called")

    from imagen_core import hookimpl
    from tests.helpers import registered

    class Plugin:
        @hookimpl
        def register_backends(self, register):
            register("textonly", TextOnly)

    from imagen_core.plugins import get_plugin_manager

    write_config(isolated_env, "backends:\n  plain: {type: textonly}\n  mock: {type: mock}\n")
    with registered(get_plugin_manager(), Plugin(), "textonly"):
        session = Session()
        with pytest.raises(Unsupported) as info:
            session.generate(Request("x", backend="plain", inputs=[image()]))
    assert str(info.value) == (
        "backend 'plain' cannot take input images (it makes images from text only); "
        "backends that can: mock"
    )
    assert calls == []
