"""ComfyUI backend benchmarks, against the in-process fake ComfyUI of the tests
(tests/comfyui/fake_comfyui.py: real protocol, HTTP and websocket on one port).

    .venv/bin/python bench/comfyui.py [--runs 21]

1. Completion latency: from the moment the fake sends ``execution_success`` to
   the 1024x1024 PNG being on disk, median of --runs generations (plus warm-up).
   imagen's comfyui backend, through ``Session.generate`` (the path the CLI
   takes), beside a baseline client that polls ``/history`` once a second, then
   fetches ``/view`` and writes the file the same way.       target: <= 50 ms
2. Throughput: 20 generations back to back, the fake taking a fixed 200 ms per
   prompt; total wall time.              target: <= 1.10 x 20 x 200 ms = 4.40 s

Both clocks are ``time.perf_counter`` in this one process. The sidecar is off in
(1), so that "on disk" means the PNG; (2) runs with sidecars, as a person would.
Built-in sinks (the cost ledger) are switched off: they run after the PNG is
written and are not the backend's work. Exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from figures import Figures

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

LATENCY_TARGET_MS = 50.0
THROUGHPUT_N = 20
THROUGHPUT_DELAY_S = 0.2
THROUGHPUT_FACTOR = 1.10
SIZE = 1024


def session(fake, folder: Path):
    import imagen_comfyui
    from imagen_core import Session
    from imagen_core.plugins import create_plugin_manager

    config = folder / "imagen.yaml"
    config.write_text(
        "default_backend: comfy\n"
        f"output: {{dir: '{folder / 'out'}', preview: off}}\n"
        f"backends:\n  comfy: {{type: comfyui, url: '{fake.url}', timeout_s: 60}}\n"
    )
    pm = create_plugin_manager(entry_points=False)
    pm.register(imagen_comfyui, name="comfyui")
    return Session(config, plugin_manager=pm)


def imagen_latency(fake, folder: Path, runs: int) -> list[float]:
    from imagen_core import Request

    fake.script.delay_s = 0.05
    live = session(fake, folder)
    results = []
    for index in range(runs + 2):
        request = Request("a lighthouse at dusk", width=SIZE, height=SIZE, seed=1000 + index)
        record = live.generate(request, output=folder / f"imagen-{index}.png", sidecar=False)
        on_disk = time.perf_counter()
        assert record.path is not None and record.path.stat().st_size > 100_000
        completed = fake.completed_at[record.result.metadata["prompt_id"]]
        if index >= 2:  # warm-up: the fake's first 1024x1024 picture, connections
            results.append((on_disk - completed) * 1000)
    return results


def baseline_latency(fake, folder: Path, runs: int) -> list[float]:
    """A minimal client: POST /prompt, then GET /history once a second until the
    prompt is there, then /view and an atomic write (imagen's own write_new).

    The prompt's length varies (50 ms to 1.05 s, seeded), as real prompts do, so
    completion falls anywhere between two polls: a fixed length would always put
    it at the same phase and make the baseline look better or worse than it is."""
    import random

    import requests

    from imagen_comfyui import workflows
    from imagen_core.pipeline import write_new

    lengths = random.Random(20261123)
    template = workflows.load("flux1-schnell")
    http = requests.Session()
    results = []
    for index in range(runs):
        fake.script.delay_s = lengths.uniform(0.05, 1.05)
        values = {
            **template.meta.defaults,
            "prompt": "a lighthouse at dusk",
            "seed": 5000 + index,
            "width": SIZE,
            "height": SIZE,
        }
        body = {"prompt": template.substitute(values)}
        prompt_id = http.post(f"{fake.url}/prompt", json=body, timeout=10).json()["prompt_id"]
        while True:
            time.sleep(1.0)
            entry = http.get(f"{fake.url}/history/{prompt_id}", timeout=10).json()
            if entry:
                break
        image = entry[prompt_id]["outputs"]["9"]["images"][0]
        data = http.get(f"{fake.url}/view", params=image, timeout=10).content
        write_new(folder / f"baseline-{index}.png", data)
        on_disk = time.perf_counter()
        results.append((on_disk - fake.completed_at[prompt_id]) * 1000)
    return results


def throughput(fake, folder: Path) -> float:
    from imagen_core import Request

    fake.script.delay_s = THROUGHPUT_DELAY_S
    live = session(fake, folder)
    live.generate(Request("warm-up", width=SIZE, height=SIZE, seed=1))
    started = time.perf_counter()
    for index in range(THROUGHPUT_N):
        live.generate(Request("a lighthouse at dusk", width=SIZE, height=SIZE, seed=9000 + index))
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=21, help="latency runs (>= 20)")
    args = parser.parse_args()
    os.environ["IMAGEN_DISABLE_PLUGINS"] = "ledger,tmux_preview"
    from tests.comfyui.fake_comfyui import FakeComfyUI

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        os.environ["HOME"] = str(folder)  # nothing of the person's is read or written
        os.environ["XDG_DATA_HOME"] = str(folder / "data")
        fake = FakeComfyUI().start()
        try:
            ours = imagen_latency(fake, folder, args.runs)
            base = baseline_latency(fake, folder, args.runs)
            total = throughput(fake, folder)
        finally:
            fake.stop()
    ours_ms, base_ms = statistics.median(ours), statistics.median(base)
    ideal = THROUGHPUT_N * THROUGHPUT_DELAY_S
    spread = f"imagen latency min/max {min(ours):.1f}/{max(ours):.1f} ms"
    print(f"{spread}; baseline min/max {min(base):.0f}/{max(base):.0f} ms")
    figures = Figures("comfyui")
    figures.add(
        f"completion -> PNG on disk, {SIZE}x{SIZE}, median of {len(ours)}",
        ours_ms,
        unit="ms",
        at_most=LATENCY_TARGET_MS,
        baseline=f"{base_ms:.1f} ms (polls /history 1/s)",
        measured=f"{base_ms / ours_ms:.0f}x faster",
    )
    figures.add(
        f"{THROUGHPUT_N} generations, {THROUGHPUT_DELAY_S * 1000:.0f} ms each on the server",
        total / ideal,
        at_most=THROUGHPUT_FACTOR,
        baseline=f"{ideal:.2f} s (server time)",
        measured=f"{total:.2f} s",
    )
    return figures.report()


if __name__ == "__main__":
    raise SystemExit(main())
