"""The OpenAI-compatible Images API, driven by OpenAI's own `openai` package
against a real `imagen serve` process (with a token, as OpenAI clients always
send one): every image lands in output.dir with its sidecar, and every error
arrives as the SDK's own exception class."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import httpx2
import openai
import pytest
from PIL import Image

from tests.helpers import write_config
from tests.web.editor import RUN_CLI
from tests.web.processes import cli_env, serve

pytestmark = pytest.mark.slow

TOKEN = "openai-token-0123456789abcdef"
CONFIG = """
default_backend: editor
output: {{dir: '{out}', preview: off}}
styles: {{poster: "a poster of {{prompt}}"}}
backends:
  editor: {{type: editor, max_in_flight: 3}}
  texter: {{type: texter}}
  mock: {{type: mock}}
  broken: {{type: mock, fail: out of paint}}
  paid: {{type: replicate, model: black-forest-labs/flux-dev, api_token_env: IMAGEN_TEST_NO_TOKEN}}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    out = home / "Pictures" / "imagen"
    config = write_config(home, CONFIG.format(out=out))
    env = cli_env(config, "imagen-mock,imagen-web,imagen-replicate", home=home)
    process, url = serve(env, "--token", TOKEN, cli=RUN_CLI)
    try:
        yield url, out, home
    finally:
        process.stop()


@pytest.fixture
def client(server):
    url, _out, _home = server
    with openai.OpenAI(base_url=url + "v1", api_key=TOKEN, max_retries=0) as sdk:
        yield sdk


def sidecar(out: Path, item) -> dict:
    return json.loads((out / item.imagen["id"]).with_suffix(".json").read_text())


def png(color: tuple[int, int, int], size: tuple[int, int] = (32, 32), mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, color).save(buffer, "PNG")
    return buffer.getvalue()


def test_generate_answers_base64_with_seed_and_cost_and_writes_the_sidecar(client, server):
    _url, out, _home = server
    answer = client.images.generate(
        model="editor",
        prompt="a red cube",
        size="48x32",
        extra_body={"seed": 41, "steps": 3, "negative_prompt": "blur"},
    )
    assert len(answer.data) == 1 and answer.created > 0
    item = answer.data[0]
    with Image.open(io.BytesIO(base64.b64decode(item.b64_json))) as image:
        assert (image.format, image.size) == ("PNG", (48, 32))
    assert item.revised_prompt is None and item.url is None
    assert item.imagen["seed"] == 41 and item.imagen["cost_usd"] == 0.002
    assert item.imagen["backend"] == "editor" and item.imagen["model"] == "editor-1"
    written = sidecar(out, item)
    assert written["seed"] == 41 and written["request"]["steps"] == 3
    assert written["request"]["negative"] == "blur"
    assert (out / item.imagen["id"]).read_bytes() == base64.b64decode(item.b64_json)


def test_generate_as_a_url_that_needs_the_token(client, server):
    url, out, _home = server
    answer = client.images.generate(prompt="a blue cone", size="32x32", response_format="url")
    item = answer.data[0]
    assert item.b64_json is None and item.url.startswith(url + "images/")
    assert item.imagen["backend"] == "editor"  # no model: the default backend
    fetched = httpx2.get(item.url, headers={"Authorization": f"Bearer {TOKEN}"})
    assert fetched.status_code == 200 and fetched.headers["content-type"] == "image/png"
    assert fetched.content == (out / item.imagen["id"]).read_bytes()
    assert httpx2.get(item.url).status_code == 401


def test_n_3_makes_three_images_on_consecutive_seeds(client, server):
    _url, out, _home = server
    answer = client.images.generate(
        model="editor", prompt="three moons", n=3, size="16x16", extra_body={"seed": 100}
    )
    seeds = [item.imagen["seed"] for item in answer.data]
    assert seeds == [100, 101, 102]
    ids = {item.imagen["id"] for item in answer.data}
    assert len(ids) == 3 and all((out / i).is_file() for i in ids)
    picked = client.images.generate(model="editor", prompt="picked", n=2, size="16x16")
    first, second = (item.imagen["seed"] for item in picked.data)
    assert first > 0 and second == first + 1


def test_a_style_revises_the_prompt_and_output_format_converts(client, server):
    _url, out, _home = server
    answer = client.images.generate(
        prompt="a fox", size="32x32", output_format="jpeg", extra_body={"style": "poster"}
    )
    item = answer.data[0]
    assert item.revised_prompt == "a poster of a fox"
    assert answer.output_format == "jpeg"
    with Image.open(io.BytesIO(base64.b64decode(item.b64_json))) as image:
        assert image.format == "JPEG"
    assert sidecar(out, item)["prompt_sent"] == "a poster of a fox"
    # dall-e-3's own styles have no equivalent: accepted and ignored.
    plain = client.images.generate(prompt="a fox", size="32x32", style="vivid")
    assert plain.data[0].revised_prompt is None


def test_user_is_the_caller_in_the_ledger(client, server):
    url, _out, _home = server
    client.images.generate(prompt="for someone", size="16x16", user="alice@example.org")
    client.images.generate(prompt="for whoever", size="16x16")
    usage = httpx2.get(url + "v1/usage?raw=true", headers={"Authorization": f"Bearer {TOKEN}"})
    callers = [row["caller"] for row in usage.json()["rows"]]
    assert "alice@example.org" in callers
    # Without `user`, the server's own caller, as for imagen generate.
    assert callers[-1] != "alice@example.org"


