from __future__ import annotations

import json
import threading
from collections import Counter
from pathlib import Path
from typing import ClassVar

import attrs
import pytest
from PIL import Image

from imagen_core import Request, Result, Session, compare, hookimpl
from imagen_core.errors import UsageError
from tests.helpers import registered, run_cli, write_config

CONFIG = """
backends:
  mock-a: {type: mock}
  mock-b: {type: mock, model: other-model}
  broken: {type: mock, fail: CUDA out of memory}
"""


@pytest.fixture
def configured(isolated_env):
    write_config(isolated_env, CONFIG)
    return isolated_env


def test_compare_writes_one_png_per_backend_a_sheet_and_a_sidecar(configured, output_dir):
    result = compare(Request("a red fox", width=64, height=48), ["mock-a", "mock-b", "broken"])
    assert result.ok
    assert result.folder.parent.parent == output_dir.resolve()
    assert result.folder.name.endswith("-a-red-fox-compare")
    files = sorted(p.name for p in result.folder.iterdir())
    assert files == ["compare.json", "contact-sheet.png", "mock-a.png", "mock-b.png"]
    seeds = {o.generation.result.seed for o in result.outcomes if o.generation}
    assert seeds == {result.request.seed} and result.request.seed != 0
    broken = result.outcomes[2]
    assert not broken.ok and broken.error == "mock backend failed as configured: CUDA out of memory"
    with Image.open(result.sheet) as sheet:
        assert sheet.width > sheet.height  # three tiles side by side
    side = json.loads(result.sidecar.read_text())
    assert side["prompt"] == "a red fox"
    assert side["settings"] == {
        "width": 64,
        "height": 48,
        "seed": result.request.seed,
        "steps": 0,
        "style": None,
        "negative": "",
        "strength": None,
        "parallel": False,
    }
    assert side["inputs"] == [] and side["input_image"] is None
    assert [b["status"] for b in side["backends"]] == ["ok", "ok", "failed"]
    assert side["backends"][1]["model"] == "other-model"
    assert side["backends"][0]["path"] == "mock-a.png"
    assert side["backends"][2]["error"].endswith("CUDA out of memory")
    assert side["contact_sheet"] == "contact-sheet.png"


def test_same_seed_gives_the_same_image_as_generate(configured, tmp_path):
    result = compare(
        Request("fox", width=32, height=32, seed=11), ["mock-a"], output_dir=tmp_path / "run"
    )
    single = Session().generate(
        Request("fox", width=32, height=32, seed=11, backend="mock-a"), output=tmp_path / "one.png"
    )
    # The same encoded pixels; the metadata chunks differ (time, latency).
    from tests.helpers import idat

    assert idat(result.outcomes[0].path.read_bytes()) == idat(single.path.read_bytes())


def test_all_failing_is_not_ok_and_names_are_checked_first(configured, tmp_path):
    assert not compare(Request("x", width=8, height=8), ["broken"], output_dir=tmp_path / "r").ok
    with pytest.raises(UsageError, match="unknown backend 'nope'"):
        compare(Request("x"), ["mock-a", "nope"], output_dir=tmp_path / "r2")
    with pytest.raises(UsageError, match="backend mock-a is listed twice"):
        compare(Request("x"), ["mock-a", "mock-a"])
    with pytest.raises(UsageError, match="name at least one backend"):
        compare(Request("x"), [" "])
    assert not (tmp_path / "r2").exists()


def test_no_sidecar_and_default_folder_is_never_reused(configured, output_dir):
    first = compare(Request("x", width=8, height=8, seed=1), ["mock-a"], sidecar=False)
    second = compare(Request("x", width=8, height=8, seed=1), ["mock-a"], sidecar=False)
    assert first.sidecar is None and not (first.folder / "compare.json").exists()
    assert first.folder != second.folder


def test_cli_table_and_exit_codes(configured, capsys, tmp_path):
    code, out, _ = run_cli(
        capsys,
        "compare",
        "a",
        "fox",
        "--models",
        "mock-a,broken",
        "--size",
        "32x32",
        "--seed",
        "5",
        "--output-dir",
        str(tmp_path / "run"),
    )
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["backend", "status", "latency", "cost", "path"]
    assert lines[1].split()[:2] == ["mock-a", "ok"] and lines[1].endswith(
        str(tmp_path / "run" / "mock-a.png")
    )
    assert lines[1].split()[3] == "free"
    assert lines[2].split()[:2] == ["broken", "failed"] and "CUDA out of memory" in lines[2]
    assert f"contact sheet: {tmp_path / 'run' / 'contact-sheet.png'}" in lines
    code, out, _ = run_cli(
        capsys, "compare", "x", "--models", "broken", "--output-dir", str(tmp_path / "run2")
    )
    assert code == 1
    code, _, err = run_cli(capsys, "compare", "x", "--models", "mock-a,typo")
    assert code == 2 and "unknown backend 'typo'" in err


