from __future__ import annotations

import subprocess
import sys

import attrs
import pytest

from imagen_core.errors import InvalidRequest, UsageError
from imagen_core.models import Request, Result


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"prompt": ""}, "prompt is empty"),
        ({"prompt": "   \n"}, "prompt is empty"),
        ({"width": 0}, "width must be between 1 and 8192, got 0"),
        ({"height": 8193}, "height must be between 1 and 8192, got 8193"),
        ({"width": -5}, "width must be between 1 and 8192"),
        ({"seed": -1}, "seed must be between 0 and"),
        ({"steps": -2}, "steps must be between 0 and"),
        ({"width": True}, "width must be a whole number"),
        ({"seed": 1.5}, "seed must be a whole number"),
    ],
)
def test_request_rejects_bad_values(kwargs: dict, message: str) -> None:
    values = {"prompt": "a cat", **kwargs}
    with pytest.raises(InvalidRequest, match=message) as info:
        Request(**values)
    assert info.value.exit_code == 2
    assert isinstance(info.value, UsageError)


def test_request_accepts_the_edges_and_is_frozen() -> None:
    request = Request("a cat", width=8192, height=1, seed=2**64 - 1, steps=0)
    assert (request.width, request.height) == (8192, 1)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        request.prompt = "a dog"  # type: ignore[misc]
    with pytest.raises(InvalidRequest):
        attrs.evolve(request, width=0)


def test_request_extra_is_copied_not_shared() -> None:
    extra = {"cfg": 3.5}
    request = Request("a cat", extra=extra)
    extra["cfg"] = 9
    assert request.extra == {"cfg": 3.5}


def test_result_repr_hides_the_image_bytes_and_extension_follows_mime() -> None:
    result = Result(image=b"\x89PNG" + b"x" * 5000, seed=3, model="m")
    assert "xxxx" not in repr(result)
    assert "<5004 bytes>" in repr(result)
    assert result.extension == "png"
    assert attrs.evolve(result, mime_type="image/jpeg").extension == "jpg"
    assert attrs.evolve(result, mime_type="image/webp").extension == "webp"


def test_warn_once(capsys):
    from imagen_core import warn

    warn("replicate: no price for a/b", once="price:a/b")
    warn("replicate: no price for a/b", once="price:a/b")
    warn("plain")
    assert capsys.readouterr().err == "imagen: replicate: no price for a/b\nimagen: plain\n"


# ------------------------------------------------------------ image inputs


def _png(width: int = 16, height: int = 8, fmt: str = "PNG") -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(buffer, fmt)
    return buffer.getvalue()


def test_image_input_reads_size_format_and_hash_from_the_bytes(tmp_path) -> None:
    import hashlib

    from imagen_core.models import ImageInput

    data = _png(16, 8, "WEBP")
    item = ImageInput.from_bytes(data, role="reference", source="ref.webp")
    assert (item.width, item.height, item.mime_type) == (16, 8, "image/webp")
    assert item.sha256 == hashlib.sha256(data).hexdigest()
    assert item.describe() == {
        "sha256": item.sha256,
        "role": "reference",
        "width": 16,
        "height": 8,
        "mime_type": "image/webp",
        "source": "ref.webp",
    }
    assert item.data_uri().startswith("data:image/webp;base64,")
    path = tmp_path / "in.jpg"
    path.write_bytes(_png(4, 4, "JPEG"))
    loaded = ImageInput.from_path(path)
    assert (loaded.mime_type, loaded.source, loaded.role) == ("image/jpeg", str(path), "image")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"not an image at all", "in.png is not a readable image"),
        (_png(fmt="GIF"), "in.png is GIF; give a PNG, JPEG or WebP file"),
        (_png(fmt="PNG")[:40], "in.png is not a readable image"),
    ],
)
def test_image_input_rejects_what_cannot_be_used(data: bytes, message: str) -> None:
    from imagen_core.errors import InvalidInput
    from imagen_core.models import ImageInput

    with pytest.raises(InvalidInput, match=message) as info:
        ImageInput.from_bytes(data, source="in.png")
    assert info.value.exit_code == 2
    # Said in words: no Python object's repr ("<_io.BytesIO object at 0x...>").
    assert " object at 0x" not in str(info.value)
    assert "Error:" not in str(info.value)


def test_image_input_refuses_oversized_files_before_reading_them(tmp_path) -> None:
    from imagen_core.errors import InvalidInput
    from imagen_core.models import ImageInput

    big = tmp_path / "big.png"
    with big.open("wb") as handle:
        handle.truncate(50 * 1024 * 1024 + 1)
    with pytest.raises(InvalidInput, match=r"big.png: 50.0 MB is over the 50 MB limit"):
        ImageInput.from_path(big)
    with pytest.raises(InvalidInput, match=r"cannot read input image .*missing\.png"):
        ImageInput.from_path(tmp_path / "missing.png")


