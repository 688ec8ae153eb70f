"""Provenance inside the file: what imagen writes is read by independent readers
(exiftool, sd-parsers), the pixels are never re-encoded, other tools' chunks and
C2PA manifests survive, and `imagen info`/`imagen again` round-trip."""

from __future__ import annotations

import functools
import io
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image, PngImagePlugin

from imagen_core import Session, hookimpl
from imagen_core.models import Request, Result
from imagen_core.provenance import jpeg, png
from imagen_core.provenance.infotext import format_infotext, parse_infotext
from imagen_core.provenance.read import read_info
from tests import helpers
from tests.helpers import idat, registered, write_config

EXIFTOOL = shutil.which("exiftool")


def exiftool(path: Path) -> dict:
    if EXIFTOOL is None:
        pytest.fail("exiftool is missing: ./dev test installs libimage-exiftool-perl")
    out = subprocess.run(
        [EXIFTOOL, "-j", "-G1", "-a", str(path)], capture_output=True, text=True, check=True
    ).stdout
    return json.loads(out)[0]


@pytest.fixture
def run_cli(capsys):
    return functools.partial(helpers.run_cli, capsys)


def generate(tmp_path: Path, name: str, **options) -> Path:
    request = Request(
        "a lighthouse, at dusk: storm", negative="blurry, text", seed=42, width=96, height=64
    )
    made = Session().generate(request, output=tmp_path / name, **options)
    assert made.path is not None
    return made.path


# ----------------------------------------------------------------- writing


def test_png_carries_a1111_parameters_and_the_record_read_by_independent_readers(tmp_path):
    path = generate(tmp_path, "a.png")
    tags = exiftool(path)
    params = tags["PNG:Parameters"]
    assert params.startswith("a lighthouse, at dusk: storm\nNegative prompt: blurry, text\n")
    assert "Seed: 42, Size: 96x64, Model: mock-procedural-v1, Backend: mock" in params
    record = json.loads(tags["PNG:Imagen"])
    sidecar = json.loads(path.with_suffix(".json").read_text())
    assert record == {key: value for key, value in sidecar.items() if key != "image"}
    # Placed before IDAT: Pillow's Image.info (what A1111 and most readers use) sees it.
    with Image.open(path) as image:
        assert image.info["parameters"] == params
    from sd_parsers import ParserManager

    parsed = ParserManager().parse(str(path))
    assert parsed.full_prompt == "a lighthouse, at dusk: storm"
    assert parsed.full_negative_prompt == "blurry, text"
    assert parsed.samplers[0].parameters["seed"] == "42"
    assert {model.name for model in parsed.models} == {"mock-procedural-v1"}


def test_the_pixels_are_not_re_encoded(tmp_path):
    with_meta = generate(tmp_path, "with.png").read_bytes()
    without = generate(tmp_path, "without.png", metadata=False).read_bytes()
    assert idat(with_meta) == idat(without)
    assert b"parameters" not in without and b"tEXtparameters" in with_meta


def test_metadata_can_be_turned_off_in_the_config(tmp_path, isolated_env, output_dir):
    write_config(isolated_env, f"output: {{dir: '{output_dir}', metadata: false}}\n")
    path = Session().generate(Request("quiet", width=32, height=32)).path
    assert path is not None
    assert "parameters" not in png.texts(path.read_bytes())
    assert "imagen" not in png.texts(path.read_bytes())


def test_jpeg_and_webp_get_exif_user_comment_without_re_encoding(tmp_path):
    for name in ("a.jpg", "a.webp"):
        path = generate(tmp_path, name)
        tags = exiftool(path)
        assert tags["ExifIFD:UserComment"].startswith("a lighthouse, at dusk: storm"), name
        assert read_info(path).seed == 42
        plain = generate(tmp_path, "plain-" + name, metadata=False)
        with Image.open(path) as a, Image.open(plain) as b:
            assert a.tobytes() == b.tobytes(), name


def test_an_existing_exif_block_is_kept_and_the_scan_untouched():
    buffer = io.BytesIO()
    exif = Image.Exif()
    exif[0x010F] = "Canon"  # Make
    Image.new("RGB", (16, 16), (10, 20, 30)).save(buffer, "JPEG", exif=exif.tobytes())
    original = buffer.getvalue()
    from imagen_core.provenance.exif import user_comment, with_user_comment

    changed = jpeg.set_exif(original, with_user_comment(jpeg.exif_block(original), "hello"))
    scan = original[original.index(b"\xff\xda") :]
    assert changed.endswith(scan)
    block = jpeg.exif_block(changed)
    assert block is not None and user_comment(block) == "hello"
    with Image.open(io.BytesIO(changed)) as image:
        assert image.getexif()[0x010F] == "Canon"


