"""Worker benchmarks, each beside a baseline measured in the same run.

    .venv/bin/python bench/worker.py

1. GPU busy ratio: 50 jobs on the fake ComfyUI of the tests taking a fixed
   200 ms per prompt, run by `imagen worker` (concurrency 2) with the backend's
   max_in_flight 2 — target makespan <= 1.03 x 50 x 200 ms — shown beside
   max_in_flight 1, where the GPU idles while each image is fetched and written.
2. SQLite queue overhead: claim + complete through imagen's SQLiteQueue against
   the same SQL in a bare loop, jobs/s with 1 and 4 processes — target >= 0.8x.
3. The worker end to end: ``imagen worker`` (the mock backend at 8x8, so that
   imagen's own cost shows; the default sinks as a user has them: PNG with its
   metadata, JSON sidecar, cost ledger) against a plain worker that imports
   nothing of imagen (bench/plain_worker.py: the same claim SQL, the same render,
   the same fsynced PNG write, the same complete SQL), jobs/s with 1 and 2
   processes — target >= 0.8x. Measured twice: with the defaults, and with
   ``output.sidecar: false`` (the sidecar is a second fsynced file per job,
   which the plain worker does not write). Both start warm (connected, one
   picture rendered) and wait on one barrier; the clock runs from there to the
   last one's end.
4. The worker's own cost: ``imagen worker`` with the defaults against the plain
   worker doing by hand what those defaults do (bench/plain_worker.py's
   ``Featured``: the leftover check, the provenance chunks, the ledger's two
   rows, the fsynced sidecar, a log line), so that what is left is imagen's own
   overhead: objects, hooks, configuration, checks.           target: >= 0.8x

Rounds alternate the order of the two sides; each figure is the median of the
rounds' ratios (a burst of load from elsewhere spoils one round, not the figure).

    .venv/bin/python bench/worker.py [--rounds 5] [--jobs 1000] [--only busy,queue,e2e]

Pickup latency, queue overhead and the worker end to end on PostgreSQL:
bench/postgres_queue.py.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import children
from figures import Figures
from plain_worker import LEDGER, make_ledger

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

JOBS = 50
DELAY_S = 0.2
BUSY_TARGET = 1.03
QUEUE_JOBS = 2000
QUEUE_TARGET = 0.8
E2E_TARGET = 0.8


def gpu_busy(max_in_flight: int, folder: Path) -> float:
    import imagen_comfyui
    from imagen_core import Request, Session
    from imagen_core.plugins import create_plugin_manager
    from imagen_core.worker import Worker, WorkerOptions
    from tests.comfyui.fake_comfyui import FakeComfyUI

    fake = FakeComfyUI().start()
    fake.script.delay_s = DELAY_S
    try:
        run = folder / f"busy-{max_in_flight}"
        run.mkdir()
        config = run / "imagen.yaml"
        config.write_text(
            f"output: {{dir: '{run / 'out'}', preview: off}}\n"
            f"queue: {{type: sqlite, path: '{run / 'jobs.db'}', poll_s: 0.01}}\n"
            "backends:\n"
            f"  comfy: {{type: comfyui, url: '{fake.url}', max_in_flight: {max_in_flight}}}\n"
        )
        pm = create_plugin_manager(entry_points=False)
        pm.register(imagen_comfyui, name="comfyui")
        session = Session(config, plugin_manager=pm)
        queue = session.queue()
        session.generate(Request("warm-up", width=512, height=512, seed=1, backend="comfy"))
        for i in range(JOBS):
            queue.submit(Request(f"job {i}", width=512, height=512, seed=i + 2), backend="comfy")
        worker = Worker(
            session,
            queue,
            WorkerOptions(concurrency=2, once=True, idle_wait_s=0.01),
            log=lambda _: None,
        )
        started = time.perf_counter()
        worker.run()
        took = time.perf_counter() - started
        assert worker.done == JOBS, worker.done
        return took
    finally:
        fake.stop()


RAW_CLAIM = (
    "UPDATE jobs SET status='running', worker=?, lease_until=?, attempts=attempts+1"
    " WHERE id = (SELECT id FROM jobs WHERE status='queued' ORDER BY created_at, rowid LIMIT 1)"
    " RETURNING id"
)


def raw_loop(path: str, _: int) -> int:
    db = sqlite3.connect(path, timeout=30, isolation_level=None)
    done = 0
    while True:
        db.execute("BEGIN IMMEDIATE")
        row = db.execute(RAW_CLAIM, ("raw", time.time() + 60)).fetchone()
        db.execute("COMMIT")
        if row is None:
            return done
        db.execute("BEGIN IMMEDIATE")
        db.execute("UPDATE jobs SET status='done', result_path='x' WHERE id=?", (row[0],))
        db.execute("COMMIT")
        done += 1


def imagen_loop(path: str, _: int) -> int:
    from imagen_core.sqlite_queue import SQLiteQueue, SQLiteQueueConfig

    queue = SQLiteQueue(SQLiteQueueConfig(path=Path(path)))
    done = 0
    while (job := queue.claim("w", backends=None, lease_s=60)) is not None:
        queue.complete(job.id, "w", result_path="x", metadata={})
        done += 1
    return done


def e2e_child(kind: str, path: str, folder: str, name: str, start, out) -> None:
    """One worker process of the end-to-end figure (spawned): set up, wait for the
    others, work until the queue is empty, report (jobs, start, end)."""

    def run() -> tuple[int, float, float]:
        work = Path(folder)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)  # imagen worker's one line per job: written, not shown
        if kind == "plain":
            from plain_worker import SQLiteWorker

            work_loop = SQLiteWorker(path, work / "plain" / "jobs", name).run
        elif kind == "featured":
            from plain_worker import FeaturedSQLiteWorker

            images, ledger = work / "plain" / "jobs", work / LEDGER
            work_loop = FeaturedSQLiteWorker(path, images, name, ledger).run
        else:
            queue = {"type": "sqlite", "path": path, "poll_s": 0.01}
            work_loop = imagen_worker(work, queue, sidecar=kind == "imagen")
        return children.timed(work_loop, start)

    children.child(run, start, out)


def imagen_worker(work: Path, queue: dict[str, object], *, sidecar: bool = True):
    """A warm ``imagen worker --once`` on ``queue`` (its run method): a config file
    naming only the output folder and the queue, every installed plugin, the
    default sinks; one picture generated first (imports, fonts, the ledger).
    ``sidecar=False``: ``output.sidecar: false`` (one file per job, as the plain
    worker writes)."""
    import json

    from imagen_core import Request, Session
    from imagen_core.worker import Worker, WorkerOptions

    os.environ.pop("IMAGEN_DISABLE_PLUGINS", None)
    config = work / f"imagen-{os.getpid()}.yaml"
    config.write_text(
        f"output: {{dir: '{work / 'imagen'}', preview: off, sidecar: {str(sidecar).lower()}}}\n"
        f"queue: {json.dumps(queue)}\n"
    )
    session = Session(config)
    session.generate(Request("warm-up", width=8, height=8, seed=1), output=work / "warm-up/")
    worker = Worker(session, session.queue(), WorkerOptions(once=True, idle_wait_s=0.01))

    def run() -> int:
        worker.run()
        return worker.done

    return run


def e2e_rate(kind: str, path: Path, processes: int, jobs: int) -> float:
    fill(path, jobs)
    # Each run writes into a new, empty folder (removed afterwards): no run finds
    # the images of the ones before.
    work = Path(tempfile.mkdtemp(prefix=f"{kind}-", dir=path.parent))
    if kind == "featured":
        make_ledger(work / LEDGER)
    return children.jobs_per_s(
        e2e_child, lambda n: (kind, str(path), str(work), f"{kind}-{n}"), processes, work, jobs
    )


# The two imagen workers measured against the plain one: the defaults, and the
# same without the JSON sidecar (a second fsynced file per job).
E2E_KINDS = {
    "imagen": "sidecar + ledger (the defaults)",
    "imagen-no-sidecar": "ledger, output.sidecar: false",
}


def e2e_figures(figures: Figures, folder: Path, rounds: int, jobs: int) -> None:
    for processes in (1, 2):
        rates: dict[str, list[float]] = {kind: [] for kind in ("plain", "featured", *E2E_KINDS)}
        for round_ in range(rounds):
            order = list(rates) if round_ % 2 == 0 else list(rates)[::-1]
            for kind in order:
                rates[kind].append(e2e_rate(kind, folder / "e2e.db", processes, jobs))
        for kind, what in E2E_KINDS.items():
            figures.add_rates(
                f"imagen worker end to end vs a plain worker (sqlite, mock 8x8, {what}),"
                f" {processes} process(es), jobs/s",
                rates["plain"],
                rates[kind],
                at_least=E2E_TARGET,
                ratio_of_medians=True,
            )
        figures.add_rates(
            f"imagen worker's own cost: the defaults vs a plain worker doing the same work"
            f" by hand (sqlite, mock 8x8), {processes} process(es), jobs/s",
            rates["featured"],
            rates["imagen"],
            at_least=E2E_TARGET,
            ratio_of_medians=True,
        )


def fill(path: Path, jobs: int = QUEUE_JOBS) -> None:
    from imagen_core import Request
    from imagen_core.sqlite_queue import SQLiteQueue, SQLiteQueueConfig

    for leftover in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        leftover.unlink(missing_ok=True)
    queue = SQLiteQueue(SQLiteQueueConfig(path=path))
    for i in range(jobs):
        queue.submit(Request(f"p{i}", width=8, height=8, steps=1), backend="mock")
    queue.close()


def warm() -> None:
    # Imported before the clock starts.
    import imagen_core.pipeline
    import imagen_core.sqlite_queue
    import imagen_core.worker  # noqa: F401


def jobs_per_s(loop, path: Path, processes: int) -> float:
    fill(path)
    with multiprocessing.get_context("spawn").Pool(processes, initializer=warm) as pool:
        # Process start and imports are not queue overhead: both loops start warm
        # (one pause per process, so every process is up before the clock starts).
        pool.map(time.sleep, [0.2] * processes, chunksize=1)
        started = time.perf_counter()
        done = sum(pool.starmap(loop, [(str(path), i) for i in range(processes)]))
        took = time.perf_counter() - started
    assert done == QUEUE_JOBS, done
    return done / took


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="rounds of each pair (median)")
    parser.add_argument("--jobs", type=int, default=1000, help="jobs per end-to-end round")
    parser.add_argument(
        "--only", default="busy,queue,e2e", help="which figures: busy, queue, e2e (comma list)"
    )
    args = parser.parse_args()
    only = set(args.only.split(","))
    os.environ["IMAGEN_DISABLE_PLUGINS"] = "ledger,tmux_preview"
    figures = Figures("worker")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        os.environ["HOME"] = str(folder)
        os.environ["XDG_DATA_HOME"] = str(folder / "data")
        if "busy" in only:
            ideal = JOBS * DELAY_S
            one = gpu_busy(1, folder)
            two = gpu_busy(2, folder)
            figures.add(
                f"GPU busy: {JOBS} x {DELAY_S * 1000:.0f} ms, max_in_flight 2 (makespan / ideal)",
                two / ideal,
                at_most=BUSY_TARGET,
                baseline=f"{one:.2f} s (max_in_flight 1)",
                measured=f"{two:.2f} s",
            )
        for processes in (1, 4) if "queue" in only else ():
            # Interleaved, so that the disk's moods fall on both alike.
            runs: dict[str, list[float]] = {"raw": [], "imagen": []}
            for round_ in range(args.rounds):
                order = ("raw", "imagen") if round_ % 2 == 0 else ("imagen", "raw")
                for kind in order:
                    loop = raw_loop if kind == "raw" else imagen_loop
                    runs[kind].append(jobs_per_s(loop, folder / "q.db", processes))
            figures.add_rates(
                f"sqlite claim+complete, {processes} process(es), jobs/s",
                runs["raw"],
                runs["imagen"],
                at_least=QUEUE_TARGET,
            )
        if "e2e" in only:
            e2e_figures(figures, folder, args.rounds, args.jobs)
    return figures.report()


if __name__ == "__main__":
    raise SystemExit(main())
