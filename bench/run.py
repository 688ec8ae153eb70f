"""Startup and generation benchmarks, each as a ratio against a baseline measured
in the same run (never an absolute time).

    ./dev bench            # or: .venv/bin/python bench/run.py [--runs N]

1. `imagen --version` and `imagen --help` vs `python -c "import click"`   target <= 2.0x
2. `imagen generate --backend mock --size 1024x1024 --no-sidecar` vs a bare
   Python process rendering and saving the same mock picture with Pillow (a copy
   of imagen_mock/picture.py run as a plain script: nothing of imagen is
   imported)                                                           target <= 1.3x
3. The same generate as users install it: every distribution of the repo
   installed non-editable in a fresh venv (`pip install . plugins/*/`), no
   config file, every plugin loaded                                     target <= 1.3x

Bytecode is compiled first: these machines export PYTHONDONTWRITEBYTECODE=1, and
timing a start that recompiles every module would measure the compiler.
Baseline and subject runs are interleaved so drift affects both alike.
"""

from __future__ import annotations

import argparse
import compileall
import os
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

from figures import Figures

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PROMPT = "a lighthouse on a cliff at dusk, seen from the sea"


def compile_bytecode() -> None:
    paths = [
        sysconfig.get_paths()["purelib"],
        ROOT / "imagen_core",
        *(ROOT / "plugins").glob("*/imagen_*"),
    ]
    for path in paths:
        compileall.compile_dir(str(path), quiet=1, workers=0)


def user_install(work: Path) -> Path:
    """A fresh venv with every distribution of the repo installed as a user installs
    it (`pip install . plugins/*/`, not editable), its bytecode compiled."""
    venv = work / "user-venv"
    print("bench: installing every distribution non-editable into a fresh venv", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            str(ROOT),
            *map(str, sorted((ROOT / "plugins").glob("*/"))),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    purelib = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import sysconfig; print(sysconfig.get_paths()['purelib'])",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    compileall.compile_dir(purelib, quiet=1, workers=0)
    return venv


def timed(cmd: list[str], env: dict[str, str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, env=env, cwd=cwd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def compare(
    name: str, baseline: list[str], subject: list[str], runs: int, target: float, env, cwd
) -> dict:
    timed(baseline, env, cwd), timed(subject, env, cwd)  # warm the page cache
    base, subj = [], []
    for _ in range(runs):
        base.append(timed(baseline, env, cwd))
        subj.append(timed(subject, env, cwd))
    b, s = statistics.median(base), statistics.median(subj)
    return {
        "name": name,
        "baseline_ms": b * 1000,
        "subject_ms": s * 1000,
        "ratio": s / b,
        "target": target,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="runs per command (median taken)")
    parser.add_argument(
        "--user-venv",
        type=Path,
        help="a virtual environment with every distribution installed non-editable, to reuse "
        "(default: one is built for the run with `pip install . plugins/*/`)",
    )
    args = parser.parse_args()
    compile_bytecode()
    work = Path(tempfile.mkdtemp(prefix="imagen-bench-"))
    every = {k: v for k, v in os.environ.items() if not k.startswith(("IMAGEN_", "XDG_"))} | {
        "HOME": str(work),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    # The targets are for `pip install imagen-core imagen-mock`; the repo's other
    # plugins, installed here too, are measured in a row of their own.
    env = every | {"IMAGEN_LOAD_PLUGINS": "imagen-mock"}
    py, imagen = str(BIN / "python"), str(BIN / "imagen")
    # The baseline renders the same picture with the same code, but as a plain
    # script of its own: it imports nothing of imagen (not imagen_mock, whose
    # package would bring imagen_core and pluggy), only Pillow and the stdlib.
    shutil.copyfile(ROOT / "plugins/imagen-mock/imagen_mock/picture.py", work / "picture.py")
    compileall.compile_file(str(work / "picture.py"), quiet=1)
    render = f"from picture import render; render({PROMPT!r}, 7, 1024, 1024).save('baseline.png')"
    generate = [imagen, "generate", PROMPT, "--backend", "mock", "--size", "1024x1024"]
    generate += ["--seed", "7", "--no-sidecar"]
    click_only = [py, "-c", "import click"]
    runs = args.runs
    results = [
        compare("imagen --version", click_only, [imagen, "--version"], runs, 2.0, env, work),
        compare("imagen --help", click_only, [imagen, "--help"], runs, 2.0, env, work),
        compare(
            "imagen generate (mock, 1024x1024, --no-sidecar)",
            [py, "-c", render],
            generate,
            runs,
            1.3,
            env,
            work,
        ),
    ]
    extra = [
        compare(
            "imagen --help, every plugin loaded",
            click_only,
            [imagen, "--help"],
            runs,
            0,
            every,
            work,
        ),
        compare(
            "imagen generate, every plugin loaded",
            [py, "-c", render],
            generate,
            runs,
            0,
            every,
            work,
        ),
    ]
    user = args.user_venv or user_install(work)
    user_py, user_imagen = str(user / "bin" / "python"), str(user / "bin" / "imagen")
    extra.append(
        compare(
            "imagen generate, as users install it: every distribution non-editable, no config file",
            [user_py, "-c", render],
            [user_imagen, *generate[1:]],
            runs,
            1.3,
            every,
            work,
        )
    )
    figures = Figures("startup")
    for r in results + extra:
        figures.add(
            r["name"],
            r["ratio"],
            at_most=r["target"] or None,
            baseline=f"{r['baseline_ms']:.1f} ms",
            measured=f"{r['subject_ms']:.1f} ms",
        )
    return figures.report()


if __name__ == "__main__":
    sys.exit(main())
