"""Image inputs: /images/edits as multipart, the way the openai SDK sends it
(``image`` or ``image[]``, ``mask``, every other field as text), the mask turned
into OpenAI's convention, DALL-E 2's one square PNG; capabilities per model, and
the price before the call."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from imagen_core import Estimate, ImageInput, Request, Session, Unsupported
from imagen_openai.inputs import form_fields, openai_mask
from tests.fake_http import Steps
from tests.openai.fake_openai import IMAGE_INPUT_TOKENS, error


def picture(width: int, height: int, fmt: str = "PNG", color=(200, 30, 30), **kw) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, fmt, **kw)
    return buffer.getvalue()


def image(width=1024, height=1024, fmt="PNG", role="image", color=(200, 30, 30)) -> ImageInput:
    return ImageInput.from_bytes(picture(width, height, fmt, color), role=role, source=f"{role}.x")


def mask(width=1024, height=1024) -> ImageInput:
    """imagen's convention: white where to repaint (here the left half)."""
    canvas = Image.new("L", (width, height), 0)
    canvas.paste(255, (0, 0, width // 2, height))
    buffer = io.BytesIO()
    canvas.save(buffer, "PNG")
    return ImageInput.from_bytes(buffer.getvalue(), role="mask")


def test_one_image_and_a_mask_go_as_the_sdk_sends_them(fake, make_backend):
    source, hole = image(), mask()
    result = make_backend(model="gpt-image-1", quality="low").generate(
        Request("add a hat", inputs=(source, hole)), Steps()
    )
    (edit,) = fake.requests
    assert repr(edit) == "POST /v1/images/edits"
    assert edit.headers["content-type"].startswith("multipart/form-data; boundary=")
    assert edit.headers["authorization"] == f"Bearer {fake.key}"
    assert edit.form == {
        "model": "gpt-image-1",
        "prompt": "add a hat",
        "size": "1024x1024",
        "quality": "low",
    }
    (sent,) = edit.files("image")
    assert (sent.filename, sent.content_type, sent.data) == (
        "image-1.png",
        "image/png",
        source.data,
    )
    assert edit.files("image[]") == []
    (sent_mask,) = edit.files("mask")
    assert (sent_mask.filename, sent_mask.content_type) == ("mask.png", "image/png")
    with Image.open(io.BytesIO(sent_mask.data)) as converted:
        assert converted.mode == "RGBA" and converted.size == (1024, 1024)
        assert converted.getpixel((10, 10))[3] == 0  # white: repaint -> transparent
        assert converted.getpixel((1000, 10))[3] == 255  # black: keep -> opaque
    assert result.metadata["endpoint"] == "edits"
    usage = result.metadata["usage"]
    assert usage["input_tokens_details"]["image_tokens"] == IMAGE_INPUT_TOKENS
    text = usage["input_tokens_details"]["text_tokens"]
    # Input image tokens are priced at the image-input rate ($10/1M for gpt-image-1).
    assert result.cost_usd == pytest.approx(
        round((text * 5 + IMAGE_INPUT_TOKENS * 10 + 272 * 40) / 1e6, 6)
    )


def test_several_images_go_as_image_brackets_in_order(fake, make_backend):
    first = image(fmt="JPEG", color=(10, 10, 10))
    second = image(512, 768, fmt="WEBP", role="reference", color=(20, 20, 20))
    third = image(640, 640, role="reference", color=(30, 30, 30))
    make_backend(model="gpt-image-1.5").generate(
        Request("merge them", width=1536, height=1024, inputs=(first, second, third)), Steps()
    )
    (edit,) = fake.edits
    files = edit.files("image[]")
    assert [(f.filename, f.content_type) for f in files] == [
        ("image-1.jpg", "image/jpeg"),
        ("image-2.webp", "image/webp"),
        ("image-3.png", "image/png"),
    ]
    assert [f.data for f in files] == [first.data, second.data, third.data]
    assert edit.files("image") == [] and edit.form["size"] == "1536x1024"


def test_dall_e_2_gets_one_square_png(fake, make_backend):
    jpeg = image(512, 512, fmt="JPEG")
    make_backend(model="dall-e-2").generate(
        Request("x", width=512, height=512, inputs=(jpeg, mask(512, 512))), Steps()
    )
    (edit,) = fake.edits
    assert edit.form == {
        "model": "dall-e-2",
        "prompt": "x",
        "size": "512x512",
        "response_format": "b64_json",
    }
    (sent,) = edit.files("image")
    assert sent.content_type == "image/png" and sent.data.startswith(b"\x89PNG")
    with Image.open(io.BytesIO(sent.data)) as converted:
        assert converted.size == (512, 512)


def test_dall_e_2_refuses_a_wide_image_before_sending(fake, make_backend):
    with pytest.raises(Unsupported) as info:
        make_backend(model="dall-e-2").generate(Request("x", inputs=(image(800, 600),)), Steps())
    assert str(info.value) == (
        "openai: dall-e-2 edits square images only, and the image is 800x600; crop it square, "
        "or use a GPT image model"
    )
    assert fake.requests == []


def test_a_mask_of_another_size_is_refused_before_sending(fake, make_backend):
    with pytest.raises(Unsupported, match="the mask is 512x512 but the image is 1024x1024"):
        make_backend().generate(Request("x", inputs=(image(), mask(512, 512))), Steps())
    assert fake.requests == []


def test_moderation_is_not_sent_with_an_edit(fake, make_backend, capsys):
    make_backend(moderation="low").generate(Request("x", inputs=(image(),)), Steps())
    assert "moderation" not in fake.edits[0].form  # /images/edits takes none
    assert capsys.readouterr().err == (
        "imagen: openai: moderation is taken by generations only; it is not sent with an edit\n"
    )


def test_extra_body_goes_into_the_form(fake, make_backend):
    make_backend(extra_body={"input_fidelity": "high", "n": 1}).generate(
        Request("x", inputs=(image(),)), Steps()
    )
    assert fake.edits[0].form["input_fidelity"] == "high" and fake.edits[0].form["n"] == "1"


def test_form_fields_flatten_as_the_sdk_does():
    assert form_fields(
        {"n": 2, "stream": False, "tags": ["a", "b"], "meta": {"k": 1}, "gone": None}
    ) == [("n", "2"), ("stream", "false"), ("tags[]", "a"), ("tags[]", "b"), ("meta[k]", "1")]


def test_a_mask_already_in_openais_form_is_kept():
    canvas = Image.new("RGBA", (8, 8), (0, 0, 0, 255))
    canvas.putpixel((1, 1), (0, 0, 0, 0))
    buffer = io.BytesIO()
    canvas.save(buffer, "PNG")
    with Image.open(io.BytesIO(openai_mask(buffer.getvalue()))) as kept:
        assert kept.getpixel((1, 1))[3] == 0 and kept.getpixel((5, 5))[3] == 255


def test_a_server_without_edits_says_so(fake, make_backend):
    fake.fail("edits", error(404, "Invalid URL (POST /v1/images/edits)", "invalid_request_error"))
    with pytest.raises(Exception) as info:
        make_backend().generate(Request("x", inputs=(image(),)), Steps())
    assert str(info.value) == (
        f"the server at http://127.0.0.1:{fake.port} has no {fake.base_url}/images/edits (a "
        "server without it cannot take input images) (HTTP 404); check base_url in the "
        "backend's block: the API root with its /v1, e.g. http://localhost:8080/v1"
    )


@pytest.mark.parametrize(
    ("settings", "summary"),
    [
        ({"model": "gpt-image-1"}, "text, 16 images, mask"),
        ({"model": "gpt-image-2"}, "text, 16 images, mask"),
        ({"model": "dall-e-2"}, "text, 1 image, mask"),
        ({"model": "dall-e-3"}, "text"),
        ({"model": "local-model"}, "text, 16 images, mask"),
        ({"model": "local-model", "input_images": 0}, "text"),
        ({"model": "local-model", "input_images": 2}, "text, 2 images, mask"),
        (
            {"model": "local-model", "request_fields": {"strength": "strength"}},
            "text, 16 images, strength, mask",
        ),
        ({"model": "gpt-image-1", "input_images": 0, "request_fields": {"strength": "s"}}, "text"),
    ],
)
def test_capabilities(make_backend, settings, summary):
    assert make_backend(**settings).capabilities().summary() == summary


def test_the_core_refuses_an_image_for_dall_e_3_before_anything_is_sent(
    fake, fake_time, key, configure
):
    configure(model="dall-e-3")
    with pytest.raises(Unsupported) as info:
        Session().generate(Request("x", backend="oa", inputs=(image(),)))
    assert "backend 'oa' cannot take input images (it makes images from text only)" in str(
        info.value
    )
    assert fake.requests == []


def test_a_strength_is_refused_by_the_core(fake, fake_time, key, configure):
    configure(model="gpt-image-1")
    with pytest.raises(Unsupported, match="a strength"):
        Session().generate(Request("x", backend="oa", inputs=(image(),), strength=0.5))
    assert fake.requests == []


@pytest.mark.parametrize(
    ("settings", "request_", "expected"),
    [
        (
            {"model": "gpt-image-1", "quality": "medium"},
            Request("abcd" * 10, width=1920, height=1080),
            Estimate(round((10 * 5 + 1568 * 40) / 1e6, 6), "computed"),
        ),
        (
            {"model": "gpt-image-1"},  # quality auto: priced as high, an upper bound
            Request("abcd"),
            Estimate(round((1 * 5 + 4160 * 40) / 1e6, 6), "estimated"),
        ),
        (
            {"model": "gpt-image-1", "quality": "low"},
            Request("abcd", inputs=(image(64, 64),)),  # input image tokens not counted
            Estimate(round((1 * 5 + 272 * 40) / 1e6, 6), "estimated"),
        ),
        (
            {"model": "dall-e-3", "quality": "hd"},
            Request("x", width=1792, height=1024),
            Estimate(0.12, "computed"),
        ),
        ({"model": "dall-e-2"}, Request("x", width=300, height=300), Estimate(0.016, "computed")),
        ({"model": "local-model"}, Request("x"), Estimate(None, "unknown")),
        ({"model": "local-model", "usd_per_image": 0.01}, Request("x"), Estimate(0.01, "computed")),
    ],
)
def test_estimates_before_the_call(make_backend, fake, settings, request_, expected):
    estimate = make_backend(**settings).estimate(request_)
    assert (estimate.usd, estimate.basis) == (expected.usd, expected.basis)
    if settings["model"] in ("gpt-image-1", "dall-e-3", "dall-e-2"):
        assert estimate.source.startswith("models.json, price of ")
    assert fake.requests == []  # no network


def test_a_compatible_server_gets_the_strength_and_references(fake, make_backend):
    fake.key, fake.compatible = None, True
    backend = make_backend(
        model="flux2-klein-edit",
        api_key_env=None,
        request_fields={"strength": "strength", "seed": "seed"},
    )
    first, second = image(), image(512, 512, role="reference")
    backend.generate(
        Request("x", seed=3, width=768, height=512, inputs=(first, second), strength=0.0),
        Steps(),
    )
    (edit,) = fake.edits
    assert edit.form == {
        "model": "flux2-klein-edit",
        "prompt": "x",
        "size": "768x512",
        "response_format": "b64_json",
        "seed": "3",
        "strength": "0.0",  # 0 is a strength, not "unset"
    }
    assert [f.data for f in edit.files("image[]")] == [first.data, second.data]
