"""The fake against OpenAI's own client: the official ``openai`` package reads its
answers, raises its exception classes for its errors (with ``code``, ``param``
and ``type`` read from the envelope), honours its retry headers, and sends edits
with the same multipart field names as imagen-openai does. What the SDK accepts
from the fake, the plugin is tested against."""

from __future__ import annotations

import base64
import io

import openai
import pytest
from PIL import Image

from imagen_core import ImageInput, Request
from tests.fake_http import Steps
from tests.openai.fake_openai import rate_limited


@pytest.fixture
def sdk(fake):
    with openai.OpenAI(base_url=fake.base_url, api_key=fake.key, max_retries=0) as client:
        yield client


def png(size=(64, 64)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (1, 2, 3)).save(buffer, "PNG")
    return buffer.getvalue()


def test_generate_reads_base64_usage_and_echoes(sdk, fake):
    answer = sdk.images.generate(model="gpt-image-1", prompt="a red cube", size="1536x1024",
                                 quality="low")  # fmt: skip
    with Image.open(io.BytesIO(base64.b64decode(answer.data[0].b64_json))) as image:
        assert image.size == (1536, 1024)
    assert answer.usage.output_tokens == 400 and answer.quality == "low"
    assert answer.size == "1536x1024" and answer.output_format == "png"


def test_dall_e_answers_with_a_url(sdk, fake):
    answer = sdk.images.generate(model="dall-e-3", prompt="a cat")
    assert answer.data[0].url.startswith(fake.url + "/files/")
    assert answer.data[0].revised_prompt == "A detailed rendering of a cat"


@pytest.mark.parametrize(
    ("setup", "kwargs", "exception", "status", "code", "param"),
    [
        (lambda f: None, {"model": "gpt-image-1", "size": "800x600"}, "BadRequestError", 400,
         "invalid_value", "size"),
        (lambda f: None, {"model": "gpt-image-1", "response_format": "b64_json"},
         "BadRequestError", 400, "unknown_parameter", "response_format"),
        (lambda f: None, {"model": "gpt-image-9"}, "NotFoundError", 404, "model_not_found", None),
        (lambda f: None, {"model": "gpt-image-1", "prompt": "FORBIDDEN"}, "BadRequestError", 400,
         "moderation_blocked", None),
        (lambda f: setattr(f, "quota_exhausted", True), {"model": "gpt-image-1"},
         "RateLimitError", 429, "insufficient_quota", None),
        (lambda f: setattr(f, "key", "sk-other"), {"model": "gpt-image-1"},
         "AuthenticationError", 401, "invalid_api_key", None),
    ],
)  # fmt: skip
def test_errors_are_the_sdks_exception_classes(sdk, fake, setup, kwargs, exception, status, code,
                                               param):  # fmt: skip
    setup(fake)
    kwargs.setdefault("prompt", "x")
    with pytest.raises(getattr(openai, exception)) as info:
        sdk.images.generate(**kwargs)
    error = info.value
    assert (error.status_code, error.code, error.param) == (status, code, param)
    assert error.request_id.startswith("req_")  # from x-request-id


def test_the_sdk_retries_on_the_fakes_retry_after(fake):
    fake.fail("generations", rate_limited(retry_after="0"))
    with openai.OpenAI(base_url=fake.base_url, api_key=fake.key, max_retries=1) as client:
        client.images.generate(model="gpt-image-1", prompt="x")
    assert len(fake.generations) == 2


def test_edits_the_sdk_and_the_plugin_send_alike(sdk, fake, make_backend):
    """Both clients, the same edit: the fake records the same fields and files."""
    one, two = png(), png((32, 32))
    sdk.images.edit(model="gpt-image-1", prompt="merge", size="1024x1024",
                    image=[("a.png", one, "image/png"), ("b.png", two, "image/png")])  # fmt: skip
    sdk.images.edit(model="gpt-image-1", prompt="merge", size="1024x1024",
                    image=("a.png", one, "image/png"))  # fmt: skip
    inputs = (
        ImageInput.from_bytes(one),
        ImageInput.from_bytes(two, role="reference"),
    )
    make_backend().generate(Request("merge", inputs=inputs), Steps())
    make_backend().generate(Request("merge", inputs=inputs[:1]), Steps())
    by_sdk, by_sdk_one, by_plugin, by_plugin_one = fake.edits
    for theirs, ours in ((by_sdk, by_plugin), (by_sdk_one, by_plugin_one)):
        assert theirs.form == ours.form
        assert [(p.name, p.data) for p in theirs.parts if p.filename] == [
            (p.name, p.data) for p in ours.parts if p.filename
        ]
    assert [p.name for p in by_sdk.parts if p.filename] == ["image[]", "image[]"]
    assert [p.name for p in by_sdk_one.parts if p.filename] == ["image"]
