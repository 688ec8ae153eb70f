"""One imagen using another as its backend: imagen-openai against a real
`imagen serve` process's OpenAI endpoint (the laptop and the GPU box of
docs/backends.md). Text to image with seed, steps and negative prompt through
request_fields; an edit with references, a mask and a strength; the remote's
seed and cost taken; its errors as one line."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from PIL import Image

import imagen_openai.backend
from imagen_core import BackendError, ImageInput, Request
from imagen_openai.backend import OpenAIBackend
from imagen_openai.config import OpenAIConfig
from tests.helpers import write_config
from tests.web.editor import RUN_CLI
from tests.web.processes import cli_env, serve

pytestmark = pytest.mark.slow

TOKEN = "serve-token-for-imagen-openai-0123"
CONFIG = """
default_backend: editor
output: {{dir: '{out}', preview: off}}
backends:
  editor: {{type: editor}}
  mock: {{type: mock}}
"""
FIELDS = {"seed": "seed", "steps": "steps", "negative": "negative_prompt", "strength": "strength"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The GPU box: `imagen serve --token` with a backend that takes images."""
    home = tmp_path_factory.mktemp("gpu-box")
    out = home / "Pictures" / "imagen"
    env = cli_env(write_config(home, CONFIG.format(out=out)), home=home)
    process, url = serve(env, "--token", TOKEN, cli=RUN_CLI)
    try:
        yield url, out
    finally:
        process.stop()


@pytest.fixture
def laptop(server, monkeypatch):
    """The laptop's backend: type openai, base_url the GPU box's /v1."""
    url, _out = server
    monkeypatch.setenv("GPU_BOX_TOKEN", TOKEN)

    def build(**settings) -> OpenAIBackend:
        settings.setdefault("model", "editor")
        settings.setdefault("api_key_env", "GPU_BOX_TOKEN")
        settings.setdefault("request_fields", FIELDS)
        return OpenAIBackend(OpenAIConfig(base_url=url + "v1", **settings))

    monkeypatch.setattr(imagen_openai.backend, "DEFAULT_PACING", imagen_openai.backend.Pacing())
    return build


def remote_sidecar(out: Path, result) -> dict:
    return json.loads((out / result.metadata["remote"]["id"]).with_suffix(".json").read_text())


def png(size: tuple[int, int], color=(10, 120, 200)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, "PNG")
    return buffer.getvalue()


def no_progress(done: int, total: int, message: str = "") -> None:
    pass


def test_text_to_image_on_the_other_imagen(server, laptop):
    _url, out = server
    result = laptop().generate(
        Request("a lighthouse", seed=7, steps=4, negative="blur", width=640, height=480),
        no_progress,
    )
    with Image.open(io.BytesIO(result.image)) as image:
        assert image.size == (640, 480)  # a model the table does not know: the size as asked
    assert result.seed == 7 and result.cost_usd == 0.002  # as the remote reports them
    written = remote_sidecar(out, result)
    assert written["request"]["seed"] == 7 and written["request"]["steps"] == 4
    assert written["request"]["negative"] == "blur"
    assert written["backend"]["name"] == "editor"


def test_seed_zero_is_the_one_the_other_imagen_picked(server, laptop):
    _url, out = server
    result = laptop(request_fields={}).generate(Request("a lighthouse"), no_progress)
    assert result.seed > 0 and result.seed == remote_sidecar(out, result)["seed"]


def test_an_edit_with_references_a_mask_and_a_strength(server, laptop):
    _url, out = server
    first = ImageInput.from_bytes(png((64, 48)), source="photo.png")
    second = ImageInput.from_bytes(png((32, 32), (200, 0, 0)), role="reference")
    canvas = Image.new("L", (64, 48), 0)
    canvas.paste(255, (0, 0, 32, 48))  # imagen's mask: white = repaint
    buffer = io.BytesIO()
    canvas.save(buffer, "PNG")
    hole = ImageInput.from_bytes(buffer.getvalue(), role="mask")
    backend = laptop()
    assert backend.capabilities().summary() == "text, 16 images, strength, mask"
    result = backend.generate(
        Request("make it red", inputs=(first, second, hole), strength=0.6, width=64, height=48),
        no_progress,
    )
    assert result.metadata["endpoint"] == "edits"
    written = remote_sidecar(out, result)
    roles = [role for role, _digest in written["metadata"]["inputs"]]
    digests = [digest for _role, digest in written["metadata"]["inputs"]]
    assert roles == ["image", "reference", "mask"]
    assert digests[:2] == [first.sha256, second.sha256]  # the images arrive as they were
    assert written["metadata"]["strength"] == 0.6
    # The mask went out in OpenAI's form (transparent = repaint) and reached the
    # backend as imagen's again (white = repaint), as the other imagen keeps it.
    (kept,) = (out / "inputs").glob(f"{digests[2]}.*")
    with Image.open(kept) as back:
        gray = back.convert("L")
        assert gray.getpixel((5, 5)) == 255 and gray.getpixel((60, 5)) == 0


def test_an_unknown_backend_name_is_one_line(server, laptop):
    url, _out = server
    with pytest.raises(BackendError) as info:
        laptop(model="nope").generate(Request("x"), no_progress)
    assert str(info.value).startswith(
        f"the server at {url.rstrip('/')} has no model nope, or the key may not use it (HTTP 404: "
    )
    assert str(info.value).endswith("; check model in the backend's block")


def test_a_wrong_token_is_one_line(server, laptop, monkeypatch):
    url, _out = server
    monkeypatch.setenv("GPU_BOX_TOKEN", "wrong-token-000000000000")
    with pytest.raises(BackendError) as info:
        laptop().generate(Request("x"), no_progress)
    text = str(info.value)
    assert text.startswith(
        f"the server at {url.rstrip('/')} rejected the key in GPU_BOX_TOKEN (HTTP 401: "
    )
    assert text.endswith("; check api_key_env") and "wrong-token" not in text
