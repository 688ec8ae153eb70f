"""The worker's per-job time with 50,000 earlier job images, against none.

    .venv/bin/python bench/worker_history.py [--history 50000] [--jobs 20] [--rounds 31]

One `imagen worker` (in process, concurrency 1, the mock backend at 8x8 so that
imagen's own cost shows, ledger off) runs batches of ``--jobs`` jobs, each into
an output folder of its own:

- baseline: an empty output folder;
- spread: ``--history`` earlier job images where the worker put them, one job
  submitted a minute until the jobs' own submit time (about 35 days of
  ``jobs/<date>/<hour>/`` folders; the jobs' own hour holds 30 of them);
- flat: ``--history`` earlier job images in ``jobs/``, the flat layout every
  worker wrote before images went by submit hour (an install upgraded after
  months of jobs: a re-run must still look there);
- same hour (no target): ``--history`` earlier job images in the very folder
  the jobs go to, the worst case of the layout: that many jobs submitted within
  one hour. Every image written costs more in a folder that big (ext4 adds a
  name to a large directory index), listing or no listing.

Every job is submitted at the same fixed time, so that all go to one known
folder whatever the clock does during the run. The four run interleaved,
``--rounds`` times, each first in turn; each figure is the median of the
per-round ratios (a burst of load from elsewhere spoils one round, not the
figure). Target: <= 1.1x. Shown beside: what the ``glob`` the worker did before
cost on the flat folder.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

from figures import Figures

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TARGET = 1.1
SUBMITTED = dt.datetime(2026, 11, 28, 4, 30, tzinfo=dt.timezone.utc)
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f8cf000000030101001b05b0c70000000049454e44ae426082"
)


def earlier(folder: Path, n: int) -> None:
    """Earlier job ``n``'s image and sidecar in ``folder``."""
    name = f"{n:08x}-0000-4000-8000-{n:012x}"
    (folder / f"{name}.png").write_bytes(PNG)
    (folder / f"{name}.json").write_bytes(
        b'{"image": "%s.png", "prompt": "earlier job %d"}\n' % (name.encode(), n)
    )


def fill(folder: Path, count: int) -> None:
    """``count`` earlier job images and their sidecars, all in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for n in range(count):
        earlier(folder, n)


def spread(out: Path, count: int) -> None:
    """``count`` earlier job images where the worker put them: one job submitted
    a minute until SUBMITTED (about 35 days of hour folders at 50,000)."""
    from imagen_core.jobfiles import job_folder

    for n in range(count):
        folder = job_folder(out, SUBMITTED - dt.timedelta(minutes=count - n))
        if n == 0 or not folder.is_dir():
            folder.mkdir(parents=True, exist_ok=True)
        earlier(folder, n)


class Arm:
    """One output folder, its queue and its worker's session."""

    def __init__(self, folder: Path) -> None:
        from imagen_core import Session

        self.folder = folder
        self.out = folder / "out"
        self.out.mkdir(parents=True)
        config = folder / "imagen.yaml"
        config.write_text(
            f"output: {{dir: '{self.out}', preview: off}}\n"
            f"queue: {{type: sqlite, path: '{folder / 'jobs.db'}', poll_s: 0.01}}\n"
        )
        self.session = Session(config)
        self.queue = self.session.queue()
        self.times: list[float] = []

    def batch(self, jobs: int) -> None:
        """Submit ``jobs`` jobs, all at SUBMITTED, and time the worker running them."""
        from imagen_core import Request
        from imagen_core.worker import Worker, WorkerOptions

        ids = [
            self.queue.submit(Request(f"p{i}", width=8, height=8, steps=1), backend="mock").id
            for i in range(jobs)
        ]
        with sqlite3.connect(self.queue.path) as db:
            db.executemany(
                "UPDATE jobs SET created_at = ? WHERE id = ?",
                [(SUBMITTED.isoformat(timespec="milliseconds"), i) for i in ids],
            )
        db.close()
        worker = Worker(
            self.session,
            self.queue,
            WorkerOptions(concurrency=1, once=True, idle_wait_s=0.01),
            log=lambda _: None,
        )
        started = time.perf_counter()
        worker.run()
        took = time.perf_counter() - started
        assert worker.done == jobs, worker.done
        self.times.append(took / jobs)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--history", type=int, default=50_000)
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=31)
    args = parser.parse_args()
    os.environ["IMAGEN_DISABLE_PLUGINS"] = "ledger,tmux_preview"

    from imagen_core.jobfiles import job_folder

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        os.environ["HOME"] = str(folder)
        os.environ["XDG_DATA_HOME"] = str(folder / "data")
        arms = {name: Arm(folder / name) for name in ("baseline", "spread", "flat", "same hour")}
        n = f"{args.history:,}"
        print(f"bench: writing {n} earlier job images three times", flush=True)
        spread(arms["spread"].out, args.history)
        fill(arms["flat"].out / "jobs", args.history)
        fill(job_folder(arms["same hour"].out, SUBMITTED), args.history)
        started = time.perf_counter()
        globbed = list((arms["flat"].out / "jobs").glob("00000000-*"))
        glob_ms = (time.perf_counter() - started) * 1000
        assert len(globbed) == (2 if args.history else 0), globbed
        for arm in arms.values():  # imports, the first folder: not per-job cost
            arm.batch(5)
            arm.times.clear()
        order = list(arms.values())
        for _ in range(args.rounds):
            for arm in order:
                arm.batch(args.jobs)
            order.append(order.pop(0))  # none of them always first
        base = arms["baseline"].times
        figures = Figures("worker_history")
        for name, label, target in (
            ("spread", f"{n} earlier job images (a job a minute, by submit hour)", TARGET),
            ("flat", f"{n} earlier images in the flat jobs/ (layout before)", TARGET),
            ("same hour", f"{n} earlier images in the jobs' own hour (a burst)", None),
        ):
            mine = arms[name].times
            figures.add(
                f"worker per-job time, {label}, vs none",
                statistics.median(m / b for b, m in zip(base, mine, strict=True)),
                at_most=target,
                baseline=f"{statistics.median(base) * 1000:.2f} ms/job (empty folder)",
                measured=f"{statistics.median(mine) * 1000:.2f} ms/job",
            )
        figures.add(
            f"the glob a job cost before, on {n} images in jobs/ (no target)",
            glob_ms,
            unit="ms",
        )
    return figures.report()


if __name__ == "__main__":
    raise SystemExit(main())