def comfyui_png() -> bytes:
    graph = {
        "3": {
            "class_type": "KSampler",
            "inputs": {
                "seed": 77,
                "steps": 20,
                "cfg": 3.5,
                "sampler_name": "euler",
                "positive": ["6", 0],
                "negative": ["7", 0],
                "latent_image": ["5", 0],
            },
        },
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "flux1.safetensors"}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 48, "height": 32}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a red fox"}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "watermark"}},
    }
    info = PngImagePlugin.PngInfo()
    info.add_text("prompt", json.dumps(graph))
    info.add_text("workflow", json.dumps({"nodes": [], "links": []}))
    buffer = io.BytesIO()
    Image.new("RGB", (48, 32), (200, 100, 0)).save(buffer, "PNG", pnginfo=info)
    return buffer.getvalue()


class Fixed:
    """A backend returning the bytes it was built with (a ComfyUI or a provider image)."""

    data = b""

    def __init__(self, _settings: object) -> None:
        pass

    def generate(self, request: Request, progress: object) -> Result:
        return Result(image=self.data, seed=77, model="fixed", metadata={"fingerprint": {"x": 1}})


@pytest.fixture
def fixed(pm):
    class Plugin:
        @hookimpl
        def register_backends(self, register) -> None:
            register("fixed", Fixed)

    pm.register(Plugin(), name="fixed-plugin")
    return Fixed


def test_a_comfyui_pngs_own_chunks_stay_byte_for_byte(tmp_path, fixed):
    fixed.data = comfyui_png()
    made = Session().generate(Request("a red fox", backend="fixed"), output=tmp_path / "c.png")
    assert made.path is not None
    written = made.path.read_bytes()
    for kind, body, _s, _e in png.chunks(fixed.data):
        if kind in (b"tEXt", b"IDAT", b"IHDR"):
            assert body in written
    info = read_info(made.path)
    assert info.found == ["imagen", "a1111", "comfyui"]
    assert info.comfyui_workflow
    # imagen's record wins; the graph is still readable on its own:
    assert made.result is not None and made.result.metadata["fingerprint"]["x"] == 1
    alone = tmp_path / "alone.png"
    alone.write_bytes(fixed.data)
    graph = read_info(alone)
    assert (graph.prompt, graph.negative, graph.seed, graph.steps) == (
        "a red fox",
        "watermark",
        77,
        20,
    )
    assert (graph.model, graph.sampler, graph.cfg, graph.width) == (
        "flux1.safetensors",
        "euler",
        3.5,
        48,
    )


def c2pa_png() -> bytes:
    plain = io.BytesIO()
    Image.new("RGB", (8, 8)).save(plain, "PNG")
    data = plain.getvalue()
    # A JUMBF-like store: the CBOR claim_generator and a certificate's organisation.
    store = (
        b"jumb\x00\x00jumdc2pa"
        + bytes([0x60 + 15])
        + b"claim_generator"
        + bytes([0x60 + 10])
        + b"OpenAI-API"
        + b"\x06\x03\x55\x04\x0a\x0c\x06OpenAI"
    )
    at = data.index(b"IDAT") - 4
    return data[:at] + png.chunk(b"caBX", store) + data[at:]


def test_a_c2pa_signed_image_is_left_exactly_as_received(tmp_path, fixed):
    fixed.data = c2pa_png()
    made = Session().generate(Request("signed", backend="fixed"), output=tmp_path / "s.png")
    assert made.path is not None and made.path.read_bytes() == fixed.data
    sidecar = json.loads(made.path.with_suffix(".json").read_text())
    assert sidecar["metadata"]["embedded"].startswith("no: the image carries a C2PA manifest")
    info = read_info(made.path)
    assert info.found == ["c2pa"]
    assert info.c2pa == {"generator": "OpenAI-API", "issuer": "OpenAI"}


def test_infotext_round_trips_quoted_values():
    params = {"Steps": 4, "Sampler": "euler", "Seed": 1, "Model": "a, b: c", "Style": None}
    text = format_infotext("line one\nline two", "no: text", params)
    assert text.endswith('Model: "a, b: c"')
    assert parse_infotext(text) == (
        "line one\nline two",
        "no: text",
        {"Steps": "4", "Sampler": "euler", "Seed": "1", "Model": "a, b: c"},
    )


# ----------------------------------------------------------------- reading


def png_with(**texts: str) -> bytes:
    info = PngImagePlugin.PngInfo()
    for key, value in texts.items():
        info.add_text(key, value)
    buffer = io.BytesIO()
    Image.new("RGB", (64, 40)).save(buffer, "PNG", pnginfo=info)
    return buffer.getvalue()


def test_info_reads_swarmui_invokeai_and_plain_files(tmp_path):
    swarm = tmp_path / "swarm.png"
    swarm.write_bytes(
        png_with(
            parameters=json.dumps(
                {"sui_image_params": {"prompt": "owl", "seed": "5", "steps": 30, "cfgscale": 7}}
            )
        )
    )
    invoke = tmp_path / "invoke.png"
    invoke.write_bytes(
        png_with(
            invokeai_metadata=json.dumps(
                {"positive_prompt": "cat", "seed": 9, "model": {"name": "sdxl"}, "steps": 25}
            )
        )
    )
    plain = tmp_path / "plain.png"
    plain.write_bytes(png_with())
    a, b, c = read_info(swarm), read_info(invoke), read_info(plain)
    assert (a.found, a.prompt, a.seed, a.steps, a.cfg) == (["swarmui"], "owl", 5, 30, 7.0)
    assert (b.found, b.prompt, b.seed, b.model) == (["invokeai"], "cat", 9, "sdxl")
    assert (c.found, c.width, c.height) == ([], 64, 40)


