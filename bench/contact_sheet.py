"""Contact sheet benchmark: imagen's Pillow sheet against ImageMagick's montage.

    .venv/bin/python bench/contact_sheet.py [--runs N] [--keep DIR]

Eight distinct 1024x1024 mock pictures become one 4x2 sheet of 512x512 labelled
tiles, twice per run: (a) a fresh `python -c` that builds it with
imagen_core.contact_sheet and writes the PNG, (b) `montage` doing the same grid
with one label per tile. Both are whole processes, interleaved, medians of
--runs; the ratio is imagen / montage, target <= 1.0x. Exits 1 when missed.

montage is installed with apt-get when missing (as root), as on a fresh machine.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from figures import Figures
from run import compile_bytecode  # bench/run.py, beside this file

BIN = Path(sys.executable).parent
TARGET = 1.0
NAMES = [
    "flux-schnell-local",
    "sd35-medium-local",
    "flux-dev-replicate",
    "sdxl-replicate",
    "mock",
    "flux-pro-replicate",
    "sd15-local",
    "mock-slow",
]
PROMPTS = [
    "a lighthouse on a cliff at dusk",
    "mountains under a starry night sky",
    "a quiet harbour at sunrise",
    "rolling hills in summer",
    "a volcano island at twilight",
    "pastel meadow in spring",
    "a glacier valley at noon",
    "boats on a lake at midnight",
]

# The subject: what `imagen compare` does for its sheet, in a fresh interpreter.
SUBJECT = """\
import sys
from pathlib import Path
from imagen_core.contact_sheet import Tile, sheet_png
tiles = [
    Tile(name, ("mock-procedural-v1", f"{i + 1}.25 s · free"), Path(name + ".png"))
    for i, name in enumerate(sys.argv[1:])
]
tmp = Path("imagen-sheet.png.tmp")
tmp.write_bytes(sheet_png(tiles, columns=4))
tmp.replace("imagen-sheet.png")
"""


def ensure_montage() -> str:
    found = shutil.which("montage")
    if found:
        return found
    if not shutil.which("apt-get") or os.geteuid() != 0:
        sys.exit("bench: montage not found; install ImageMagick (apt-get install imagemagick)")
    print("bench: montage not found: apt-get install -y imagemagick", flush=True)
    quiet = {"stdout": subprocess.DEVNULL}
    if subprocess.run(["apt-get", "install", "-y", "imagemagick"], **quiet).returncode:
        print("bench: retrying after apt-get update", flush=True)
        subprocess.run(["apt-get", "update"], **quiet, check=True)
        subprocess.run(["apt-get", "install", "-y", "imagemagick"], **quiet, check=True)
    found = shutil.which("montage")
    if not found:
        sys.exit("bench: imagemagick installed but montage is still not on PATH")
    return found


def make_pictures(work: Path) -> None:
    from imagen_mock.picture import render_png

    for seed, (name, prompt) in enumerate(zip(NAMES, PROMPTS, strict=True), start=1):
        (work / f"{name}.png").write_bytes(render_png(prompt, seed, 1024, 1024))


def timed(cmd: list[str], env: dict[str, str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, env=env, cwd=cwd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def measure(
    baseline: list[str], subject: list[str], env: dict[str, str], work: Path, runs: int
) -> tuple[float, float]:
    """Medians of ``runs`` interleaved runs of each, after one to warm the page cache."""
    timed(baseline, env, work), timed(subject, env, work)
    base, subj = [], []
    for _ in range(runs):
        base.append(timed(baseline, env, work))
        subj.append(timed(subject, env, work))
    return statistics.median(base), statistics.median(subj)


def report(bench: str, name: str, b: float, s: float) -> int:
    """Record and print the figure of a montage benchmark; 1 when the target is missed."""
    figures = Figures(bench)
    figures.add(
        f"{name} (vs montage)",
        s / b,
        at_most=TARGET,
        baseline=f"{b * 1000:.1f} ms",
        measured=f"{s * 1000:.1f} ms",
    )
    return figures.report()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9, help="runs per command (median taken)")
    parser.add_argument("--keep", type=Path, help="copy both sheets to this folder to look at")
    args = parser.parse_args()
    montage = ensure_montage()
    compile_bytecode()
    work = Path(tempfile.mkdtemp(prefix="imagen-bench-sheet-"))
    make_pictures(work)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IMAGEN_", "XDG_"))} | {
        "HOME": str(work),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    files = [f"{name}.png" for name in NAMES]
    subject = [str(BIN / "python"), "-c", SUBJECT, *NAMES]
    # One label line (the file name) per tile, 8-bit output like ours: without
    # -depth 8 montage writes a 16-bit PNG, twice the data to compress.
    baseline = [
        montage,
        "-label",
        "%t",
        "-pointsize",
        "24",
        "-geometry",
        "512x512+8+8",
        "-tile",
        "4x2",
        "-background",
        "#222",
        "-fill",
        "white",
        "-depth",
        "8",
        *files,
        "montage-sheet.png",
    ]
    b, s = measure(baseline, subject, env, work, args.runs)
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(work / "imagen-sheet.png", args.keep / "sheet-imagen.png")
        shutil.copyfile(work / "montage-sheet.png", args.keep / "sheet-montage.png")
    for label, path in (("imagen", "imagen-sheet.png"), ("montage", "montage-sheet.png")):
        print(f"  {label} sheet: {(work / path).stat().st_size / 1e6:.2f} MB")
    return report("contact_sheet", "contact sheet, 8 x 1024x1024 -> 4x2 x 512", b, s)


if __name__ == "__main__":
    sys.exit(main())
