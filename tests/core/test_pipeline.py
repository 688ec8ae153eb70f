from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import attrs
import pytest
from PIL import Image

from imagen_core import (
    BackendError,
    Generation,
    OutputError,
    Request,
    Result,
    Session,
    generate,
    hookimpl,
)
from imagen_core.errors import UsageError
from imagen_core.pipeline import resolve_mode
from tests.helpers import idat, registered, write_config


class RecordingSink:
    def __init__(self, config: Any) -> None:
        self.seen: list[Generation] = []
        SINKS.append(self)

    def send(self, generation: Generation) -> None:
        self.seen.append(generation)


class ExplodingSink:
    def __init__(self, config: Any) -> None:
        pass

    def send(self, generation: Generation) -> None:
        raise RuntimeError("bucket on fire")


SINKS: list[RecordingSink] = []


class SinkPlugin:
    @hookimpl
    def register_sinks(self, register):
        register("recording", RecordingSink, default=True)
        register("exploding", ExplodingSink)


@pytest.fixture
def sinks(pm):
    SINKS.clear()
    with registered(pm, SinkPlugin(), "sinks"):
        yield SINKS


def png_size(path: Path) -> tuple[int, int]:
    with Image.open(path) as image:
        return image.size


def test_generate_writes_png_and_sidecar(output_dir: Path) -> None:
    record = generate(Request("A lighthouse at dusk", width=320, height=200, seed=42))
    assert record.ok and record.path is not None and record.sidecar is not None
    assert record.path.parent.parent == output_dir.resolve()
    assert record.path.name.endswith("-a-lighthouse-at-dusk-42.png")
    assert png_size(record.path) == (320, 200)
    assert record.path.read_bytes() == record.result.image
    side = json.loads(record.sidecar.read_text())
    assert record.sidecar == record.path.with_suffix(".json")
    assert side["prompt"] == "A lighthouse at dusk"
    assert side["seed"] == 42
    assert side["backend"] == {"name": "mock", "type": "mock"}
    assert side["model"] == "mock-procedural-v1"
    assert side["image"] == record.path.name
    assert side["cost_usd"] == 0.0
    assert side["latency_s"] == record.result.latency_s > 0
    assert side["imagen_version"]
    assert not [p for p in record.path.parent.iterdir() if p.name.startswith(".imagen-")]


def test_seed_zero_is_picked_and_reported(output_dir: Path) -> None:
    record = generate(Request("a cat", width=64, height=64))
    assert record.result.seed != 0
    again = generate(Request("a cat", width=64, height=64, seed=record.result.seed))
    assert idat(again.result.image) == idat(record.result.image)
    assert f"-{record.result.seed}.png" in record.path.name


def test_same_name_is_never_overwritten(isolated_env: Path, output_dir: Path) -> None:
    write_config(isolated_env, "output:\n  naming: '{slug}-{seed}.{ext}'\n")
    output_dir.mkdir(parents=True)
    taken = output_dir / "cat-7.png"
    taken.write_bytes(b"precious")
    (output_dir / "cat-7-1.json").write_text("{}")  # a sidecar without its image
    first = generate(Request("cat", width=16, height=16, seed=7))
    second = generate(Request("cat", width=16, height=16, seed=7))
    assert taken.read_bytes() == b"precious"
    assert first.path.name == "cat-7-2.png"  # -1 is skipped: its sidecar name is taken
    assert second.path.name == "cat-7-3.png"
    assert (output_dir / "cat-7-1.json").read_text() == "{}"


def test_explicit_output_file_folder_and_conversion(tmp_path: Path) -> None:
    record = generate(Request("cat", width=32, height=16, seed=1), output=tmp_path / "x.png")
    assert record.path == tmp_path / "x.png"
    again = generate(Request("cat", width=32, height=16, seed=1), output=tmp_path / "x.png")
    assert again.path == tmp_path / "x-1.png"
    folder = tmp_path / "folder"
    folder.mkdir()
    inside = generate(Request("dog", width=16, height=16, seed=3), output=folder)
    assert inside.path.parent.parent == folder and inside.path.name.endswith("-dog-3.png")
    jpeg = generate(Request("cat", width=32, height=16, seed=1), output=tmp_path / "x.jpg")
    with Image.open(jpeg.path) as image:
        assert (image.format, image.size) == ("JPEG", (32, 16))


