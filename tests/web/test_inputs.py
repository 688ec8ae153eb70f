"""Input images through imagen's own API: POST /v1/generate and /v1/jobs take
them as multipart files, as base64 in JSON, or as the id of a gallery image;
they are checked as the CLI checks --image, capped (413), and what is made
from them links back to them."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import threading
from pathlib import Path
from typing import ClassVar

import pytest
from PIL import Image
from starlette.testclient import TestClient

from imagen_core import Request, Result, Session, hookimpl
from imagen_core.models import Capabilities, ImageInput
from imagen_web.app import create_app
from tests.helpers import registered, write_config
from tests.web import editor

CONFIG = """
default_backend: editor
output: {{dir: '{out}', preview: off}}
queue: {{type: sqlite, poll_s: 0.02}}
backends:
  editor: {{type: editor}}
  texter: {{type: texter}}
"""


@pytest.fixture
def session(isolated_env, output_dir, pm):
    with registered(pm, editor, "editor"):
        yield Session(write_config(isolated_env, CONFIG.format(out=output_dir)))


@pytest.fixture
def client(session):
    with TestClient(create_app(session, max_upload=2 * 2**20)) as test_client:
        yield test_client


def png(color=(200, 30, 30), size=(32, 32), mode="RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, color).save(buffer, "PNG")
    return buffer.getvalue()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sidecar(output_dir: Path, image_id: str) -> dict:
    return json.loads((output_dir / image_id).with_suffix(".json").read_text())


def test_generate_takes_images_and_a_mask_as_multipart(client, output_dir):
    first, second, mask = png(), png((0, 90, 0), (16, 8)), png((255, 255, 255))
    response = client.post(
        "/v1/generate",
        data={"prompt": "make it night", "width": "32", "height": "32", "strength": "0.5"},
        files=[
            ("image", ("a.png", first, "image/png")),
            ("image", ("b.png", second, "image/png")),
            ("mask", ("m.png", mask, "image/png")),
        ],
    )
    assert response.status_code == 200, response.text
    written = sidecar(output_dir, response.json()["id"])
    assert written["metadata"]["inputs"] == [
        ["image", sha(first)],
        ["reference", sha(second)],
        ["mask", sha(mask)],
    ]
    assert written["request"]["strength"] == 0.5
    # Each upload is kept once, by hash, and the gallery entry links to it.
    assert (output_dir / "inputs" / f"{sha(first)}.png").read_bytes() == first
    entry = client.get("/v1/images").json()["images"][0]
    assert [(i["role"], i["sha256"], i["id"]) for i in entry["inputs"]] == [
        ("image", sha(first), f"inputs/{sha(first)}.png"),
        ("reference", sha(second), f"inputs/{sha(second)}.png"),
        ("mask", sha(mask), f"inputs/{sha(mask)}.png"),
    ]
    assert client.get(entry["inputs"][0]["url"]).content == first
    assert entry["strength"] == 0.5


def test_generate_takes_base64_and_gallery_ids_in_json(client, output_dir):
    first = client.post("/v1/generate", json={"prompt": "a cat", "width": 24, "height": 24})
    made = first.json()["id"]
    original = (output_dir / made).read_bytes()
    reference = png((1, 2, 3))
    data_uri = "data:image/png;base64," + base64.b64encode(reference).decode()
    response = client.post(
        "/v1/generate",
        json={
            "prompt": "the cat at night",
            "width": 24,
            "height": 24,
            "images": [{"id": made}, {"data": data_uri}],
        },
    )
    assert response.status_code == 200, response.text
    written = sidecar(output_dir, response.json()["id"])
    assert written["metadata"]["inputs"] == [
        ["image", sha(original)],
        ["reference", sha(reference)],
    ]
    # The edited image is linked by its own gallery id: Edit on a generated image.
    entry = client.get("/v1/images").json()["images"][0]
    assert entry["inputs"][0]["id"] == made and entry["inputs"][0]["url"] == f"/images/{made}"
    plain = base64.b64encode(reference).decode()  # bare base64 works as well
    again = client.post("/v1/generate", json={"prompt": "x", "images": [{"data": plain}]})
    assert again.status_code == 200


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        ({"images": [{"data": "***"}]}, "invalid_input", "images: is not valid base64"),
        (
            {"images": [{"data": base64.b64encode(b"GIF89a not really").decode()}]},
            "invalid_input",
            "images: images is not a readable image",
        ),
        ({"images": [{"id": "nope.png"}]}, "invalid_input", "images: no image 'nope.png'"),
        ({"images": [{}]}, "invalid_body", 'images: give each image as {"data"'),
        (
            {"mask": {"data": base64.b64encode(png()).decode()}},
            "invalid_input",
            "mask: a mask needs an image",
        ),
        (
            {
                "images": [{"data": base64.b64encode(png()).decode()}],
                "mask": {"data": base64.b64encode(png(size=(8, 16))).decode()},
            },
            "invalid_input",
            "mask: mask is 8x16 but the image is 32x32: a mask must have the image's size "
            "(or at least its shape)",
        ),
        (
            {
                "images": [{"data": base64.b64encode(png()).decode()}],
                "mask": {"data": base64.b64encode(b"\x89PNG\r\n\x1a\n cut short").decode()},
            },
            "invalid_input",
            "mask: mask is not a readable image",
        ),
        ({"strength": 2}, "invalid_body", "strength: must be from 0 to 1"),
        (
            {"backend": "texter", "images": [{"data": base64.b64encode(png()).decode()}]},
            "unsupported",
            "images: backend 'texter' cannot take input images (it makes images from text only); "
            "backends that can: editor",
        ),
    ],
)
def test_bad_inputs_are_422_naming_the_field(client, body, code, message):
    for path in ("/v1/generate", "/v1/jobs"):
        response = client.post(path, json={"prompt": "x", **body})
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert error["code"] == code and error["message"].startswith(message), error
        assert "\n" not in error["message"]
    assert client.get("/v1/jobs").json() == {"jobs": []}


def test_a_broken_gallery_image_is_named_by_its_id_not_its_path_on_the_server(client, output_dir):
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n cut short")
    for path in ("/v1/generate", "/v1/jobs"):
        response = client.post(path, json={"prompt": "x", "images": [{"id": "broken.png"}]})
        assert response.status_code == 422, response.text
        message = response.json()["error"]["message"]
        assert message.startswith("images: images (broken.png) is not a readable image"), message
        assert str(output_dir) not in message


class Grabbing:
    """A backend that keeps the inputs it was given, for the test to look at."""

    got: ClassVar[list[tuple[ImageInput, ...]]] = []

    def __init__(self, config: object) -> None:
        pass

    def capabilities(self) -> Capabilities:
        return Capabilities(images=1, mask=True)

    def generate(self, request: Request, progress: object) -> Result:
        Grabbing.got.append(request.inputs)
        return Result(image=png(size=(request.width, request.height)), seed=1, model="grab")


class GrabbingPlugin:
    @hookimpl
    def register_backends(self, register):
        register("grabbing", Grabbing)


def half_white_mask(size: tuple[int, int]) -> bytes:
    """White (repaint) on the left half, black (keep) on the right."""
    mask = Image.new("L", size, 0)
    mask.paste(255, (0, 0, size[0] // 2, size[1]))
    buffer = io.BytesIO()
    mask.save(buffer, "PNG")
    return buffer.getvalue()


def test_a_mask_of_another_size_is_scaled_to_the_image_as_the_cli_does(
    isolated_env, output_dir, pm
):
    Grabbing.got = []
    path = write_config(
        isolated_env,
        f"output: {{dir: '{output_dir}', preview: off}}\nbackends: {{grab: {{type: grabbing}}}}\n",
    )
    photo, small = png(size=(32, 24)), half_white_mask((16, 12))
    with (
        registered(pm, GrabbingPlugin(), "grabbing"),
        TestClient(create_app(Session(path))) as client,
    ):
        response = client.post(
            "/v1/generate",
            data={"prompt": "x", "backend": "grab", "width": "32", "height": "24"},
            files=[
                ("image", ("a.png", photo, "image/png")),
                ("mask", ("m.png", small, "image/png")),
            ],
        )
        assert response.status_code == 200, response.text
        # Said as the CLI says it on stderr, naming the upload as the client named it.
        assert response.json()["warnings"] == [
            "mask (m.png) is 16x12; scaled it to the image's 32x24"
        ]
        (inputs,) = Grabbing.got
        mask = inputs[-1]
        assert (mask.role, mask.width, mask.height) == ("mask", 32, 24)
        with Image.open(io.BytesIO(mask.data)) as got:
            assert got.size == (32, 24)
            assert got.getpixel((2, 12)) == 255 and got.getpixel((29, 12)) == 0
        # What the backend got is what is kept and recorded, not the upload.
        written = sidecar(output_dir, response.json()["id"])
        assert written["request"]["inputs"][-1]["sha256"] == mask.sha256
        assert (output_dir / "inputs" / f"{mask.sha256}.png").read_bytes() == mask.data
        assert not (output_dir / "inputs" / f"{sha(small)}.png").exists()

        # The same through /v1/jobs, the mask a gallery image named by its id.
        (output_dir / "masks").mkdir()
        (output_dir / "masks" / "small.png").write_bytes(small)
        queued = client.post(
            "/v1/jobs",
            json={
                "prompt": "x",
                "backend": "grab",
                "images": [{"data": base64.b64encode(photo).decode()}],
                "mask": {"id": "masks/small.png"},
            },
        )
        assert queued.status_code == 202, queued.text
        job = queued.json()
        assert job["warnings"] == [
            "mask (masks/small.png) is 16x12; scaled it to the image's 32x24"
        ]
        recorded = job["request"]["inputs"][-1]
        assert recorded["role"] == "mask"
        assert recorded["id"] == f"inputs/{recorded['sha256']}.png"
        with Image.open(output_dir / recorded["id"]) as kept:
            assert kept.size == (32, 24)
        # An answer without anything changed says so with an empty list.
        plain = client.post("/v1/generate", json={"prompt": "x", "backend": "grab"})
        assert plain.json()["warnings"] == []


def test_a_form_is_checked_like_json(client):
    image = [("image", ("a.png", png(), "image/png"))]
    bad = client.post("/v1/generate", data={"prompt": "x", "width": "wide"}, files=image)
    assert bad.status_code == 422
    assert bad.json()["error"]["message"] == "width: expected a number, got 'wide'"
    unknown = client.post(
        "/v1/generate", data={"prompt": "x"}, files=[("photo", ("a.png", png(), "image/png"))]
    )
    assert unknown.status_code == 422
    assert unknown.json()["error"]["message"].startswith("photo: unexpected file field")
    text = client.post("/v1/generate", data={"prompt": "x", "mask": "m.png"}, files=image)
    assert text.status_code == 422
    assert text.json()["error"]["message"] == "mask: must be a file upload (multipart file part)"
    extra = client.post("/v1/jobs", data={"prompt": "x", "colour": "red"}, files=image)
    assert extra.status_code == 422
    assert extra.json()["error"]["message"].startswith("colour: unknown field")
    # A urlencoded form (no files) is what any page can send: still refused.
    assert client.post("/v1/jobs", data={"prompt": "x"}).status_code == 415


def test_uploads_over_the_limit_are_413(client):
    noise = Image.frombytes("RGB", (1024, 1024), bytes(range(256)) * 12 * 1024)
    buffer = io.BytesIO()
    noise.save(buffer, "PNG", compress_level=0)
    big = buffer.getvalue()
    assert len(big) > 2 * 2**20
    response = client.post("/v1/generate", data={"prompt": "x"}, files=[("image", ("a.png", big))])
    assert response.status_code == 413
    assert (
        response.json()["error"]["message"]
        == "the request body is over 2 MiB (imagen serve --max-upload)"
    )


def test_a_form_posted_by_another_site_is_refused(client):
    for origin in ("https://evil.example", "null"):
        response = client.post(
            "/v1/jobs",
            data={"prompt": "spend my money"},
            files=[("image", ("a.png", png(), "image/png"))],
            headers={"origin": origin},
        )
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "cross_site"
    same = client.post(
        "/v1/generate",
        data={"prompt": "mine"},
        files=[("image", ("a.png", png(), "image/png"))],
        headers={"origin": "http://testserver"},
    )
    assert same.status_code == 200
    assert client.get("/v1/jobs").json() == {"jobs": []}


class Counting:
    """A backend that records how many calls overlap (released by the test)."""

    lock = threading.Lock()
    running = 0
    most = 0
    gate = threading.Event()

    def __init__(self, config: object) -> None:
        pass

    def generate(self, request: Request, progress: object) -> Result:
        with Counting.lock:
            Counting.running += 1
            Counting.most = max(Counting.most, Counting.running)
            if Counting.running == 3:
                Counting.gate.set()
        Counting.gate.wait(30)
        with Counting.lock:
            Counting.running -= 1
        return Result(image=png(size=(8, 8)), seed=request.seed or 1, model="counting")


class CountingPlugin:
    @hookimpl
    def register_backends(self, register):
        register("counting", Counting)


@pytest.mark.parametrize("in_flight", [1, 3])
def test_n_images_run_as_many_at_once_as_max_in_flight(isolated_env, output_dir, pm, in_flight):
    Counting.running, Counting.most = 0, 0
    Counting.gate.clear()
    if in_flight == 1:
        Counting.gate.set()  # one at a time: nobody waits for the others
    path = write_config(
        isolated_env,
        f"output: {{dir: '{output_dir}', preview: off}}\n"
        f"backends: {{c: {{type: counting, max_in_flight: {in_flight}}}}}\n",
    )
    with (
        registered(pm, CountingPlugin(), "counting"),
        TestClient(create_app(Session(path))) as client,
    ):
        response = client.post(
            "/v1/images/generations", json={"model": "c", "prompt": "x", "n": 3, "size": "8x8"}
        )
    assert response.status_code == 200, response.text
    assert len(response.json()["data"]) == 3
    assert Counting.most == in_flight


def test_capabilities_declared_by_the_editor():
    assert editor.Editor(None).capabilities() == Capabilities(images=16, strength=True, mask=True)


def test_a_job_carries_its_inputs_to_the_worker(client, session, output_dir):
    from imagen_core.worker import Worker, WorkerOptions

    first, mask = png(), png((255, 255, 255))
    response = client.post(
        "/v1/jobs",
        data={"prompt": "a queued edit", "width": "32", "height": "32", "max_attempts": "2"},
        files=[("image", ("a.png", first, "image/png")), ("mask", ("m.png", mask, "image/png"))],
    )
    assert response.status_code == 202, response.text
    job = response.json()
    assert job["max_attempts"] == 2
    assert [(i["role"], i["sha256"], i["id"]) for i in job["request"]["inputs"]] == [
        ("image", sha(first), f"inputs/{sha(first)}.png"),
        ("mask", sha(mask), f"inputs/{sha(mask)}.png"),
    ]
    assert str(output_dir) not in json.dumps(job)  # never a path of the server's disk

    Worker(session, session.queue(), WorkerOptions(once=True, idle_wait_s=0.01), log=print).run()

    done = client.get(f"/v1/jobs/{job['id']}").json()
    assert done["status"] == "done", done
    written = sidecar(output_dir, done["image_id"])
    assert written["metadata"]["inputs"] == [["image", sha(first)], ["mask", sha(mask)]]


def test_a_budget_refusal_is_a_429_not_to_be_retried(isolated_env, output_dir):
    path = write_config(
        isolated_env,
        f"output: {{dir: '{output_dir}', preview: off}}\n"
        "budgets: [{period: day, limit_usd: 0.05}]\n"
        "backends: {paid: {type: mock, cost_usd: 0.04}}\n",
    )
    with TestClient(create_app(Session(path))) as client:
        first = client.post("/v1/generate", json={"prompt": "x", "backend": "paid", "width": 8})
        assert first.status_code == 200, first.text  # $0.04 of $0.05
        native = client.post("/v1/generate", json={"prompt": "x", "backend": "paid"})
        openai = client.post("/v1/images/generations", json={"prompt": "x", "model": "paid"})
    for response in (native, openai):
        assert response.status_code == 429, response.text
        assert response.headers["x-should-retry"] == "false"
        assert response.json()["error"]["code"] == "budget_exceeded"
        assert response.json()["error"]["message"].startswith("over budget: ")
    assert openai.json()["error"]["type"] == "rate_limit_error"