def test_imagen_info_on_the_command_line(tmp_path, run_cli):
    path = generate(tmp_path, "a.png")
    broken = tmp_path / "broken.png"
    broken.write_bytes(path.read_bytes()[:60])
    plain = tmp_path / "plain.png"
    plain.write_bytes(png_with())
    code, out, err = run_cli("info", str(path), str(path.with_suffix(".json")), str(plain))
    assert code == 0, err
    assert "found: imagen, a1111" in out and "prompt: a lighthouse, at dusk: storm" in out
    assert "seed 42" in out and "no generation metadata" in out
    code, out, err = run_cli("info", "--json", str(broken), str(tmp_path / "nope.png"), str(path))
    assert code == 1
    assert json.loads(out)[0]["seed"] == 42
    assert err.count("imagen: ") == 2 and "broken.png: damaged file" in err


# ----------------------------------------------------------------- again


def test_again_reproduces_the_pixels_and_names_what_changed(tmp_path, run_cli):
    path = generate(tmp_path, "a.png")
    code, out, err = run_cli("again", str(path), "-o", str(tmp_path / "b.png"))
    assert code == 0, err
    assert f"identical pixels to {path}" in err
    with Image.open(path) as a, Image.open(out.strip()) as b:
        assert a.tobytes() == b.tobytes()
    sidecar = str(path.with_suffix(".json"))
    code, _out, err = run_cli("again", sidecar, "--seed", "7", "-o", str(tmp_path / "c.png"))
    assert code == 0, err
    assert "differs from" in err and "seed: 42 -> 7" in err


def test_again_finds_inputs_by_hash_and_says_when_one_is_gone(tmp_path, fixed):
    from imagen_core.errors import UsageError
    from imagen_core.models import Capabilities, ImageInput
    from imagen_core.provenance.again import recorded

    fixed.data = png_with()
    Fixed.capabilities = lambda self: Capabilities(images=1)  # type: ignore[attr-defined]
    try:
        source = tmp_path / "input.png"
        source.write_bytes(png_with(x="1"))
        image = ImageInput.from_path(source)
        made = Session().generate(
            Request("edit", backend="fixed", inputs=[image]), output=tmp_path / "out" / "e.png"
        )
        assert made.path is not None
        again = recorded(made.path, Session())
        assert again.request.image is not None and again.request.image.sha256 == image.sha256
        assert again.request.backend == "fixed"
        # Moved beside the record: still found, by its hash.
        moved = made.path.parent / "moved.png"
        source.rename(moved)
        assert recorded(made.path, Session()).request.image.sha256 == image.sha256
        moved.unlink()
        with pytest.raises(UsageError, match=r"input image .* is not at its path"):
            recorded(made.path, Session())
    finally:
        del Fixed.capabilities  # type: ignore[attr-defined]


class _Exploding:
    def __init__(self, config: object) -> None:
        pass

    def send(self, generation: object) -> None:
        raise RuntimeError("bucket on fire")


class _ExplodingSinks:
    @hookimpl
    def register_sinks(self, register) -> None:
        register("exploding", _Exploding)


@pytest.mark.parametrize("command", ["generate", "again"])
def test_generate_and_again_print_alike_on_a_terminal(
    tmp_path, run_cli, pm, isolated_env, monkeypatch, command
):
    # One way to print a run: the bar erased before a warning, the path on
    # stdout, the summary on stderr (imagen_core.cli.options.generate_and_print).
    import sys

    from imagen_core.terminal import StepProgress

    path = generate(tmp_path, "a.png")
    write_config(isolated_env, "sinks:\n  boom: {type: exploding}\n")
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    monkeypatch.setattr(
        StepProgress, "for_terminal", classmethod(lambda cls, label: cls(label, sys.stderr))
    )
    args = (
        ["generate", "a fox", "--size", "32x32"] if command == "generate" else ["again", str(path)]
    )
    with registered(pm, _ExplodingSinks(), "exploding-sinks"):
        code, out, err = run_cli(*args, "-o", str(tmp_path / f"{command}.png"))
    assert code == 0, err
    assert out == f"{tmp_path / f'{command}.png'}\n"
    drawn, _, rest = err.partition("\r\x1b[Kimagen: boom: RuntimeError: bucket on fire\n")
    assert "\x1b[Kmock [" in drawn  # the bar was drawn, then erased for the warning
    assert rest.splitlines()[0].startswith("  mock (mock-procedural-v1) · seed ")  # the summary