def test_crash_while_linking_leaves_no_partial_file(output_dir: Path, monkeypatch) -> None:
    def broken_link(src: Any, dst: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "link", broken_link)
    with pytest.raises(OutputError, match="No space left on device"):
        generate(Request("a cat", width=16, height=16, seed=5))
    leftovers = [p for p in output_dir.rglob("*") if p.is_file()]
    assert leftovers == []


def test_unwritable_output_fails_before_the_backend_runs(isolated_env, pm) -> None:
    blocker = isolated_env / "not-a-folder"
    blocker.write_text("")
    write_config(isolated_env, f"output:\n  dir: {blocker}/sub\n")
    calls = []

    class Spy:
        @hookimpl
        def register_backends(self, register):
            register("spy", lambda config: calls.append(config))

    with registered(pm, Spy(), "spy"), pytest.raises(OutputError) as info:
        generate(Request("a cat", backend="spy"))
    assert "cannot create output folder" in str(info.value)
    assert "--output" in str(info.value)
    assert calls == []


def test_sinks_get_the_generation_and_a_failing_sink_changes_nothing(
    isolated_env, output_dir, sinks
) -> None:
    write_config(isolated_env, "sinks:\n  boom: {type: exploding}\n")
    warnings: list[str] = []
    session = Session(warn=warnings.append)
    record = session.generate(Request("a cat", width=16, height=16, seed=9))
    assert record.path.exists() and record.sidecar.exists()
    assert warnings == ["boom: RuntimeError: bucket on fire"]
    (sink,) = sinks
    assert sink.seen == [record]


def test_a_sink_on_by_default_can_be_turned_off(isolated_env, sinks) -> None:
    write_config(isolated_env, "sinks:\n  recording: false\n")
    generate(Request("a cat", width=16, height=16))
    assert sinks == []


def test_failing_backend_raises_and_sinks_hear_of_it(isolated_env, output_dir, sinks) -> None:
    write_config(isolated_env, "backends:\n  broken: {type: mock, fail: GPU melted}\n")
    with pytest.raises(BackendError, match="GPU melted"):
        generate(Request("a cat", backend="broken"))
    (failed,) = sinks[0].seen
    assert not failed.ok and "GPU melted" in failed.error and failed.path is None
    assert failed.backend == "broken" and failed.backend_type == "mock"
    assert not output_dir.exists() or not any(output_dir.rglob("*.png"))


def test_unexpected_backend_exception_becomes_a_backend_error(pm) -> None:
    class Crashing:
        def __init__(self, config):
            pass

        def generate(self, request, progress):
            raise ZeroDivisionError("division by zero")

    class Returning:
        def __init__(self, config):
            pass

        def generate(self, request, progress):
            return {"not": "a result"}

    class Plugin:
        @hookimpl
        def register_backends(self, register):
            register("crashing", Crashing)
            register("returning", Returning)

    with registered(pm, Plugin(), "p"):
        with pytest.raises(BackendError, match="backend 'crashing' failed: ZeroDivisionError"):
            generate(Request("x", backend="crashing"))
        with pytest.raises(BackendError, match="backend 'returning' returned no image"):
            generate(Request("x", backend="returning"))


def test_style_wraps_the_prompt_but_not_the_name(isolated_env, pm) -> None:
    write_config(isolated_env, "styles:\n  poster: 'bold poster, {prompt}, high contrast'\n")
    sent: list[Request] = []

    class Echo:
        def __init__(self, config):
            pass

        def generate(self, request, progress):
            sent.append(request)
            return Result(image=b"png", seed=1, model="echo")

    class Plugin:
        @hookimpl
        def register_backends(self, register):
            register("echo", Echo)

    with registered(pm, Plugin(), "echo"):
        record = generate(Request("red fox", style="poster", backend="echo"))
        with pytest.raises(UsageError, match="unknown style 'nope'; known styles: poster"):
            generate(Request("red fox", style="nope", backend="echo"))
    assert sent[0].prompt == "bold poster, red fox, high contrast"
    assert sent[0].backend == "echo"
    assert record.request.prompt == "red fox"
    assert "-red-fox-1." in record.path.name
    assert json.loads(record.sidecar.read_text())["prompt_sent"] == sent[0].prompt