def test_edit_with_two_images_and_a_mask(client, server):
    _url, out, _home = server
    first, second = png((200, 0, 0)), png((0, 200, 0), (20, 10))
    # OpenAI's mask: transparent = edit. The left half is to be edited.
    openai_mask = Image.new("RGBA", (32, 32), (0, 0, 0, 255))
    openai_mask.paste((0, 0, 0, 0), (0, 0, 16, 32))
    buffer = io.BytesIO()
    openai_mask.save(buffer, "PNG")
    mask = buffer.getvalue()
    answer = client.images.edit(
        model="editor",
        image=[("a.png", first, "image/png"), ("b.png", second, "image/png")],
        mask=("mask.png", mask, "image/png"),
        prompt="make it night",
        size="32x32",
        extra_body={"strength": 0.4, "seed": 9},
    )
    written = sidecar(out, answer.data[0])
    import hashlib

    recorded = written["request"]["inputs"]
    # ... reaches the backend as imagen's mask: white = repaint, black = keep.
    with Image.open(recorded[2]["source"]) as converted:
        assert converted.mode == "L"
        assert converted.getpixel((3, 5)) == 255 and converted.getpixel((28, 5)) == 0
        converted_bytes = Path(recorded[2]["source"]).read_bytes()
    digest = [hashlib.sha256(data).hexdigest() for data in (first, second, converted_bytes)]
    assert written["metadata"]["inputs"] == [
        ["image", digest[0]],
        ["reference", digest[1]],
        ["mask", digest[2]],
    ]
    assert written["metadata"]["strength"] == 0.4
    assert [(i["role"], i["sha256"], i["width"]) for i in recorded] == [
        ("image", digest[0], 32),
        ("reference", digest[1], 20),
        ("mask", digest[2], 32),
    ]
    # Uploads are kept once, by hash, where the gallery can link to them.
    assert Path(recorded[0]["source"]) == (out / "inputs" / f"{digest[0]}.png").resolve()
    assert (out / "inputs" / f"{digest[0]}.png").read_bytes() == first
    # One image, the single-file form (`image`, not `image[]`):
    single = client.images.edit(
        model="editor", image=("a.png", first, "image/png"), prompt="again", size="16x16"
    )
    assert [r for r, _ in sidecar(out, single.data[0])["metadata"]["inputs"]] == ["image"]


def test_models_lists_the_backends(client):
    models = client.models.list()
    ids = [model.id for model in models.data]
    assert {"editor", "texter", "mock", "broken", "paid"} <= set(ids)
    assert all(model.object == "model" and model.created > 0 for model in models.data)
    assert client.models.retrieve("editor").owned_by == "imagen:editor"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("dall-e-3")


@pytest.mark.parametrize(
    ("call", "error", "status", "code", "param"),
    [
        ({"model": "dall-e-3"}, openai.NotFoundError, 404, "model_not_found", "model"),
        ({"size": "big"}, openai.BadRequestError, 400, "invalid_value", "size"),
        ({"n": 11}, openai.BadRequestError, 400, "invalid_value", "n"),
        ({"prompt": "  "}, openai.BadRequestError, 400, "invalid_value", "prompt"),
        ({"extra_body": {"sead": 1}}, openai.BadRequestError, 400, "unknown_parameter", "sead"),
        ({"extra_body": {"style": "nope"}}, openai.BadRequestError, 400, "unknown_style", "style"),
        ({"model": "broken"}, openai.InternalServerError, 502, "backend_failed", None),
        ({"model": "paid"}, openai.InternalServerError, 503, "backend_unavailable", None),
    ],
)
def test_errors_are_the_sdk_exception_classes(client, call, error, status, code, param):
    arguments = {"prompt": "a test", "size": "16x16", **call}
    with pytest.raises(error) as raised:
        client.images.generate(**arguments)
    assert raised.value.status_code == status
    assert raised.value.code == code and raised.value.param == param
    assert raised.value.body["message"] and raised.value.type
    if call.get("model") == "paid":  # the server's secrets stay its own
        assert "IMAGEN_TEST_NO_TOKEN" not in raised.value.body["message"]


def test_an_image_the_backend_cannot_take_is_a_bad_request(client):
    with pytest.raises(openai.BadRequestError) as raised:
        client.images.edit(
            model="texter", image=("a.png", png((1, 2, 3)), "image/png"), prompt="x", size="16x16"
        )
    assert "cannot take input images" in raised.value.body["message"]
    with pytest.raises(openai.BadRequestError) as raised:
        client.images.edit(
            model="editor", image=("a.png", b"not an image", "image/png"), prompt="x"
        )
    assert raised.value.param == "image"
    assert "not a readable image" in raised.value.body["message"]


def test_a_mask_of_another_size_is_refused_as_openai_refuses_it(client, server):
    # imagen's own /v1/generate scales such a mask; OpenAI's API wants "same
    # dimensions as the image", so this door refuses it, before any backend runs.
    _url, out, _home = server
    made = sorted(out.rglob("*.json"))
    with pytest.raises(openai.BadRequestError) as raised:
        client.images.edit(
            model="editor",
            image=("a.png", png((200, 0, 0), (32, 32)), "image/png"),
            mask=("mask.png", png((0, 0, 0), (16, 16), "RGBA"), "image/png"),
            prompt="x",
            size="32x32",
        )
    assert raised.value.status_code == 400
    assert raised.value.body == {
        "message": "mask: is 16x16 but the image is 32x32: give a mask of the image's size",
        "type": "invalid_request_error",
        "param": "mask",
        "code": "invalid_image",
    }
    assert sorted(out.rglob("*.json")) == made


def test_a_wrong_or_missing_token_is_an_authentication_error(server):
    url, _out, _home = server
    with openai.OpenAI(base_url=url + "v1", api_key="wrong", max_retries=0) as wrong:
        with pytest.raises(openai.AuthenticationError) as raised:
            wrong.images.generate(prompt="x")
        assert raised.value.code == "invalid_api_key"
        with pytest.raises(openai.AuthenticationError):
            wrong.models.list()
