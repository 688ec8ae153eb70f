"""Run every benchmark, even after one misses, then print every figure against its target.

    ./dev bench [NAME ...]     # or: .venv/bin/python bench/all.py [NAME ...]

NAME is a script of bench/ without ``.py`` (``run``, ``worker``, ...); none runs
them all. Each script runs in a process of its own and hands its figures over
through the file named by ``IMAGEN_BENCH_FIGURES`` (bench/figures.py). Exits 1
when any figure misses its target or any script fails, 0 otherwise.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from figures import ENV, Figure, load, table

HERE = Path(__file__).resolve().parent
SCRIPTS = (
    "run",
    "usage",
    "jobs",
    "contact_sheet",
    "grid",
    "comfyui",
    "worker",
    "worker_history",
    "postgres_queue",
    "fleet",
    "web_images",
    "metadata",
)


def main(argv: list[str]) -> int:
    names = argv or list(SCRIPTS)
    unknown = [name for name in names if not (HERE / f"{name}.py").is_file()]
    if unknown:
        print(
            f"bench: no bench/{unknown[0]}.py; choose among {', '.join(SCRIPTS)}", file=sys.stderr
        )
        return 2
    failures: list[str] = []
    figures: list[Figure] = []
    for name in names:
        print(f"\n== bench/{name}.py", flush=True)
        with tempfile.NamedTemporaryFile(prefix=f"imagen-bench-{name}-", suffix=".jsonl") as out:
            env = os.environ | {ENV: out.name}
            code = subprocess.run([sys.executable, str(HERE / f"{name}.py")], env=env).returncode
            mine = load(out.name)
        figures += mine
        if code != 0 and not any(f.met is False for f in mine):
            failures.append(f"bench/{name}.py exited {code} without a figure that missed")
    print("\n== summary: every figure against its target\n")
    print(table(figures, with_bench=True))
    missed = [f for f in figures if f.met is False]
    for failure in failures:
        print(f"FAILED: {failure}")
    met = sum(1 for f in figures if f.met)
    print(f"\n{met} met, {len(missed)} missed, {len(failures)} script(s) failed")
    return 1 if missed or failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
