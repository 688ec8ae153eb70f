"""`imagen usage` over a ledger of 1,000,000 rows, beside SQLite doing the same grouping.

    .venv/bin/python bench/usage.py [--rows 1000000] [--runs 5]

The ledger is filled with the ledger's own schema by plain sqlite3 (a year of
rows, 4 backends, 3 callers, some failed, some without a cost). Whole processes,
interleaved, medians of --runs:

1. `imagen usage` (the weekly report) against a plain Python process that runs
   the same grouping as one SQL `GROUP BY` (ISO week by the Thursday rule,
   backend, model, caller; count, failed, cost, mean latency) and prints it.
                                                               target <= 1.5x
2. The peak RSS of that `imagen usage` process (wait4's ru_maxrss).
                                                               target <= 60 MB
3. `imagen usage --raw`: from the process start to its first line on stdout
   (the process is then stopped), beside the plain process printing the first
   row of the same SELECT.                                     target <= 100 ms

The baseline imports nothing of imagen. Exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from figures import Figures
from run import compile_bytecode

BIN = Path(sys.executable).parent
RATIO_TARGET = 1.5
RSS_TARGET_MB = 60.0
FIRST_LINE_TARGET_MS = 100.0

# The ledger's schema (imagen_core/ledger.py), spelled out: the bench imports no imagen.
SCHEMA = """
CREATE TABLE usage (
    id INTEGER PRIMARY KEY, created_at TEXT NOT NULL, backend TEXT NOT NULL,
    backend_type TEXT NOT NULL, model TEXT, latency_s REAL, cost_usd REAL,
    prompt_sha256 TEXT NOT NULL, caller TEXT NOT NULL, status TEXT NOT NULL, error TEXT
);
CREATE INDEX usage_created_at ON usage (created_at);
PRAGMA user_version=1;
"""
GROUP_BY = """
SELECT strftime('%Y', d, '-3 days', 'weekday 4') || '-W' ||
       printf('%02d', (strftime('%j', d, '-3 days', 'weekday 4') - 1) / 7 + 1) AS week,
       backend, model, caller, count(*), total(status != 'ok'),
       round(total(cost_usd), 6), round(avg(latency_s), 3)
FROM (SELECT substr(created_at, 1, 10) AS d, * FROM usage)
GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
"""
BASELINE = f"""
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
for row in db.execute({GROUP_BY!r}):
    print(*row, sep='  ')
"""
BASELINE_FIRST = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
cur = db.execute('SELECT * FROM usage ORDER BY created_at, id')
print(*cur.fetchone(), sep='  ', flush=True)
for row in cur:
    print(*row, sep='  ')
"""


def fill(path: Path, count: int) -> None:
    rng = random.Random(7)
    backends = [
        ("flux", "replicate", "flux-dev"),
        ("sdxl", "comfyui", "sdxl-base"),
        ("mock", "mock", "mock-procedural-v1"),
        ("gpt", "openai", "gpt-image-1"),
    ]
    callers = ["alice@laptop", "bob@studio", "worker@gpu1"]
    start = 1_764_000_000 - 365 * 86_400
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.executescript(SCHEMA)

    def rows():
        for n in range(count):
            backend, kind, model = backends[n % 4]
            moment = start + n * (365 * 86_400) // count
            ok = rng.random() > 0.05
            cost = None if kind in ("comfyui", "mock") else round(rng.uniform(0.003, 0.08), 4)
            yield (
                time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(moment)),
                backend,
                kind,
                model if ok else None,
                round(rng.uniform(0.5, 9.0), 3) if ok else None,
                cost if ok else None,
                f"{rng.getrandbits(256):064x}",
                callers[n % 3],
                "ok" if ok else "failed",
                None if ok else "timed out",
            )

    db.executemany(
        "INSERT INTO usage (created_at, backend, backend_type, model, latency_s, cost_usd,"
        " prompt_sha256, caller, status, error) VALUES (?,?,?,?,?,?,?,?,?,?)",
        rows(),
    )
    db.commit()
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall time in seconds and peak RSS in MB of one whole process."""
    started = time.perf_counter()
    child = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    took = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode:
        raise SystemExit(f"bench: {' '.join(cmd[:3])} exited {child.returncode}")
    return took, usage.ru_maxrss / 1024


def first_line(cmd: list[str], env: dict[str, str]) -> float:
    """Milliseconds from the start of the process to its first line (then it is stopped)."""
    started = time.perf_counter()
    child = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE)
    assert child.stdout is not None
    line = child.stdout.readline()
    took = (time.perf_counter() - started) * 1000
    child.kill()
    child.wait()
    child.stdout.close()
    if not line:
        raise SystemExit(f"bench: {' '.join(cmd[:3])} printed nothing")
    return took


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    compile_bytecode()
    with tempfile.TemporaryDirectory(prefix="imagen-bench-usage-") as tmp:
        work = Path(tmp)
        ledger = work / "data" / "imagen" / "usage.db"
        ledger.parent.mkdir(parents=True)
        fill(ledger, args.rows)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("IMAGEN_", "XDG_"))}
        env |= {"HOME": str(work), "XDG_DATA_HOME": str(work / "data")}
        py, imagen = str(BIN / "python"), str(BIN / "imagen")
        base_cmd = [py, "-c", BASELINE, str(ledger)]
        ours_cmd = [imagen, "usage"]
        timed(base_cmd, env), timed(ours_cmd, env)  # warm the page cache
        base, ours, rss = [], [], []
        for _ in range(args.runs):
            base.append(timed(base_cmd, env)[0])
            took, peak = timed(ours_cmd, env)
            ours.append(took)
            rss.append(peak)
        first_base, first_ours = [], []
        for _ in range(args.runs):
            first_base.append(first_line([py, "-c", BASELINE_FIRST, str(ledger)], env))
            first_ours.append(first_line([imagen, "usage", "--raw"], env))
    b, s = statistics.median(base), statistics.median(ours)
    figures = Figures("usage")
    rows = f"{args.rows:,} rows"
    figures.add(
        f"imagen usage, {rows} (vs SQL GROUP BY)",
        s / b,
        at_most=RATIO_TARGET,
        baseline=f"{b * 1000:.0f} ms",
        measured=f"{s * 1000:.0f} ms",
    )
    figures.add(
        f"imagen usage, {rows}: peak RSS",
        max(rss),
        unit="MB",
        at_most=RSS_TARGET_MB,
    )
    fb, fo = statistics.median(first_base), statistics.median(first_ours)
    figures.add(
        f"imagen usage --raw, {rows}: first line",
        fo,
        unit="ms",
        at_most=FIRST_LINE_TARGET_MS,
        baseline=f"{fb:.0f} ms (plain SELECT)",
        measured=f"{fo / fb:.2f}x",
    )
    return figures.report()


if __name__ == "__main__":
    sys.exit(main())
