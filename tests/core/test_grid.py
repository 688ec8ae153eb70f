"""imagen grid: axes and values, checks before anything runs, the files a run
writes (grid.json, sheets, grid.html), and a queued grid run by a real worker."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from pathlib import Path
from typing import ClassVar

import attrs
import pytest
from PIL import Image

from imagen_core import Request, Session, hookimpl
from imagen_core.errors import UsageError
from imagen_core.grid import parse_axis, plan_grid, run_grid, wait_grid
from imagen_core.grid.sheet import SheetCell, render_grid_sheet
from imagen_core.models import Result
from tests.helpers import registered, run_cli, write_config

CONFIG = """
queue: {type: sqlite, poll_s: 0.02}
backends:
  mock-a: {type: mock}
  mock-b: {type: mock, model: other-model, cost_usd: 0.01}
  broken: {type: mock, fail: CUDA out of memory}
styles:
  photo: "a photo of {prompt}"
"""


@pytest.fixture
def configured(isolated_env):
    write_config(isolated_env, CONFIG)
    return isolated_env


# ----------------------------------------------------------------- axes


@pytest.mark.parametrize(
    ("spec", "values"),
    [
        ("seed=1,2,3", (1, 2, 3)),
        ("seed=1..4", (1, 2, 3, 4)),
        ("steps=4..20:4", (4, 8, 12, 16, 20)),
        ("steps=4..18:4", (4, 8, 12, 16)),  # the end is included only when reached
        ("seed=5..2", (5, 4, 3, 2)),
        ("seed=1..2,10", (1, 2, 10)),
        ("strength=0.2..0.8:0.3", (0.2, 0.5, 0.8)),
        ("cfg=1..7:1.5", (1, 2.5, 4, 5.5, 7)),
        ("sampler=euler, dpmpp_2m", ("euler", "dpmpp_2m")),
        ('negative="blurry, dark",none', ("blurry, dark", "none")),
        ("style=,photo", ("", "photo")),
        ("prompt=a fox, running|a cat", ("a fox, running", "a cat")),
        ("size=512x512,1024x768", ((512, 512), (1024, 768))),
        ("extra.seeds=1,2", (1, 2)),
    ],
)
def test_values_lists_ranges_and_quoting(spec, values):
    axis = parse_axis(spec)
    assert axis.values == values
    assert all(type(a) is type(b) for a, b in zip(axis.values, values, strict=True))


def test_labels_and_extra_keys():
    cfg = parse_axis("cfg=1..7:1.5")
    assert cfg.extra and cfg.labels == ("1", "2.5", "4", "5.5", "7")
    assert parse_axis("style=,photo").labels == ("(none)", "photo")
    assert not parse_axis("seed=1").extra


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("seed", "write NAME=VALUES"),
        ("seeds=1,2", "unknown axis 'seeds'; did you mean seed?"),
        ("stpes=1,2", "did you mean steps?"),
        ("width=512,768", "unknown axis 'width'; did you mean size?"),
        ("model=a,b", "did you mean backend?"),
        ("seed=", "no values"),
        ("seed=a,b", "'a' is not a whole number or a range"),
        ("seed=1.5", "1.5 is not a whole number"),
        ("seed=1..4:0", "never reaches its end"),
        ("seed=1..4:-1", "never reaches its end"),
        ("seed=1..100000", "has 100000 values; at most 1000"),
        ("seed=1,1", "value 1 is listed twice"),
        ("seed=-1", "out of range"),
        ("steps=1..20000:10000", "out of range 0..10000"),
        ("strength=0.5,1.5", "strength 1.5 is out of range 0..1"),
        ("size=big", "'big' is not WIDTHxHEIGHT"),
        ("size=9000x10", "out of range"),
        ("sr=red", "at least one replacement"),
        ("prompt=a fox||", "a value is empty"),
        ('negative="unclosed', "cannot read the values"),
        ("my-key=1", "is not a backend value name"),
        ("backend=mock-a,,mock-b", "a backend name is empty"),
    ],
)
def test_bad_axes_are_refused_with_the_fix(spec, message):
    with pytest.raises(UsageError, match=re.escape(message)):
        parse_axis(spec, option="--y")


# ----------------------------------------------------------------- checks


class TextOnly:
    """A backend that takes no strength (no capabilities() at all)."""

    def __init__(self, config):
        pass

    def generate(self, request, progress):
        from imagen_mock.picture import render_png

        return Result(render_png("x", 1, 8, 8), seed=request.seed or 1, model="text")


@attrs.frozen
class Empty:
    pass


class TextOnlyPlugin:
    @hookimpl
    def register_backends(self, register):
        register("textonly", TextOnly, config=Empty)


@pytest.mark.parametrize(
    ("axes", "message"),
    [
        (["backend=mock-a,typo"], "cell (backend=typo): unknown backend 'typo'"),
        (["seed=1,2", "style=photo,nope"], "cell (seed=1, style=nope): unknown style 'nope'"),
        (["sr=wolf,cat"], "sr: 'wolf' is not in the prompt 'a red fox'"),
        (["cfg=1,high"], "cell (cfg=high): cfg must be a number, got 'high'"),
        (["seed=1,2", "seed=3"], "axis seed is used twice"),
        (["prompt=a|b", "sr=red,blue"], "prompt and sr both change the prompt"),
        (["seed=1..20", "steps=1..20"], "the grid has 400 cells (20 x 20), over --max-cells 256"),
        (
            ["backend=plain", "strength=0.3,0.6"],
            "cell (backend=plain, strength=0.3): backend 'plain' cannot take a strength",
        ),
    ],
)
def test_every_cell_is_checked_before_anything_runs(isolated_env, pm, tmp_path, axes, message):
    write_config(isolated_env, CONFIG.replace("styles:", "  plain: {type: textonly}\nstyles:"))
    with registered(pm, TextOnlyPlugin(), "textonly"), pytest.raises(UsageError) as info:
        run_grid(
            Request("a red fox", width=8, height=8),
            [parse_axis(spec) for spec in axes],
            output_dir=tmp_path / "run",
        )
    assert message in str(info.value)
    assert not (tmp_path / "run").exists()  # nothing made, nothing spent


def test_one_seed_for_every_cell_unless_an_axis_sets_it(configured):
    checked = plan_grid(Request("fox"), [parse_axis("backend=mock-a,mock-b")])
    seeds = {cell.request.seed for cell in checked.cells}
    assert len(seeds) == 1 and 0 not in seeds
    checked = plan_grid(Request("fox"), [parse_axis("seed=0,7")])
    assert [cell.request.seed for cell in checked.cells] == [0, 7]


def test_axes_change_the_requests(configured):
    checked = plan_grid(
        Request("a red fox", seed=3),
        [parse_axis("sr=red,blue"), parse_axis("size=64x32,32x64"), parse_axis("cfg=2,3.5")],
    )
    first, last = checked.cells[0].request, checked.cells[-1].request
    assert (first.prompt, first.width, first.height, first.extra) == (
        "a red fox",
        64,
        32,
        {"cfg": 2},
    )
    assert (last.prompt, last.width, last.height, last.extra) == (
        "a blue fox",
        32,
        64,
        {"cfg": 3.5},
    )
    assert [c.stem for c in checked.cells[:2]] == [
        "001-sr-red-size-64x32-cfg-2",
        "002-sr-blue-size-64x32-cfg-2",
    ]
    assert {c.request.backend for c in checked.cells} == {"mock"}  # the default, resolved


# ----------------------------------------------------------------- a run


def test_a_run_writes_cells_sidecars_sheets_page_and_record(configured, tmp_path):
    run = run_grid(
        Request("a red fox", width=48, height=32, seed=0),
        [
            parse_axis("seed=1,2"),
            parse_axis("backend=mock-a,mock-b,broken"),
            parse_axis("style=,photo"),
        ],
        output_dir=tmp_path / "run",
    )
    assert run.ok
    folder = tmp_path / "run"
    files = sorted(p.name for p in folder.iterdir())
    assert "grid.json" in files and "grid.html" in files
    assert [name for name in files if name.startswith("grid-")] == [
        "grid-01-none.png",
        "grid-02-photo.png",
    ]
    data = json.loads((folder / "grid.json").read_text())
    assert data["kind"] == "grid" and data["status"] == "done" and data["prompt"] == "a red fox"
    assert [(a["role"], a["name"], a["labels"]) for a in data["axes"]] == [
        ("x", "seed", ["1", "2"]),
        ("y", "backend", ["mock-a", "mock-b", "broken"]),
        ("z", "style", ["(none)", "photo"]),
    ]
    cells = data["cells"]
    assert len(cells) == 12
    ok = [c for c in cells if c["status"] == "ok"]
    failed = [c for c in cells if c["status"] == "failed"]
    assert len(ok) == 8 and len(failed) == 4
    for cell in ok:
        assert (folder / cell["image"]).is_file() and (folder / cell["sidecar"]).is_file()
        sidecar = json.loads((folder / cell["sidecar"]).read_text())
        assert sidecar["seed"] == cell["seed"] == int(cell["values"]["seed"])
        assert sidecar["backend"]["name"] == cell["backend"] == cell["values"]["backend"]
        assert cell["latency_s"] is not None
    mock_b = [c for c in ok if c["backend"] == "mock-b"]
    assert {c["cost_usd"] for c in mock_b} == {0.01} and {c["estimate_usd"] for c in mock_b} == {
        0.01
    }
    assert all(c["error"].endswith("CUDA out of memory") and c["image"] is None for c in failed)
    photo = next(c for c in ok if c["values"]["style"] == "photo")
    assert (
        json.loads((folder / photo["sidecar"]).read_text())["prompt_sent"] == "a photo of a red fox"
    )
    assert data["totals"] == {
        "cells": 12,
        "ok": 8,
        "failed": 4,
        "cost_usd": 0.04,
        "cost_known": True,
        "estimated_usd": 0.04,
        "estimate_known": True,
        "latency_s": data["totals"]["latency_s"],
    }
    assert data["sheets"] == ["grid-01-none.png", "grid-02-photo.png"]
    assert data["html"] == "grid.html"


def test_the_page_is_self_contained_and_embeds_the_record(configured, tmp_path):
    run = run_grid(
        Request("a </script> fox", width=16, height=16),
        [parse_axis("seed=1,2"), parse_axis("backend=mock-a,broken")],
        output_dir=tmp_path / "run",
    )
    page = run.html.read_text()
    assert not re.search(r"(?i)(https?:)?//[a-z0-9]", page.replace("</", "<"))  # no URL anywhere
    assert "<link" not in page and "@import" not in page
    embedded = re.search(
        r'<script type="application/json" id="grid-data">(.*?)</script>', page, re.S
    )
    data = json.loads(embedded.group(1))
    assert data["cells"] == json.loads(run.record_path.read_text())["cells"]
    assert page.count("</script>") == 2  # the prompt's "</script>" is escaped
    for cell in data["cells"]:
        if cell["image"]:
            assert (tmp_path / "run" / cell["image"]).is_file()  # relative names resolve


def test_the_sheet_has_headers_and_a_tile_per_cell(tmp_path):
    pictures = []
    for i, colour in enumerate([(255, 0, 0), (0, 255, 0), (0, 0, 255)]):
        path = tmp_path / f"{i}.png"
        Image.new("RGB", (1024, 1024), colour).save(path)
        pictures.append(path)
    cells = [
        [SheetCell(pictures[0], info="1.00 s · free"), SheetCell(pictures[1])],
        [SheetCell(pictures[2]), SheetCell(error="CUDA out of memory")],
    ]
    sheet = render_grid_sheet(
        cells,
        column_title="seed",
        column_labels=["1", "2"],
        row_title="backend",
        row_labels=["flux", "sdxl"],
        title="a fox",
        tile=256,
    )
    from imagen_core.contact_sheet import _BACKGROUND, _ERROR_AREA
    from imagen_core.grid.sheet import _HEADER

    # Left column of row headers (200 px), then two tiles of 256 and their gaps.
    gap = 8
    assert sheet.width == gap + 200 + gap + 2 * (256 + gap)
    assert sheet.getpixel((1, 1)) == _HEADER
    # Where the tiles are: find the red one, then check its neighbours.
    x0 = gap + 200 + gap
    top = next(y for y in range(sheet.height) if sheet.getpixel((x0 + 128, y)) == (255, 0, 0))
    assert sheet.getpixel((x0 + 256 + gap + 128, top + 128)) == (0, 255, 0)
    pitch = next(
        dy
        for dy in range(256, sheet.height - top)
        if sheet.getpixel((x0 + 128, top + dy)) == (0, 0, 255)
    )
    assert sheet.getpixel((x0 + 256 + gap + 5, top + pitch + 5)) == _ERROR_AREA
    # Text was drawn in the header band over each column and beside each row.
    header = sheet.crop((x0, 0, sheet.width, top))
    assert header.convert("L").getextrema()[1] > 200
    row_band = sheet.crop((0, top, 200, top + 40)).convert("L")
    assert row_band.getextrema()[1] > 200
    assert sheet.getpixel((sheet.width - 2, sheet.height - 2)) == _BACKGROUND


def test_an_8x8_sheet_of_1024_images_stays_readable(tmp_path):
    from imagen_core.grid.sheet import tile_for

    assert tile_for(8) == 320 and tile_for(2) == 512 and tile_for(20) == 256
    path = tmp_path / "p.png"
    Image.new("RGB", (1024, 1024), (9, 9, 9)).save(path)
    cells = [[SheetCell(path, info="mock-a · 1.00 s · free")] * 8] * 8
    sheet = render_grid_sheet(
        cells,
        column_title="seed",
        column_labels=[str(i) for i in range(8)],
        row_title="steps",
        row_labels=[str(i) for i in range(8)],
        title="x",
    )
    assert 2800 <= sheet.width <= 3000  # 320 px tiles: the 16 px+ labels stay legible


# ----------------------------------------------------------------- the CLI


def test_cli_dry_run_shows_cells_and_cost_and_runs_nothing(configured, capsys, output_dir):
    code, out, _ = run_cli(
        capsys, "grid", "a fox", "--x", "seed=1,2", "--y", "backend=mock-a,mock-b", "--dry-run"
    )
    assert code in (0, None)
    lines = out.splitlines()
    assert lines[0].split() == ["cell", "seed", "backend", "estimate"]
    assert lines[1].split() == ["1", "1", "mock-a", "free"]
    assert lines[3].split() == ["3", "1", "mock-b", "$0.01"]
    assert lines[-1] == "4 cells (2 x 2) · estimated $0.02 · nothing run"
    assert not output_dir.exists()


def test_cli_runs_and_reports(configured, capsys, tmp_path):
    code, out, err = run_cli(
        capsys,
        "grid",
        "a fox",
        "--x",
        "seed=1,2",
        "--y",
        "backend=mock-a,broken",
        "--size",
        "16x16",
        "--output-dir",
        str(tmp_path / "run"),
    )
    assert code == 0
    assert "2 of 4 cells made an image · free" in out
    assert f"sheet: {tmp_path / 'run' / 'grid.png'}" in out
    assert f"page: {tmp_path / 'run' / 'grid.html'}" in out
    assert "imagen: cell (seed=1, backend=broken) failed: mock backend failed" in err
    # The folder holds a run: a second one there would overwrite its record.
    code, _, err = run_cli(
        capsys, "grid", "x", "--x", "seed=1", "--output-dir", str(tmp_path / "run")
    )
    assert code == 2 and "holds a grid run already (grid.json)" in err
    code, _, err = run_cli(
        capsys, "grid", "x", "--x", "backend=broken", "--output-dir", str(tmp_path / "r2")
    )
    assert code == 1 and "no cell made an image" in err
    assert (tmp_path / "r2" / "grid.json").is_file()  # a failed grid is still a grid


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["a fox"], "give at least --x AXIS=VALUES"),
        (["--x", "seed=1"], "give a PROMPT"),
        (["a", "--x", "seed=1", "--detach"], "--detach goes with --queue"),
        (["a", "--x", "seed=1", "--queue", "--parallel"], "do not go together"),
        (["a", "--x", "seed=1", "--z", "steps=1"], "--z needs --y"),
        (["a", "--x", "sede=1"], "unknown axis 'sede'; did you mean seed?"),
        (
            ["a", "--x", "seed=1..9", "--y", "steps=1..9", "--max-cells", "50"],
            "over --max-cells 50",
        ),
        (["a", "--x", "backend=mock-a,nope", "--dry-run"], "cell (backend=nope): unknown backend"),
        (["--wait", "/nonexistent/run"], "is not a grid run"),
        (["a", "--x", "seed=1", "--wait", "/x"], "--wait RUN takes no prompt"),
        # A second --x would silently replace the first (click keeps the last).
        (["a", "--x", "seed=1..4", "--x", "steps=4,8"], "--x: given 2 times"),
        (["a", "--x", "seed=1", "--y", "steps=1", "--y", "steps=2"], "--y: given 2 times"),
    ],
)
def test_cli_usage_errors_exit_2(configured, capsys, args, message):
    code, _, err = run_cli(capsys, "grid", *args)
    assert code == 2, err
    assert message in err and err.startswith("imagen: ")


# ----------------------------------------------------------------- the queue


def worker_once() -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "IMAGEN_LOAD_PLUGINS": "imagen-mock"}
    code = "from imagen_core.cli import main; main(['worker', '--once'])"
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )


def test_a_queued_grid_is_rendered_by_a_worker_and_assembled(configured, capsys, tmp_path):
    folder = tmp_path / "run"
    code, out, _ = run_cli(
        capsys,
        "grid",
        "a fox",
        "--x",
        "seed=1,2",
        "--y",
        "backend=mock-a,broken",
        "--size",
        "16x16",
        "--queue",
        "--detach",
        "--output-dir",
        str(folder),
    )
    assert code in (0, None)
    assert f"assemble when done: imagen grid --wait {folder}" in out
    pending = json.loads((folder / "grid-jobs.json").read_text())
    assert pending["status"] == "queued" and not (folder / "grid.json").exists()
    jobs = [cell["job"] for cell in pending["cells"]]
    assert len(set(jobs)) == 4 and all(jobs)
    # Not done yet: waiting with a timeout leaves it waiting.
    assert wait_grid(folder, timeout_s=0).waiting

    worker = worker_once()
    assert worker.returncode == 0, worker.stderr
    code, out, err = run_cli(capsys, "grid", "--wait", str(folder))
    assert code == 0, err
    assert "2 of 4 cells made an image" in out
    data = json.loads((folder / "grid.json").read_text())
    assert not (folder / "grid-jobs.json").exists()
    assert data["mode"] == "queue" and data["status"] == "done"
    by_job = {cell["job"]: cell for cell in data["cells"]}
    assert set(by_job) == set(jobs)
    for cell in data["cells"]:
        if cell["backend"] == "mock-a":
            assert cell["status"] == "ok" and (folder / cell["image"]).is_file()
            assert (folder / cell["sidecar"]).is_file() and cell["seed"] == int(
                cell["values"]["seed"]
            )
            sidecar = json.loads((folder / cell["sidecar"]).read_text())
            assert sidecar["image"] == cell["image"]  # renamed with the image
        else:
            assert cell["status"] == "failed" and "CUDA out of memory" in cell["error"]
    assert (folder / "grid.png").is_file() and (folder / "grid.html").is_file()
    # Assembled once: waiting again changes nothing.
    again = wait_grid(folder)
    assert again.ok and again.record.cells == wait_grid(folder).record.cells


def test_the_first_command_waits_for_the_workers(configured, tmp_path):
    env = {**os.environ, "IMAGEN_LOAD_PLUGINS": "imagen-mock"}
    folder = tmp_path / "run"
    code = (
        "from imagen_core.cli import main; main(['grid', 'a fox', '--x', 'seed=1,2', "
        f"'--size', '16x16', '--queue', '--output-dir', {str(folder)!r}])"
    )
    grid = subprocess.Popen(
        [sys.executable, "-c", code],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        session = Session()
        queue = session.queue()
        import time

        deadline = time.monotonic() + 60
        while len(queue.list()) < 2:  # the grid has submitted its jobs
            assert time.monotonic() < deadline and grid.poll() is None, grid.stderr
            time.sleep(0.05)
        worker = worker_once()
        assert worker.returncode == 0, worker.stderr
        out, err = grid.communicate(timeout=120)
    finally:
        if grid.poll() is None:
            grid.kill()
    assert grid.returncode == 0, err
    assert "2 of 2 cells made an image" in out
    assert f"imagen: 2 jobs queued for {folder}; waiting for workers" in err
    assert json.loads((folder / "grid.json").read_text())["status"] == "done"


def test_compare_is_the_grid_runner_with_one_backend_axis(configured, tmp_path, monkeypatch):
    from imagen_core import compare
    from imagen_core.grid import engine

    seen = []
    original = engine.run_jobs

    def spy(session, jobs, **options):
        seen.append([job.request.backend for job in jobs])
        return original(session, jobs, **options)

    monkeypatch.setattr("imagen_core.comparison.run_jobs", spy)
    result = compare(
        Request("x", width=8, height=8), ["mock-a", "mock-b"], output_dir=tmp_path / "c"
    )
    assert seen == [["mock-a", "mock-b"]] and result.ok
    assert Path(result.sheet).name == "contact-sheet.png"


@pytest.mark.slow
def test_the_page_in_a_browser_swaps_axes_zooms_and_asks_for_nothing_outside(configured, tmp_path):
    from tests.web.browser import chromium_page, require_chromium

    require_chromium()
    run = run_grid(
        Request("a fox", width=16, height=16),
        [parse_axis("seed=1,2,3"), parse_axis("backend=mock-a,broken")],
        output_dir=tmp_path / "run",
    )
    outside: list[str] = []
    with chromium_page() as page:
        page.on("request", lambda r: None if r.url.startswith("file://") else outside.append(r.url))
        page.goto(run.html.as_uri())
        headers = page.locator("tr").first.locator("th")
        assert headers.all_inner_texts()[1:] == ["1", "2", "3"]  # seeds across
        assert page.locator(".cell").count() == 6
        assert page.locator(".cell img").count() == 3  # broken's cells have no image
        page.select_option("#cols", label="backend")  # swap: backends across
        headers = page.locator("tr").first.locator("th")
        assert headers.all_inner_texts()[1:] == ["mock-a", "broken"]
        assert page.locator("tr").count() == 4  # a header row and three seeds
        page.locator(".cell").first.click()
        zoom = page.locator("#zoom")
        assert "open" in (zoom.get_attribute("class") or "")
        link = zoom.get_by_text("open the full image")
        assert link.get_attribute("href") == run.record.cells[0].image
        page.keyboard.press("Escape")
        assert "open" not in (zoom.get_attribute("class") or "")
        assert outside == []


def test_parallel_cells_overlap_across_devices_never_on_one(isolated_env, pm, tmp_path):
    from tests.core.test_compare import Gate, GatePlugin

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
    Gate.barrier = threading.Barrier(2, timeout=10)
    with registered(pm, GatePlugin(), "gate"):
        run = run_grid(
            Request("x", width=8, height=8),
            [parse_axis("seed=1,2"), parse_axis("backend=gpu0-flux,gpu0-sd35,cloud-replicate")],
            output_dir=tmp_path / "p",
            parallel=True,
        )
    # flux and cloud cells wait for each other at a barrier: they ran at once.
    assert [c.status for c in run.record.cells] == ["ok"] * 6, [c.error for c in run.record.cells]
    assert Gate.overlap_on_device == []
    assert json.loads(run.record_path.read_text())["parallel"] is True


class Img2Img:
    """Takes one image and a strength; reports what it was given."""

    seen: ClassVar[list[tuple[int, float | None]]] = []

    def __init__(self, config):
        pass

    def capabilities(self):
        from imagen_core.models import Capabilities

        return Capabilities(images=1, strength=True)

    def generate(self, request, progress):
        from imagen_mock.picture import render_png

        Img2Img.seen.append((len(request.images), request.strength))
        return Result(render_png("x", 1, 8, 8), seed=request.seed or 1, model="img2img")


class Img2ImgPlugin:
    @hookimpl
    def register_backends(self, register):
        register("img2img", Img2Img, config=Empty)


def test_a_strength_axis_over_an_input_image(isolated_env, pm, capsys, tmp_path):
    write_config(
        isolated_env,
        CONFIG.replace("styles:", "  edit: {type: img2img}\n  plain: {type: textonly}\nstyles:"),
    )
    source = tmp_path / "in.png"
    Image.new("RGB", (40, 24), (200, 10, 10)).save(source)
    Img2Img.seen.clear()
    with registered(pm, Img2ImgPlugin(), "img2img"), registered(pm, TextOnlyPlugin(), "textonly"):
        code, _, err = run_cli(
            capsys,
            "grid",
            "a fox",
            "-b",
            "edit",
            "--image",
            str(source),
            "--x",
            "strength=0.25..0.75:0.25",
            "--output-dir",
            str(tmp_path / "run"),
        )
        assert code == 0, err
        assert sorted(Img2Img.seen) == [(1, 0.25), (1, 0.5), (1, 0.75)]
        data = json.loads((tmp_path / "run" / "grid.json").read_text())
        assert data["input_image"] == "input.png"
        assert (tmp_path / "run" / "input.png").read_bytes() == source.read_bytes()
        page = (tmp_path / "run" / "grid.html").read_text()
        assert '<img class="input" src="input.png"' in page
        assert data["base"]["width"] == 40 and data["base"]["height"] == 24  # the image's size
        assert data["base"]["inputs"][0]["role"] == "image"
        # A backend that takes no input image is refused before anything runs.
        code, _, err = run_cli(
            capsys, "grid", "a fox", "--image", str(source), "--x", "backend=edit,plain"
        )
        assert code == 2 and "cell (backend=plain): backend 'plain' cannot take input images" in err
    code, _, err = run_cli(capsys, "grid", "a fox", "--mask", str(source), "--x", "seed=1")
    assert code == 2 and "--mask needs the image it applies to" in err
    code, _, err = run_cli(
        capsys, "grid", "a fox", "--image", str(tmp_path / "no.png"), "--x", "seed=1"
    )
    assert code == 2 and "cannot read input image" in err


def test_max_cost_holds_the_whole_grid(configured, capsys, tmp_path):
    args = [
        "grid",
        "a fox",
        "--x",
        "seed=1..3",
        "-b",
        "mock-b",
        "--output-dir",
        str(tmp_path / "r"),
    ]
    code, _, err = run_cli(capsys, *args, "--max-cost", "0.02")
    assert code == 2 and "--max-cost $0.0200: this call is estimated at $0.0300" in err
    assert not (tmp_path / "r").exists()
    code, out, err = run_cli(capsys, *args, "--max-cost", "0.03", "--size", "16x16")
    assert code == 0, err
    assert "3 of 3 cells made an image · $0.03" in out


def test_waiting_on_canceled_jobs_missing_images_and_broken_records(configured, capsys, tmp_path):
    from imagen_core.worker import Worker, WorkerOptions

    folder = tmp_path / "run"
    pending = run_grid(
        Request("a fox", width=16, height=16),
        [parse_axis("seed=1,2,3")],
        output_dir=folder,
        queue=True,
        wait=False,
    )
    session = Session()
    queue = session.queue()
    first, second, _third = (cell.job for cell in pending.record.cells)
    queue.cancel(first)
    Worker(session, queue, WorkerOptions(once=True), log=lambda _line: None).run()
    Path(queue.get(second).result_path).unlink()  # a worker elsewhere, no shared folder
    run = wait_grid(folder)
    statuses = [(cell.status, cell.error) for cell in run.record.cells]
    assert statuses[0] == ("failed", "job canceled")
    assert statuses[1][0] == "failed" and "cannot be read here" in statuses[1][1]
    assert statuses[2] == ("ok", None)
    # A folder whose record is broken, or no run at all: exit 2, saying which.
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "grid-jobs.json").write_text("{not json")
    code, _, err = run_cli(capsys, "grid", "--wait", str(broken))
    assert code == 2 and "grid-jobs.json cannot be read as a grid record" in err
    code, _, err = run_cli(capsys, "grid", "--wait", str(tmp_path))
    assert code == 2 and "is not a grid run (no grid.json or grid-jobs.json in it)" in err


def test_a_queue_that_fails_midway_leaves_failed_tiles_not_lost_jobs(
    configured, tmp_path, monkeypatch
):
    from imagen_core.errors import ImagenError
    from imagen_core.sqlite_queue import SQLiteQueue

    calls = []
    real = SQLiteQueue.submit

    def flaky(self, request, **options):
        calls.append(request.seed)
        if len(calls) == 2:
            raise ImagenError("database is restarting")
        return real(self, request, **options)

    monkeypatch.setattr(SQLiteQueue, "submit", flaky)
    run = run_grid(
        Request("a fox", width=16, height=16),
        [parse_axis("seed=1,2,3")],
        output_dir=tmp_path / "run",
        queue=True,
        wait=False,
    )
    assert calls == [1, 2]  # no submission after the queue failed
    first, second, third = run.record.cells
    assert first.status == "queued" and first.job
    assert (second.status, second.error) == ("failed", "not queued: database is restarting")
    assert third.error == second.error and third.job is None
    recorded = json.loads((tmp_path / "run" / "grid-jobs.json").read_text())
    assert [c["status"] for c in recorded["cells"]] == ["queued", "failed", "failed"]