def test_naming_fields_hook_adds_placeholders(isolated_env, pm) -> None:
    write_config(isolated_env, "output:\n  naming: '{project}/{slug}.{ext}'\n")

    class Fields:
        @hookimpl
        def naming_fields(self, request):  # a subset of the hook's arguments
            return {"project": "blog/../x"}

    with registered(pm, Fields(), "fields"):
        record = generate(Request("a cat", width=16, height=16))
    assert record.path.parent.name == "blog-..-x"


def test_a_naming_fields_that_raises_warns_once_and_the_image_is_written(isolated_env, pm):
    write_config(isolated_env, "output:\n  naming: '{project}-{slug}-{broken}.{ext}'\n")

    class Fields:
        @hookimpl
        def naming_fields(self, request):
            return {"project": "blog"}

    class Broken:
        @hookimpl
        def naming_fields(self, result):
            raise ValueError("no git repository here")

    warnings: list[str] = []
    with registered(pm, Fields(), "fields"), registered(pm, Broken(), "broken"):
        session = Session(warn=warnings.append)
        first = session.generate(Request("a cat", width=16, height=16))
        second = session.generate(Request("a dog", width=16, height=16))
    # The others' fields are kept; the broken plugin's placeholder stays literal.
    assert first.path.name.startswith("blog-a-cat-{broken}")
    assert second.path.name.startswith("blog-a-dog-{broken}")
    assert len(warnings) == 1
    assert warnings[0] == (
        "naming_fields of plugin 'broken' (tests.core.test_pipeline) failed: "
        "ValueError: no git repository here (its fields are left out)"
    )


def test_preview_hook_gets_the_mode_and_its_failure_is_one_warning(isolated_env, pm) -> None:
    calls: list[tuple[Path, str]] = []

    class Preview:
        @hookimpl
        def preview(self, path, request, mode):
            calls.append((path, mode))
            raise RuntimeError("no tmux")

    warnings: list[str] = []
    with registered(pm, Preview(), "preview"):
        session = Session(warn=warnings.append)
        record = session.generate(Request("a cat", width=16, height=16))
        session.generate(Request("a cat", width=16, height=16), preview=False)
        session.generate(Request("a cat", width=16, height=16), preview=True)
    assert calls == [(record.path, "auto"), (calls[1][0], "on")]
    assert warnings == ["preview: RuntimeError: no tmux"] * 2


@pytest.mark.parametrize(
    ("configured", "env", "flag", "expected"),
    [
        ("auto", None, None, "auto"),
        ("off", None, None, "off"),
        ("off", "on", None, "on"),
        ("on", "off", None, "off"),
        ("off", "on", False, "off"),
        ("on", None, False, "off"),
        ("off", "off", True, "on"),
    ],
)
def test_mode_resolution_config_env_flag(configured, env, flag, expected, monkeypatch) -> None:
    if env:
        monkeypatch.setenv("IMAGEN_PREVIEW", env)
    assert resolve_mode(configured, "IMAGEN_PREVIEW", flag) == expected


def test_bad_mode_in_environment_is_a_usage_error(monkeypatch) -> None:
    monkeypatch.setenv("IMAGEN_CLOUD_SYNC", "sometimes")
    with pytest.raises(UsageError, match="IMAGEN_CLOUD_SYNC must be auto, on or off"):
        generate(Request("a cat"))


def test_no_cloud_reaches_the_sinks(isolated_env, sinks) -> None:
    generate(Request("a", width=8, height=8), cloud=False)
    generate(Request("a", width=8, height=8))
    assert [g.cloud_sync for sink in sinks for g in sink.seen] == ["off", "auto"]


def test_sidecar_can_be_disabled_and_never_holds_secrets(isolated_env, monkeypatch) -> None:
    monkeypatch.setenv("FAKE_TOKEN", "tok-SECRET-123")
    write_config(isolated_env, "output:\n  sidecar: false\n")
    assert generate(Request("a", width=8, height=8)).sidecar is None
    record = generate(Request("a", width=8, height=8), sidecar=True)
    assert "tok-SECRET-123" not in record.sidecar.read_text()


def test_progress_is_reported(tmp_path) -> None:
    steps: list[tuple[int, int]] = []
    generate(
        Request("a", width=8, height=8, steps=5),
        output=tmp_path / "p.png",
        progress=lambda done, total, message="": steps.append((done, total)),
    )
    assert steps == [(i, 5) for i in range(1, 6)]


