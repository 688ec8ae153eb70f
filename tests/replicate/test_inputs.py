"""Input images on Replicate: each family's input names (families.json), data:
URIs for small files and the Files API for larger ones, the capabilities the
core checks, and the ways an input cannot be taken."""

from __future__ import annotations

import io
import os

import pytest
from PIL import Image

from imagen_core import BackendError, ImageInput, Request, Session
from imagen_core.errors import Unsupported
from imagen_replicate.backend import DATA_URI_MAX_BYTES
from imagen_replicate.families import family_for
from tests.replicate.conftest import Steps
from tests.replicate.fake_replicate import Reply


def png(color: tuple[int, int, int], size: tuple[int, int] = (40, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, "PNG")
    return buffer.getvalue()


def picture(color: tuple[int, int, int], role: str = "image") -> ImageInput:
    return ImageInput.from_bytes(png(color), role=role)


def mask() -> ImageInput:
    buffer = io.BytesIO()
    Image.new("L", (40, 30), 255).save(buffer, "PNG")
    return ImageInput.from_bytes(buffer.getvalue(), role="mask")


def noise_png(side: int) -> bytes:
    """A PNG that does not compress: random pixels."""
    buffer = io.BytesIO()
    Image.frombytes("RGB", (side, side), os.urandom(side * side * 3)).save(buffer, "PNG")
    return buffer.getvalue()


RED, BLUE = picture((250, 10, 10)), picture((10, 10, 250), role="reference")
FILES = {RED.sha256: "data:red", BLUE.sha256: "data:blue", mask().sha256: "data:mask"}


# ------------------------------------------------------------ the mapping


@pytest.mark.parametrize(
    ("model", "request_", "expected", "absent"),
    [
        (
            "black-forest-labs/flux-kontext-pro",
            Request("p", inputs=[RED]),
            {"input_image": "data:red", "aspect_ratio": "match_input_image"},
            {"megapixels"},
        ),
        (
            "black-forest-labs/flux-kontext-max",
            Request("p", width=1344, height=768),
            {"aspect_ratio": "16:9"},  # text to image: the size as before
            {"input_image"},
        ),
        (
            "black-forest-labs/flux-1.1-pro",
            Request("p", inputs=[RED]),
            {"image_prompt": "data:red", "aspect_ratio": "1:1"},  # a guide: the size stays
            set(),
        ),
        (
            "black-forest-labs/flux-dev",
            Request("p", inputs=[RED], strength=0.6),
            {"image": "data:red", "prompt_strength": 0.6},
            {"aspect_ratio", "megapixels"},  # the output takes the image's shape
        ),
        (
            "black-forest-labs/flux-fill-pro",
            Request("p", inputs=[RED, mask()]),
            {"image": "data:red", "mask": "data:mask"},
            {"aspect_ratio"},
        ),
        (
            "google/nano-banana",
            Request("p", inputs=[RED, BLUE]),
            {"image_input": ["data:red", "data:blue"], "aspect_ratio": "match_input_image"},
            set(),
        ),
        (
            "openai/gpt-image-1",
            Request("p", inputs=[RED, BLUE]),
            {"input_images": ["data:red", "data:blue"], "aspect_ratio": "1:1"},
            set(),
        ),
        (
            "bytedance/seedream-4",
            Request("p", inputs=[RED]),
            {"image_input": ["data:red"], "aspect_ratio": "match_input_image"},
            set(),
        ),
        (
            "qwen/qwen-image-edit",
            Request("p", inputs=[RED]),
            {"image": "data:red"},
            {"aspect_ratio"},
        ),
        (
            "stability-ai/stable-diffusion-3.5-large",
            Request("p", inputs=[RED], strength=0.3),
            {"image": "data:red", "prompt_strength": 0.3},
            {"aspect_ratio"},
        ),
    ],
)
def test_each_family_names_its_image_inputs(model, request_, expected, absent):
    sent = family_for(model).build_input(request_, 7, FILES).input
    assert {key: sent.get(key) for key in expected} == expected
    assert not absent & set(sent)
    assert sent["prompt"] == "p" and sent["seed"] == 7


@pytest.mark.parametrize(
    ("model", "text", "images", "strength", "has_mask"),
    [
        ("black-forest-labs/flux-schnell", True, 0, False, False),
        ("black-forest-labs/flux-kontext-pro", True, 1, False, False),
        ("black-forest-labs/flux-1.1-pro", True, 1, False, False),
        ("black-forest-labs/flux-dev", True, 1, True, False),
        ("black-forest-labs/flux-fill-pro", False, 1, False, True),
        ("google/nano-banana", True, 3, False, False),
        ("openai/gpt-image-1", True, 10, False, False),
        ("bytedance/seedream-4", True, 10, False, False),
        ("qwen/qwen-image-edit", False, 1, False, False),
        ("stability-ai/stable-diffusion-3.5-medium", True, 1, True, False),
        ("someone/unknown-model", True, 0, False, False),
    ],
)
def test_capabilities_per_family(make_backend, model, text, images, strength, has_mask):
    assert make_backend(model=model).capabilities().as_dict() == {
        "text_to_image": text,
        "images": images,
        "strength": strength,
        "mask": has_mask,
    }


# ------------------------------------------------------------ on the wire


def test_a_small_input_goes_as_a_data_uri(fake, make_backend):
    backend = make_backend(model="black-forest-labs/flux-kontext-pro")
    result = backend.generate(Request("make it blue", inputs=[RED], seed=3), Steps())
    (create,) = fake.creates
    assert create.json["input"]["input_image"] == RED.data_uri()
    assert not fake.uploads
    # The fake made its picture from the input: the image arrived whole.
    output = Image.open(io.BytesIO(result.image)).convert("RGB")
    assert output.getpixel((8, 8)) == (250, 10, 10)
    # The sidecar keeps the data: URI's type and size, never its bytes.
    assert result.metadata["input"]["input_image"].startswith("data:image/png;base64,... (")


def test_a_large_input_is_uploaded_through_the_files_api_once(fake, make_backend):
    data = noise_png(620)
    assert len(data) >= DATA_URI_MAX_BYTES
    big = ImageInput.from_bytes(data)
    backend = make_backend(model="black-forest-labs/flux-kontext-pro")
    result = backend.generate(Request("x", inputs=[big], seed=1), Steps())
    (upload,) = fake.uploads
    assert upload.headers["authorization"] == f"Bearer {fake.token}"
    assert upload.headers["content-type"].startswith("multipart/form-data; boundary=")
    (stored,) = fake.files.values()
    assert stored["_data"] == data and stored["content_type"] == "image/png"
    assert stored["name"] == f"{big.sha256[:16]}.png"
    url = fake.creates[0].json["input"]["input_image"]
    assert url == stored["urls"]["get"] == f"{fake.url}/v1/files/{stored['id']}"
    expected = Image.open(io.BytesIO(data)).convert("RGB").resize((16, 16))
    assert Image.open(io.BytesIO(result.image)).convert("RGB").tobytes() == expected.tobytes()
    # The same backend sends it once while the upload lives (a day).
    backend.generate(Request("y", inputs=[big], seed=2), Steps())
    assert len(fake.uploads) == 1 and fake.creates[1].json["input"]["input_image"] == url


def test_every_image_of_a_list_input_is_sent_in_order(fake, make_backend):
    backend = make_backend(model="google/nano-banana")
    backend.generate(Request("the mug with the logo", inputs=[RED, BLUE]), Steps())
    sent = fake.creates[0].json["input"]
    assert sent["image_input"] == [RED.data_uri(), BLUE.data_uri()]
    assert sent["aspect_ratio"] == "match_input_image"


def test_an_inpaint_sends_image_and_mask(fake, make_backend):
    backend = make_backend(model="black-forest-labs/flux-fill-pro")
    backend.generate(Request("a cat", inputs=[RED, mask()]), Steps())
    sent = fake.creates[0].json["input"]
    assert (sent["image"], sent["mask"]) == (RED.data_uri(), mask().data_uri())


def test_an_input_replicate_cannot_read_fails_the_prediction(fake, make_backend):
    big = ImageInput.from_bytes(noise_png(620))
    backend = make_backend(model="black-forest-labs/flux-kontext-pro")
    backend.generate(Request("x", inputs=[big], seed=1), Steps())
    fake.files.clear()  # deleted on Replicate's side
    with pytest.raises(BackendError, match=r"input_image: could not download"):
        backend.generate(Request("x", inputs=[big], seed=2), Steps())


def test_a_refused_upload_is_named(fake, make_backend):
    fake.fail("upload", Reply(413, {"title": "Too large", "detail": "file too big", "status": 413}))
    big = ImageInput.from_bytes(noise_png(620))
    backend = make_backend(model="black-forest-labs/flux-kontext-pro")
    with pytest.raises(BackendError, match=r"Replicate refused [0-9a-f]{16}\.png \(1\.\d MB\) as"):
        backend.generate(Request("x", inputs=[big]), Steps())
    assert not fake.creates  # nothing was paid for


# ------------------------------------------------------------ what is refused


@pytest.mark.parametrize(
    ("model", "inputs", "strength", "lacking"),
    [
        (
            "black-forest-labs/flux-schnell",
            [RED],
            None,
            "input images (it makes images from text only)",
        ),
        ("black-forest-labs/flux-fill-pro", [], None, "an input image (it edits images"),
        (
            "google/nano-banana",
            [RED, BLUE, BLUE, BLUE],
            None,
            "4 input images (it takes at most 3)",
        ),
        ("black-forest-labs/flux-kontext-pro", [RED, mask()], None, "a mask (it does not inpaint)"),
        ("black-forest-labs/flux-kontext-pro", [RED], 0.5, "a strength (it has no img2img"),
    ],
)
def test_the_core_refuses_what_the_family_cannot_take(
    fake, token, configure, model, inputs, strength, lacking
):
    configure(model=model)
    with pytest.raises(Unsupported) as info:
        Session().generate(Request("a cat", inputs=inputs, strength=strength))
    assert str(info.value).startswith(f"backend 'rep' cannot take {lacking}")
    assert not fake.requests  # refused before anything was sent, or paid


def test_the_backend_itself_refuses_too(fake, make_backend):
    backend = make_backend(model="black-forest-labs/flux-schnell")
    with pytest.raises(Unsupported, match=r"flux-schnell \(flux-schnell\) cannot take input"):
        backend.generate(Request("x", inputs=[RED]), Steps())
    assert not fake.requests
