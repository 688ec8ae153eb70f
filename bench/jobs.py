"""`imagen jobs` on a SQLite queue of 100,000 jobs, beside the bare SELECT of the same page.

    .venv/bin/python bench/jobs.py [--jobs 100000] [--runs 9]

The queue file is filled with the queue's schema by plain sqlite3 (90 % done,
the rest queued), then opened once by imagen so that it gains its indexes, as
any existing jobs.db does on its first use. Whole processes, interleaved,
medians of --runs:

1. `imagen jobs` (the newest 50, as a table) against a plain Python process
   that runs the same page's bare `SELECT * … ORDER BY created_at DESC LIMIT 50`
   with sqlite3 and prints the rows.                            target <= 1.2x
2. The same with `--status queued`.                             (no target)
   And `imagen --version` beside the same baseline: the start-up floor (click
   and imagen's entry alone) under any whole-process listing.   (no target)
3. In-process: `SQLiteQueue.list(limit=50)` on an open queue against the bare
   SELECT on an open sqlite3 connection (what `GET /v1/jobs` pays).  (no target)

The baseline processes import nothing of imagen. Exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from figures import Figures
from run import compile_bytecode

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TARGET = 1.2
PAGE = 50

# The queue's table (imagen_core/sqlite_queue.py) as the oldest files have it,
# spelled out: the baseline imports no imagen.
SCHEMA = """
CREATE TABLE jobs (
    id TEXT PRIMARY KEY, request TEXT NOT NULL, backend TEXT NOT NULL, status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0, max_attempts INTEGER NOT NULL DEFAULT 3,
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL, worker TEXT, lease_until REAL,
    result_path TEXT, error TEXT, metadata TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX jobs_claim ON jobs (status, created_at);
"""
BASELINE = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
where, params = (' WHERE status = ?', [sys.argv[2]]) if len(sys.argv) > 2 else ('', [])
query = 'SELECT * FROM jobs' + where + ' ORDER BY created_at DESC, rowid DESC LIMIT ?'
for row in db.execute(query, [*params, 50]):
    print(*row, sep='  ')
"""


def fill(path: Path, count: int) -> None:
    request = {
        "prompt": "a lighthouse on a cliff at dusk",
        "negative": "",
        "width": 512,
        "height": 512,
        "seed": 7,
        "steps": 0,
        "style": None,
        "backend": "mock",
        "extra": {},
    }
    start = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.executescript(SCHEMA)

    def rows():
        for n in range(count):
            at = (start + dt.timedelta(seconds=n)).isoformat(timespec="milliseconds")
            done = n % 10 != 0
            yield (
                f"{n:08x}-0000-4000-8000-000000000000",
                json.dumps(request | {"seed": n}),
                "mock",
                "done" if done else "queued",
                1 if done else 0,
                at,
                at,
                f"/out/jobs/{n:08x}.png" if done else None,
            )

    db.executemany(
        "INSERT INTO jobs (id, request, backend, status, attempts, created_at, updated_at,"
        " result_path) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        rows(),
    )
    db.commit()
    db.close()


def timed(cmd: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def interleaved(base: list[str], ours: list[str], env: dict[str, str], runs: int):
    timed(base, env), timed(ours, env)  # warm the page cache
    b, o = [], []
    for _ in range(runs):
        b.append(timed(base, env))
        o.append(timed(ours, env))
    return statistics.median(b) * 1000, statistics.median(o) * 1000


def in_process(path: Path, runs: int) -> tuple[float, float]:
    sys.path.insert(0, str(ROOT))
    from imagen_core.sqlite_queue import SQLiteQueue, SQLiteQueueConfig

    queue = SQLiteQueue(SQLiteQueueConfig(path=path))
    bare = sqlite3.connect(path)
    query = "SELECT * FROM jobs ORDER BY created_at DESC, rowid DESC LIMIT ?"
    queue.list(limit=PAGE), bare.execute(query, [PAGE]).fetchall()
    b, o = [], []
    for _ in range(runs * 10):
        started = time.perf_counter()
        bare.execute(query, [PAGE]).fetchall()
        b.append(time.perf_counter() - started)
        started = time.perf_counter()
        queue.list(limit=PAGE)
        o.append(time.perf_counter() - started)
    queue.close()
    bare.close()
    return statistics.median(b) * 1000, statistics.median(o) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    compile_bytecode()
    with tempfile.TemporaryDirectory(prefix="imagen-bench-jobs-") as tmp:
        work = Path(tmp)
        path = work / "data" / "imagen" / "jobs.db"
        path.parent.mkdir(parents=True)
        fill(path, args.jobs)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("IMAGEN_", "XDG_"))}
        env |= {"HOME": str(work), "XDG_DATA_HOME": str(work / "data")}
        py, imagen = str(BIN / "python"), str(BIN / "imagen")
        # Its indexes, as any existing jobs.db gains them on first use.
        subprocess.run(
            [imagen, "jobs", "--limit", "1"], env=env, check=True, stdout=subprocess.DEVNULL
        )
        page = interleaved(
            [py, "-c", BASELINE, str(path)], [imagen, "jobs", "--limit", str(PAGE)], env, args.runs
        )
        queued = interleaved(
            [py, "-c", BASELINE, str(path), "queued"],
            [imagen, "jobs", "--limit", str(PAGE), "--status", "queued"],
            env,
            args.runs,
        )
        # What no listing can go under: the same baseline beside a command that
        # reads no queue at all (click and imagen's entry, no plugins).
        floor = interleaved([py, "-c", BASELINE, str(path)], [imagen, "--version"], env, args.runs)
        inside = in_process(path, args.runs)
    figures = Figures("jobs")
    n = f"{args.jobs:,} jobs"
    for name, (base, ours), target in (
        (f"imagen jobs, newest {PAGE} of {n} (whole process)", page, TARGET),
        (f"imagen jobs --status queued, {PAGE} of {n} (whole process)", queued, None),
        ("start-up floor: imagen --version against the same bare SELECT", floor, None),
        (f"SQLiteQueue.list, {PAGE} of {n} (in process)", inside, None),
    ):
        figures.add(
            name,
            ours / base,
            at_most=target,
            baseline=f"{base:.2f} ms",
            measured=f"{ours:.2f} ms",
        )
    return figures.report()


if __name__ == "__main__":
    sys.exit(main())