def test_result_fields_filled_by_core(tmp_path) -> None:
    record = generate(Request("a", width=8, height=8), output=tmp_path / "r.png")
    assert record.result.backend == "mock"
    assert attrs.evolve(record.result).latency_s >= 0
    with Image.open(io.BytesIO(record.result.image)) as image:
        assert image.size == (8, 8)


@pytest.mark.parametrize("when", ["build", "generate"])
def test_missing_secret_names_variable_and_instance(isolated_env, pm, monkeypatch, when):
    from imagen_core import require_env
    from imagen_core.config import setting
    from imagen_core.errors import ConfigError

    @attrs.frozen
    class CloudConfig:
        api_token_env: str = setting("CLOUD_TOKEN", help="variable holding the token")

    class Cloud:
        def __init__(self, config):
            self.config = config
            if when == "build":
                require_env(config.api_token_env)

        def generate(self, request, progress):
            require_env(self.config.api_token_env)
            raise AssertionError("unreachable")

    class Plugin:
        @hookimpl
        def register_backends(self, register):
            register("cloud", Cloud, config=CloudConfig)

    monkeypatch.delenv("MY_CLOUD_KEY", raising=False)
    write_config(
        isolated_env, "backends:\n  flux-cloud:\n    type: cloud\n    api_token_env: MY_CLOUD_KEY\n"
    )
    with registered(pm, Plugin(), "cloud"), pytest.raises(ConfigError) as info:
        generate(Request("x", backend="flux-cloud"))
    assert str(info.value) == (
        "set MY_CLOUD_KEY in the environment (named by backends.flux-cloud.api_token_env)"
    )
    assert info.value.exit_code == 2


def test_output_with_a_trailing_slash_is_a_folder_even_when_missing(tmp_path):
    record = generate(Request("boat", width=8, height=8, seed=2), output=f"{tmp_path}/new/")
    assert record.path.parent.parent == tmp_path / "new"
    assert record.path.name.endswith("-boat-2.png")


def test_output_conversion_is_recorded_and_no_suffix_gets_one(tmp_path):
    record = generate(Request("boat", width=8, height=8), output=tmp_path / "x.webp")
    assert record.result.mime_type == "image/webp"
    assert json.loads(record.sidecar.read_text())["mime_type"] == "image/webp"
    assert record.path.read_bytes()[8:12] == b"WEBP"
    bare = generate(Request("boat", width=8, height=8), output=tmp_path / "plain")
    assert bare.path == tmp_path / "plain.png"


def test_output_with_an_unsupported_suffix_fails_before_generating(tmp_path, pm):
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(UsageError, match=r"--output .*x\.gif: imagen writes \.png, \.jpg"):
        generate(Request("boat"), output=out / "x.gif")
    assert list(out.iterdir()) == []


def test_a_sink_missing_its_secret_is_one_warning_naming_the_sink(isolated_env, pm, monkeypatch):
    from imagen_core import require_env

    class Cloud:
        def __init__(self, config):
            require_env("CLOUD_SINK_KEY", key="key_env")

        def send(self, generation):
            raise AssertionError("never built")

    class Plugin:
        @hookimpl
        def register_sinks(self, register):
            register("cloud", Cloud)

    monkeypatch.delenv("CLOUD_SINK_KEY", raising=False)
    write_config(isolated_env, "sinks:\n  mirror: {type: cloud}\n")
    warnings: list[str] = []
    with registered(pm, Plugin(), "cloud"):
        record = Session(warn=warnings.append).generate(Request("x", width=8, height=8))
    assert record.path.exists()
    assert warnings == [
        "mirror: set CLOUD_SINK_KEY in the environment (named by sinks.mirror.key_env)"
    ]


def test_interrupt_reaches_the_sinks_and_propagates(isolated_env, sinks, pm):
    class Slow:
        def __init__(self, config):
            pass

        def generate(self, request, progress):
            raise KeyboardInterrupt

    class Plugin:
        @hookimpl
        def register_backends(self, register):
            register("slow", Slow)

    with registered(pm, Plugin(), "slow"), pytest.raises(KeyboardInterrupt):
        generate(Request("x", backend="slow"))
    (failed,) = sinks[0].seen
    assert failed.error == "interrupted" and failed.backend == "slow"


