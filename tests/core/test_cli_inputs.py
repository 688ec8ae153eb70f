"""--image, --mask and --strength on generate, compare and submit; imagen backends."""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path

import pytest
from PIL import Image

from imagen_core import hookimpl
from imagen_core.plugins import get_plugin_manager
from tests.helpers import job_image, registered, run_cli, write_config

RED, BLUE = (230, 20, 20), (20, 20, 230)


def with_stdin(monkeypatch, data: bytes) -> None:
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(data)))


def png(path: Path, color=RED, size=(24, 16), mode="RGB") -> str:
    Image.new(mode, size, color).save(path)
    return str(path)


def pixels(path: str | Path) -> set[tuple[int, int, int]]:
    with Image.open(path) as image:
        return {color for _count, color in image.convert("RGB").getcolors(1 << 16)}


@pytest.fixture
def photo(tmp_path) -> str:
    return png(tmp_path / "photo.png")


def test_generate_edits_an_image_at_its_size_and_records_it(capsys, photo, tmp_path):
    code, out, err = run_cli(
        capsys, "generate", "now at night", "--image", photo, "--strength", "0", "--seed", "3"
    )
    assert code == 0 and err == ""
    made = Path(out.strip())
    assert Image.open(made).size == (24, 16)  # no --size: the image's
    assert pixels(made) == {RED}  # strength 0 keeps the input
    sidecar = json.loads(made.with_suffix(".json").read_text())
    [given] = sidecar["request"]["inputs"]
    assert (given["role"], given["source"], given["width"]) == ("image", photo, 24)
    assert sidecar["request"]["strength"] == 0.0


def test_a_generated_image_piped_in_is_the_next_input(capsys, monkeypatch, tmp_path):
    code, out, _ = run_cli(capsys, "generate", "a fox", "--size", "16x16", "--seed", "2")
    first = out.strip()
    with_stdin(monkeypatch, out.encode())  # exactly what generate printed
    code, out, _ = run_cli(capsys, "generate", "now at night", "--image", "-", "--strength", "0")
    assert code == 0
    assert Image.open(out.strip()).tobytes() == Image.open(first).convert("RGB").tobytes()
    sidecar = json.loads(Path(out.strip()).with_suffix(".json").read_text())
    assert sidecar["request"]["inputs"][0]["source"] == first


def test_image_bytes_on_stdin(capsys, monkeypatch, tmp_path):
    with_stdin(monkeypatch, Path(png(tmp_path / "blue.png", BLUE)).read_bytes())
    code, out, _ = run_cli(capsys, "generate", "x", "-i", "-", "--strength", "0")
    assert code == 0 and pixels(out.strip()) == {BLUE}
    sidecar = json.loads(Path(out.strip()).with_suffix(".json").read_text())
    assert sidecar["request"]["inputs"][0]["source"] is None


def test_mask_and_references(capsys, photo, tmp_path):
    mask = Image.new("L", (12, 8), 0)  # half the image's size: scaled, with a warning
    mask.paste(255, (0, 0, 6, 8))
    mask.save(tmp_path / "mask.png")
    reference = png(tmp_path / "ref.png", BLUE)
    code, out, err = run_cli(
        capsys,
        "generate",
        "x",
        "--image",
        photo,
        "--image",
        reference,
        "--mask",
        str(tmp_path / "mask.png"),
    )
    assert code == 0
    assert err == f"imagen: {tmp_path / 'mask.png'} is 12x8; scaled it to the image's 24x16\n"
    with Image.open(out.strip()) as made:
        rgb = made.convert("RGB")
        assert rgb.getpixel((23, 0)) == RED  # black in the mask: kept
        assert rgb.getpixel((1, 1)) != RED  # white: repainted
    roles = [
        i["role"]
        for i in json.loads(Path(out.strip()).with_suffix(".json").read_text())["request"]["inputs"]
    ]
    assert roles == ["image", "reference", "mask"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--image", "{tmp}/missing.png"], "cannot read input image {tmp}/missing.png: No such"),
        (["--image", "{tmp}/text.png"], "{tmp}/text.png is not a readable image"),
        (["--image", "{photo}", "--strength", "1.5"], "'1.5' is not a number from 0 to 1"),
        (["--image", "{photo}", "--strength", "lots"], "'lots' is not a number from 0 to 1"),
        (["--strength", "0.5"], "--strength needs an input image to start from: give --image"),
        (["--mask", "{photo}"], "--mask needs an image to apply to: give it with --image"),
        (
            ["--image", "{photo}", "--mask", "{tmp}/square.png"],
            "{tmp}/square.png is 16x16 but the image is 24x16",
        ),
        (["--image", "-", "--image", "-"], "stdin can be read once"),
    ],
)
def test_bad_inputs_are_usage_errors_before_any_backend_runs(
    capsys, photo, tmp_path, output_dir, args, message
):
    (tmp_path / "text.png").write_text("hello")
    png(tmp_path / "square.png", size=(16, 16))
    fill = {"tmp": str(tmp_path), "photo": photo}
    code, out, err = run_cli(capsys, "generate", "x", *(a.format(**fill) for a in args))
    assert code == 2 and out == ""
    assert message.format(**fill) in err and err.count("\n") == 1
    assert not output_dir.exists()  # nothing generated