def test_request_orders_and_checks_its_inputs() -> None:
    from imagen_core.models import ImageInput

    image = ImageInput.from_bytes(_png())
    ref = ImageInput.from_bytes(_png(8, 8), role="reference")
    mask = ImageInput.from_bytes(_png(), role="mask")
    request = Request("edit", inputs=[image, ref, mask], strength=1)
    assert request.image is image and request.mask is mask
    assert request.images == (image, ref) and request.references == (ref,)
    assert request.strength == 1.0 and isinstance(request.strength, float)
    with pytest.raises(InvalidRequest, match="a mask needs an image"):
        Request("x", inputs=[mask])
    with pytest.raises(InvalidRequest, match="one image to edit"):
        Request("x", inputs=[image, image])
    with pytest.raises(InvalidRequest, match="comes before the references"):
        Request("x", inputs=[ref, image])
    with pytest.raises(InvalidRequest, match=r"strength must be from 0 to 1, got 1\.5"):
        Request("x", strength=1.5)
    with pytest.raises(InvalidRequest, match="strength must be a number"):
        Request("x", strength="high")


def test_capabilities_name_what_a_backend_lacks() -> None:
    from imagen_core.models import Capabilities, ImageInput

    image = ImageInput.from_bytes(_png())
    mask = ImageInput.from_bytes(_png(), role="mask")
    text_only = Capabilities()
    assert text_only.lacks(Request("x")) is None
    assert "input images" in (text_only.lacks(Request("x", inputs=[image])) or "")
    one = Capabilities(images=1)
    two_refs = Request("x", inputs=[image, image.with_role("reference")])
    assert one.lacks(two_refs) == "2 input images (it takes at most 1)"
    assert one.lacks(Request("x", inputs=[image, mask])) == "a mask (it does not inpaint)"
    assert one.lacks(Request("x", inputs=[image], strength=0.5)) == (
        "a strength (it has no img2img strength)"
    )
    edit_only = Capabilities(text_to_image=False, images=1, mask=True, strength=True)
    assert "an input image" in (edit_only.lacks(Request("x")) or "")
    assert edit_only.lacks(Request("x", inputs=[image, mask], strength=0.2)) is None
    assert edit_only.summary() == "1 image, strength, mask"


@pytest.mark.parametrize("field", ["prompt", "negative"])
def test_text_utf8_cannot_hold_is_refused_naming_where(field):
    with pytest.raises(InvalidRequest, match=rf"^{field} is not valid text at character 4 "):
        Request(**{"prompt": "ok", field: "caf\udce9 latte"})


LAZY_EXPORTS = [
    # module, name, where it is defined, the class whose annotations name it
    ("imagen_core.models", "ImageInput", "imagen_core.inputs", "Request"),
    ("imagen_core.models", "Estimate", "imagen_core.estimate", None),
    ("imagen_core.config", "Budget", "imagen_core.budgets", "Config"),
]


@pytest.mark.parametrize(("module", "name", "home", "owner"), LAZY_EXPORTS)
def test_values_built_on_first_use_are_still_exported_where_they_were(module, name, home, owner):
    # In a fresh interpreter: the class is not built until asked for, and then
    # `from MODULE import NAME`, `imagen_core.NAME` and attribute access all give
    # the one class, and the annotations that name it resolve (cattrs, get_type_hints).
    code = f"""
import importlib, sys, typing
module = importlib.import_module({module!r})
assert {home!r} not in sys.modules
from {module} import {name}
assert {name}.__module__ == {home!r}
assert getattr(module, {name!r}) is {name} is getattr(importlib.import_module({home!r}), {name!r})
import imagen_core
if {name!r} in imagen_core.__all__:
    assert getattr(imagen_core, {name!r}) is {name}
if {owner!r} is not None:
    assert typing.get_type_hints(getattr(module, {owner!r}))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_a_missing_name_of_a_lazy_module_is_an_attribute_error():
    import imagen_core.config
    import imagen_core.models

    with pytest.raises(AttributeError, match="has no attribute 'Nothing'"):
        _ = imagen_core.models.Nothing  # type: ignore[attr-defined]
    with pytest.raises(AttributeError, match="has no attribute 'Nothing'"):
        _ = imagen_core.config.Nothing  # type: ignore[attr-defined]
    assert not hasattr(imagen_core.models, "Nothing")
