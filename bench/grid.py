"""Grid sheet benchmark: imagen's 8x8 labelled grid sheet against ImageMagick's montage.

    .venv/bin/python bench/grid.py [--runs N] [--keep DIR]

64 distinct 1024x1024 mock pictures become one 8x8 sheet, twice per run:
(a) a fresh `python -c` that builds it with imagen_core.grid.sheet (title,
axis names, column and row headers, a time and cost line under each cell) and
writes the PNG, as `imagen grid` does for each z value; (b) `montage` building
the same 8x8 grid of 320x320 tiles with one label per tile (the cell's values)
and a title. Both are whole processes, interleaved, medians of --runs; the
ratio is imagen / montage, target <= 1.0x. Exits 1 when missed.

montage is installed with apt-get when missing (as root), as on a fresh machine.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

from contact_sheet import ensure_montage, measure, report  # bench/contact_sheet.py, beside this
from run import compile_bytecode  # bench/run.py, beside this file

BIN = Path(sys.executable).parent
SIDE = 8
TILE = 320  # what imagen_core.grid.sheet.tile_for(8) picks
SEEDS = list(range(1, SIDE + 1))
STEPS = [4 * (i + 1) for i in range(SIDE)]

# The subject: what `imagen grid` does for one sheet, in a fresh interpreter.
SUBJECT = """\
import sys
from pathlib import Path
from imagen_core.grid.sheet import SheetCell, encode_png, render_grid_sheet
seeds, steps = sys.argv[1].split(","), sys.argv[2].split(",")
cells = [
    [SheetCell(Path(f"steps-{st}-seed-{se}.png"), info=f"mock · {i + 1}.25 s · free")
     for i, se in enumerate(seeds)]
    for st in steps
]
sheet = render_grid_sheet(
    cells, column_title="seed", column_labels=seeds, row_title="steps", row_labels=steps,
    title="a lighthouse on a cliff at dusk",
)
tmp = Path("imagen-grid.png.tmp")
tmp.write_bytes(encode_png(sheet))
tmp.replace("imagen-grid.png")
"""


def make_pictures(work: Path) -> list[str]:
    from imagen_mock.picture import render_png

    names = []
    for st in STEPS:
        for se in SEEDS:
            name = f"steps-{st}-seed-{se}.png"
            prompt = f"a lighthouse on a cliff at dusk, {st} steps"
            (work / name).write_bytes(render_png(prompt, se * 100 + st, 1024, 1024))
            names.append(name)
    return names


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per command (median taken)")
    parser.add_argument("--keep", type=Path, help="copy both sheets to this folder to look at")
    args = parser.parse_args()
    montage = ensure_montage()
    compile_bytecode()
    work = Path(tempfile.mkdtemp(prefix="imagen-bench-grid-"))
    files = make_pictures(work)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IMAGEN_", "XDG_"))} | {
        "HOME": str(work),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    subject = [
        str(BIN / "python"),
        "-c",
        SUBJECT,
        ",".join(map(str, SEEDS)),
        ",".join(map(str, STEPS)),
    ]
    # One label per tile (its file name: the cell's values) and a title; 8-bit
    # output like ours (without -depth 8 montage writes a 16-bit PNG).
    baseline = [
        montage,
        "-title",
        "a lighthouse on a cliff at dusk",
        "-label",
        "%t",
        "-pointsize",
        "18",
        "-geometry",
        f"{TILE}x{TILE}+10+10",
        "-tile",
        f"{SIDE}x{SIDE}",
        "-background",
        "#222",
        "-fill",
        "white",
        "-depth",
        "8",
        *files,
        "montage-grid.png",
    ]
    b, s = measure(baseline, subject, env, work, args.runs)
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(work / "imagen-grid.png", args.keep / "grid-imagen.png")
        shutil.copyfile(work / "montage-grid.png", args.keep / "grid-montage.png")
    for label, path in (("imagen", "imagen-grid.png"), ("montage", "montage-grid.png")):
        print(f"  {label} sheet: {(work / path).stat().st_size / 1e6:.2f} MB")
    shutil.rmtree(work, ignore_errors=True)
    return report("grid", f"grid sheet, 64 x 1024x1024 -> {SIDE}x{SIDE} x {TILE}", b, s)


if __name__ == "__main__":
    sys.exit(main())