def test_the_prompt_and_an_image_cannot_both_come_from_stdin(capsys, monkeypatch):
    with_stdin(monkeypatch, b"a fox")
    code, _, err = run_cli(capsys, "generate", "-", "--image", "-")
    assert code == 2
    assert "stdin can be read once: give the prompt as words" in err


class TextOnly:
    def __init__(self, _config):
        pass

    def generate(self, request, progress):
        raise AssertionError("a backend that cannot take the inputs was called")


class TextOnlyPlugin:
    @hookimpl
    def register_backends(self, register):
        register("textonly", TextOnly)


@pytest.fixture
def text_only(isolated_env):
    write_config(isolated_env, "backends:\n  plain: {type: textonly}\n  mock: {type: mock}\n")
    with registered(get_plugin_manager(), TextOnlyPlugin(), "textonly"):
        yield


def test_a_backend_that_cannot_take_an_image_is_a_usage_error(capsys, photo, text_only):
    code, _, err = run_cli(capsys, "generate", "x", "--image", photo, "--backend", "plain")
    assert code == 2
    assert err == (
        "imagen: backend 'plain' cannot take input images (it makes images from text "
        "only); backends that can: mock\n"
    )


def test_compare_gives_every_backend_the_input_and_shows_it_first(
    capsys, photo, tmp_path, isolated_env
):
    write_config(isolated_env, "backends:\n  a: {type: mock}\n  b: {type: mock}\n")
    folder = tmp_path / "run"
    code, _, _ = run_cli(
        capsys,
        "compare",
        "x",
        "--models",
        "a,b",
        "--image",
        photo,
        "--strength",
        "0",
        "--output-dir",
        str(folder),
    )
    assert code == 0
    assert pixels(folder / "a.png") == pixels(folder / "b.png") == {RED}
    assert (folder / "input.png").read_bytes() == Path(photo).read_bytes()
    side = json.loads((folder / "compare.json").read_text())
    assert side["input_image"] == "input.png" and side["settings"]["strength"] == 0.0
    assert side["inputs"][0]["source"] == photo
    with Image.open(folder / "contact-sheet.png") as sheet:
        # Three tiles in a row; the first (input) shows the red photo, letterboxed.
        width = sheet.width
        first = sheet.convert("RGB").getpixel((width // 6, width // 6))
    assert first == RED


def test_compare_refuses_a_backend_that_cannot_take_the_input(capsys, photo, text_only, tmp_path):
    code, _, err = run_cli(
        capsys,
        "compare",
        "x",
        "--models",
        "mock,plain",
        "--image",
        photo,
        "--output-dir",
        str(tmp_path / "run"),
    )
    assert code == 2 and "backend 'plain' cannot take input images" in err
    assert not (tmp_path / "run").exists()


def test_submit_carries_the_inputs_to_the_worker(capsys, photo, isolated_env, output_dir):
    write_config(isolated_env, "queue: {type: sqlite, poll_s: 0.02}\n")
    code, out, _ = run_cli(capsys, "submit", "x", "--image", photo, "--strength", "0")
    assert code == 0
    job_id = out.strip()
    code, out, _ = run_cli(capsys, "jobs", "show", job_id)
    shown = json.loads(out)
    assert shown["inputs"][0]["source"] == photo and '"data"' not in json.dumps(shown)
    assert "inputs" not in shown["request"]
    code, _, _ = run_cli(capsys, "worker", "--once")
    assert code == 0
    submitted = dt.datetime.fromisoformat(shown["created_at"])
    assert pixels(job_image(output_dir, job_id, submitted)) == {RED}


def test_submit_refuses_a_backend_that_cannot_take_the_input(capsys, photo, text_only):
    code, out, err = run_cli(capsys, "submit", "x", "--image", photo, "--backend", "plain")
    assert code == 2 and out == "" and "cannot take input images" in err
    code, out, _ = run_cli(capsys, "jobs", "--json")
    assert json.loads(out) == []


def test_backends_shows_what_each_accepts_and_costs(capsys, text_only):
    code, out, _ = run_cli(capsys, "backends", "--json")
    assert code == 0
    by_name = {i["name"]: i for i in json.loads(out)["instances"]}
    assert by_name["mock"]["capabilities"] == {
        "text_to_image": True,
        "images": 4,
        "strength": True,
        "mask": True,
    }
    assert by_name["mock"]["estimate"] == {
        "usd": 0.0,
        "basis": "free",
        "source": "the mock backend",
    }
    assert by_name["plain"]["accepts"] == "text" and by_name["plain"]["price"] is None
    assert by_name["plain"]["estimate"]["basis"] == "unknown"
    code, out, _ = run_cli(capsys, "backends")
    assert code == 0
    lines = {line[3:].split()[0]: line for line in out.splitlines() if "accepts" in line}
    assert "accepts text, 4 images, strength, mask · free" in lines["mock"]
    assert "textonly     accepts text  (" in lines["plain"]


def test_again_finds_an_input_gone_from_disk_in_the_job_queue(capsys, photo, isolated_env):
    write_config(isolated_env, "queue: {type: sqlite}\n")
    code, out, _ = run_cli(capsys, "generate", "x", "--image", photo, "--strength", "0")
    made = out.strip()
    code, _, _ = run_cli(capsys, "submit", "y", "--image", photo)  # queued: its image is kept
    assert code == 0
    Path(photo).unlink()
    code, out, err = run_cli(capsys, "again", made)
    assert code == 0, err
    assert pixels(out.strip()) == {RED}