class Gate:
    """Backends that prove what runs at the same time, with no clock involved."""

    active: ClassVar[Counter[str]] = Counter()
    overlap_on_device: ClassVar[list[str]] = []
    lock = threading.Lock()
    barrier = threading.Barrier(2, timeout=10)


@attrs.frozen
class GateConfig:
    meet: bool = False


class GateBackend:
    def __init__(self, config: GateConfig) -> None:
        self.config = config

    def generate(self, request: Request, progress) -> Result:
        from imagen_mock.picture import render_png

        device = request.backend.split("-")[0]
        with Gate.lock:
            Gate.active[device] += 1
            if Gate.active[device] > 1:
                Gate.overlap_on_device.append(device)
        try:
            if self.config.meet:
                Gate.barrier.wait()  # raises BrokenBarrierError unless both run at once
            return Result(image=render_png("x", 1, 8, 8), seed=request.seed, model="gate")
        finally:
            with Gate.lock:
                Gate.active[device] -= 1


class GatePlugin:
    @hookimpl
    def register_backends(self, register):
        register("gate", GateBackend, config=GateConfig)


def test_parallel_overlaps_devices_but_never_one_device(isolated_env, pm, tmp_path):
    write_config(
        isolated_env,
        """
backends:
  gpu0-flux: {type: gate, device: gpu0, meet: true}
  gpu0-sd35: {type: gate, device: gpu0}
  cloud-replicate: {type: gate, meet: true}
""",
    )
    Gate.active.clear()
    Gate.overlap_on_device.clear()
    Gate.barrier.reset()
    with registered(pm, GatePlugin(), "gate"):
        result = compare(
            Request("x", width=8, height=8),
            ["gpu0-flux", "gpu0-sd35", "cloud-replicate"],
            output_dir=tmp_path / "p",
            parallel=True,
        )
    assert [o.ok for o in result.outcomes] == [True, True, True], [o.error for o in result.outcomes]
    assert Gate.overlap_on_device == []
    assert json.loads(result.sidecar.read_text())["settings"]["parallel"] is True


def test_sequential_never_overlaps(isolated_env, pm, tmp_path):
    write_config(
        isolated_env,
        "backends:\n  a-one: {type: gate, meet: true}\n  b-two: {type: gate, meet: true}\n",
    )
    Gate.barrier = threading.Barrier(2, timeout=0.2)
    with registered(pm, GatePlugin(), "gate"):
        result = compare(
            Request("x", width=8, height=8), ["a-one", "b-two"], output_dir=tmp_path / "s"
        )
    # Run one after another, neither meets the other at the barrier.
    assert [o.ok for o in result.outcomes] == [False, False]
    assert all("BrokenBarrierError" in o.error for o in result.outcomes)


def test_backend_reported_device_is_used(isolated_env, pm, tmp_path):
    from imagen_core.comparison import device_of

    class WithDevice(GateBackend):
        device = "127.0.0.1:8188"

    class P:
        @hookimpl
        def register_backends(self, register):
            register("comfy", WithDevice, config=GateConfig)

    write_config(
        isolated_env, "backends:\n  c1: {type: comfy}\n  c2: {type: comfy, device: other}\n"
    )
    with registered(pm, P(), "p"):
        session = Session()
        assert device_of(session, "c1") == "127.0.0.1:8188"
        assert device_of(session, "c2") == "other"


def test_contact_sheet_is_previewed(configured, pm, tmp_path):
    shown: list[Path] = []

    class Preview:
        @hookimpl
        def preview(self, path, mode):
            shown.append(path)
            return True

    with registered(pm, Preview(), "pv"):
        result = compare(
            Request("x", width=8, height=8),
            ["mock-a", "mock-b"],
            output_dir=tmp_path / "v",
            preview=True,
        )
    assert shown == [result.sheet]  # the sheet only, not each image
