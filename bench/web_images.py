"""`GET /v1/images` with 10,000 images in the output folder, beside a directory walk.

    .venv/bin/python bench/web_images.py [--images 10000] [--runs 51]

The output folder is laid out as imagen lays it out: 9,000 images in 90 date
folders (naming template ``{date}/...``) and 1,000 in ``jobs/`` (the worker's),
each a tiny PNG with a real sidecar. The API is asked for its first page (50
entries) through the real app (Starlette's TestClient: routing, middleware,
JSON), median of ``--runs``; target <= 50 ms. Beside it:

- baseline: what a server without an index does per request: walk the folder,
  read and parse every sidecar, sort, take 50 (in-process, no HTTP: it is
  flattered, not handicapped);
- the same request right after a new image arrived in a folder of 1,000
  (the index lists that one folder again);
- the index's start-up cost: reading every sidecar once, when the server starts.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

from figures import Figures

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TARGET_MS = 50.0
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f8cf000000030101001b05b0c70000000049454e44ae426082"
)


def sidecar(prompt: str, image: str, created: str, seed: int) -> bytes:
    body = {
        "imagen_version": "0.1.0",
        "created": created,
        "image": image,
        "prompt": prompt,
        "prompt_sent": prompt,
        "request": {
            "prompt": prompt,
            "negative": "",
            "width": 1024,
            "height": 1024,
            "seed": seed,
            "steps": 0,
            "style": None,
            "backend": None,
            "extra": {},
        },
        "backend": {"name": "mock", "type": "mock"},
        "model": "mock-procedural-v1",
        "seed": seed,
        "width": 1024,
        "height": 1024,
        "mime_type": "image/png",
        "latency_s": 0.08,
        "cost_usd": 0.0,
        "metadata": {"steps": 8, "renderer": "imagen_mock.picture"},
    }
    return json.dumps(body, indent=2).encode() + b"\n"


def populate(out: Path, count: int) -> None:
    in_jobs = count // 10
    per_day = 100
    for i in range(count - in_jobs):
        day, n = divmod(i, per_day)
        folder = out / f"2026-{1 + day // 28:02d}-{1 + day % 28:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        created = f"2026-{1 + day // 28:02d}-{1 + day % 28:02d}T10:{n // 60:02d}:{n % 60:02d}+00:00"
        name = f"10{n:04d}-picture-{i}-{i + 1}"
        (folder / f"{name}.png").write_bytes(PNG)
        data = sidecar(f"picture {i}", f"{name}.png", created, i + 1)
        (folder / f"{name}.json").write_bytes(data)
    jobs = out / "jobs"
    jobs.mkdir(parents=True, exist_ok=True)
    for j in range(in_jobs):
        name = f"{j:08x}-0000-4000-8000-000000000000"
        created = f"2026-06-01T{j // 3600:02d}:{j // 60 % 60:02d}:{j % 60:02d}+00:00"
        (jobs / f"{name}.png").write_bytes(PNG)
        (jobs / f"{name}.json").write_bytes(sidecar(f"job {j}", f"{name}.png", created, j + 1))
    # Settled folders, as on a server that has been up for a while (see RACY_S).
    past = time.time() - 60
    for folder in (out, jobs, *out.iterdir()):
        os.utime(folder, (past, past))


def walk_page(out: Path, limit: int = 50) -> list[dict]:
    """The baseline: no index, everything read again."""
    entries = []
    for folder, _dirs, files in os.walk(out):
        for name in files:
            if name.endswith(".json"):
                with (Path(folder) / name).open("rb") as handle:
                    data = json.load(handle)
                entries.append((data["created"], str(Path(folder) / data["image"]), data))
    entries.sort(key=lambda e: (e[0], e[1]), reverse=True)
    return [e[2] for e in entries[:limit]]


def median_ms(call, runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=51)
    args = parser.parse_args()
    warnings.simplefilter("ignore")  # starlette's note about httpx vs httpx2
    from starlette.testclient import TestClient

    import imagen_mock
    from imagen_core import Session
    from imagen_core.plugins import create_plugin_manager
    from imagen_web.app import create_app

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        os.environ["HOME"] = str(folder)
        os.environ["XDG_DATA_HOME"] = str(folder / "data")
        out = folder / "out"
        populate(out, args.images)
        config = folder / "imagen.yaml"
        config.write_text(f"output: {{dir: '{out}', preview: off}}\n")
        pm = create_plugin_manager(entry_points=False)
        pm.register(imagen_mock, name="mock")
        app = create_app(Session(config, plugin_manager=pm))

        started = time.perf_counter()
        with TestClient(app) as client:  # the lifespan builds the index
            build_ms = (time.perf_counter() - started) * 1000

            def first_page() -> None:
                response = client.get("/v1/images?limit=50")
                assert response.status_code == 200 and len(response.json()["images"]) == 50

            first_page()
            index = app.state.imagen.index
            assert len(index) == args.images, len(index)
            served = median_ms(first_page, args.runs)
            walked = median_ms(lambda: walk_page(out), max(3, args.runs // 10))
            jobs = out / "jobs"
            added = []

            def after_new_image() -> None:
                n = len(added)
                added.append(n)
                name = f"new-{n}"
                (jobs / f"{name}.png").write_bytes(PNG)
                (jobs / f"{name}.json").write_bytes(
                    sidecar(f"new {n}", f"{name}.png", "2027-01-01T00:00:00+00:00", n + 1)
                )
                response = client.get("/v1/images?limit=1")
                assert response.json()["images"][0]["prompt"] == f"new {n}"

            fresh = median_ms(after_new_image, max(5, args.runs // 5))

    figures = Figures("web_images")
    figures.add(
        f"GET /v1/images, first 50 of {args.images:,}",
        served,
        unit="ms",
        at_most=TARGET_MS,
        baseline=f"{walked:.1f} ms (walk + every sidecar)",
        measured=f"{walked / served:.0f}x faster",
    )
    figures.add("the same, right after a new image in jobs/", fresh, unit="ms")
    figures.add("index built at start (every sidecar read once)", build_ms, unit="ms")
    return figures.report()


if __name__ == "__main__":
    raise SystemExit(main())