def test_a_failed_write_after_generating_rescues_the_image(tmp_path, monkeypatch, sinks):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    real_link = os.link

    def link(src, dst):
        if "imagen-rescued" not in str(dst):
            raise OSError(28, "No space left on device")
        real_link(src, dst)

    monkeypatch.setattr(os, "link", link)
    with pytest.raises(OutputError) as info:
        generate(Request("paid for", width=8, height=8, seed=4), output=tmp_path / "out" / "x.png")
    rescued = tmp_path / "tmp" / "imagen-rescued" / "x.png"
    assert str(info.value) == (
        f"cannot write {tmp_path / 'out' / 'x.png'}: No space left on device; "
        f"the image was saved to {rescued} instead"
    )
    assert rescued.read_bytes().startswith(b"\x89PNG")
    assert not (tmp_path / "out" / "x.png").exists()
    (failed,) = sinks[0].seen
    assert failed.result is not None and "No space left" in failed.error


def test_sidecar_records_the_size_of_the_image_made(pm, tmp_path):
    from imagen_mock.picture import render_png

    class Rounding:
        def __init__(self, config):
            pass

        def generate(self, request, progress):  # e.g. a model that only takes 16-multiples
            return Result(image=render_png("x", 1, 96, 48), seed=1, model="r")

    class P:
        @hookimpl
        def register_backends(self, register):
            register("rounding", Rounding)

    with registered(pm, P(), "r"):
        record = generate(
            Request("x", width=100, height=50, backend="rounding"), output=tmp_path / "r.png"
        )
    side = json.loads(record.sidecar.read_text())
    assert (side["width"], side["height"]) == (96, 48)
    assert (side["request"]["width"], side["request"]["height"]) == (100, 50)


def test_a_backend_is_never_called_with_inputs_it_did_not_declare(pm, output_dir) -> None:
    import io

    from PIL import Image

    from imagen_core import Session, hookimpl
    from imagen_core.errors import Unsupported
    from imagen_core.models import Capabilities, ImageInput, Request, Result

    calls: list[Request] = []

    class Editor:
        def __init__(self, _settings: object) -> None:
            pass

        def capabilities(self) -> Capabilities:
            return Capabilities(images=1)

        def generate(self, request: Request, progress: object) -> Result:
            calls.append(request)
            return Result(image=request.image.data if request.image else b"", seed=1, model="e")

    class Plain:  # declares nothing: text to image only
        def __init__(self, _settings: object) -> None:
            pass

        def generate(self, request: Request, progress: object) -> Result:
            calls.append(request)
            return Result(image=b"x", seed=1, model="p")

    class Plugin:
        @hookimpl
        def register_backends(self, register) -> None:
            register("editor", Editor)
            register("plain", Plain)

    pm.register(Plugin(), name="editor-plugin")
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, "PNG")
    image = ImageInput.from_bytes(buffer.getvalue())
    session = Session()
    with pytest.raises(
        Unsupported,
        match=r"backend 'plain' cannot take input images .*backends that can: mock, editor$",
    ):
        session.generate(Request("x", backend="plain", inputs=[image]))
    with pytest.raises(Unsupported, match="'editor' cannot take a mask"):
        session.generate(Request("x", backend="editor", inputs=[image, image.with_role("mask")]))
    assert calls == []
    made = session.generate(Request("x", backend="editor", inputs=[image]))
    assert calls and calls[0].image is image
    import json

    sidecar = json.loads(made.sidecar.read_text())
    assert sidecar["request"]["inputs"] == [image.describe()]


@pytest.mark.parametrize("metadata", [True, False])
def test_the_sidecar_is_the_final_records_dict_as_indented_json(output_dir, metadata) -> None:
    # The sidecar reuses the dict made for the embedded provenance: it must still
    # be exactly sidecar_dict of the record returned (final name, the image's own
    # size, the metadata embedding left), in the documented indented layout.
    from imagen_core.pipeline import sidecar_dict

    record = generate(Request("a quay", width=24, height=16, seed=3), metadata=metadata)
    assert record.sidecar is not None and record.path is not None
    expected = json.dumps(sidecar_dict(record), indent=2, default=str).encode() + b"\n"
    assert record.sidecar.read_bytes() == expected
    side = json.loads(expected)
    assert (side["image"], side["width"], side["height"]) == (record.path.name, 24, 16)
    assert list(side)[:3] == ["imagen_version", "created", "image"]
