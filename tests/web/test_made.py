"""/v1/info and /v1/again: what `imagen info` says about a gallery image or an
uploaded file, its A1111 parameters as written, and the recorded request run
again as a job whose image has the original's seed."""

from __future__ import annotations

import io
import json
from pathlib import Path

from PIL import Image, PngImagePlugin

from imagen_core.provenance.read import read_info, read_info_bytes
from imagen_core.worker import Worker, WorkerOptions
from tests.web.conftest import small

A1111 = (
    "a brass owl on a shelf\n"
    "Negative prompt: blurry\n"
    "Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 4242, Size: 32x32, Model: sdxl"
)


def a1111_png(text: str = A1111) -> bytes:
    """A PNG as A1111 writes one: its infotext in a `parameters` text chunk."""
    meta = PngImagePlugin.PngInfo()
    meta.add_text("parameters", text)
    out = io.BytesIO()
    Image.new("RGB", (32, 32), (10, 20, 30)).save(out, "PNG", pnginfo=meta)
    return out.getvalue()


def made(client, **fields) -> dict:
    answer = client.post("/v1/generate", json=small(**fields))
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_info_of_a_gallery_image_is_imagen_info_with_its_parameters_text(client, output_dir):
    image = made(client, prompt="a tin robot", seed=77, backend="other")
    answer = client.get("/v1/info", params={"id": image["id"]})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["id"] == body["name"] == image["id"]
    on_disk = read_info(output_dir / image["id"])
    assert body["info"]["seed"] == on_disk.seed == 77
    assert body["info"]["model"] == "other-model"
    assert body["info"]["record"] is None  # server paths stay home
    assert str(output_dir) not in answer.text
    assert body["report"].splitlines()[0] == image["id"]
    assert "seed 77" in body["report"]
    # The text as the file holds it: A1111's format, what Copy parameters copies.
    text = body["parameters_text"]
    assert text.startswith("a tin robot\n")
    assert "Seed: 77" in text and "Model: other-model" in text
    assert body["again"]["seed"] == 77 and body["again"]["backend"] == "other"
    assert body["again_error"] is None


def test_again_queues_the_recorded_request_and_the_new_image_has_its_seed(
    client, session, output_dir
):
    image = made(client, prompt="a paper boat", seed=0)  # the mock picks the seed
    assert image["seed"]
    answer = client.post("/v1/again", json={"id": image["id"]})
    assert answer.status_code == 202, answer.text
    job = answer.json()
    assert job["status"] == "queued" and job["backend"] == "mock"
    assert job["request"]["seed"] == image["seed"]
    Worker(session, session.queue(), WorkerOptions(once=True, idle_wait_s=0.01), log=print).run()
    done = client.get(f"/v1/jobs/{job['id']}").json()
    assert done["status"] == "done", done
    sidecar = json.loads((output_dir / done["image_id"]).with_suffix(".json").read_text())
    assert sidecar["seed"] == image["seed"]
    first = Image.open(output_dir / image["id"])
    again = Image.open(output_dir / done["image_id"])
    assert first.tobytes() == again.tobytes()


def test_an_uploaded_a1111_png_is_read_and_can_be_run_again(client):
    data = a1111_png()
    answer = client.post("/v1/info", files={"file": ("owl.png", data, "image/png")})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["id"] is None and body["name"] == "owl.png"
    assert body["info"]["found"] == ["a1111"]
    assert body["info"] == {**read_info_bytes(data, "owl.png").as_dict(), "record": None}
    assert body["parameters_text"] == A1111
    assert body["again"]["prompt"] == "a brass owl on a shelf"
    assert body["again"]["seed"] == 4242 and body["again"]["backend"] is None
    queued = client.post("/v1/again", files={"file": ("owl.png", data, "image/png")})
    assert queued.status_code == 202, queued.text
    job = queued.json()
    assert job["backend"] == "mock"  # another tool's image runs on the default backend
    assert job["request"]["seed"] == 4242 and job["request"]["negative"] == "blurry"


def test_a_png_without_metadata_says_so_and_cannot_be_run_again(client):
    out = io.BytesIO()
    Image.new("RGB", (8, 8)).save(out, "PNG")
    files = {"file": ("plain.png", out.getvalue(), "image/png")}
    body = client.post("/v1/info", files=files).json()
    assert body["info"]["found"] == [] and body["parameters_text"] is None
    assert body["again"] is None and "records no prompt" in body["again_error"]
    refused = client.post("/v1/again", files=files)
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "not_recorded"
    assert "records no prompt" in refused.json()["error"]["message"]


def test_bad_files_and_ids_are_named(client, output_dir):
    not_image = client.post("/v1/info", files={"file": ("notes.txt", b"hello", "text/plain")})
    assert not_image.status_code == 422
    assert "not a PNG, JPEG or WebP image" in not_image.json()["error"]["message"]
    assert "notes.txt" in not_image.json()["error"]["message"]
    assert str(output_dir) not in not_image.text
    none = client.post("/v1/info", data={"other": "x"}, files={"x": ("a", b"", "text/plain")})
    assert none.status_code == 422 and none.json()["error"]["message"].startswith("x: ")
    assert client.get("/v1/info").status_code == 422
    missing = client.get("/v1/info", params={"id": "2026-01-01/nope.png"})
    assert missing.status_code == 404
    escape = client.post("/v1/again", json={"id": "../../etc/passwd.png"})
    assert escape.status_code == 404
    not_json = client.post("/v1/again", content=b"id", headers={"content-type": "text/plain"})
    assert not_json.status_code == 415


def test_read_info_bytes_matches_read_info(tmp_path: Path):
    data = a1111_png()
    path = tmp_path / "owl.png"
    path.write_bytes(data)
    assert read_info_bytes(data, path).as_dict() == read_info(path).as_dict()
